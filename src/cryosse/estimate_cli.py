"""``cryosse estimate``: what a run will cost, from an entry table (cryosse.estimate)."""

from __future__ import annotations

from typing import Any

from cryosse import paths

HELP = "what a run will cost: downloads, disk, CPU- and GPU-hours, from the entry table and a sample"


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser("estimate", help=HELP)
    p.add_argument("entries", help="entry table (written by `cryosse query-emdb` or the workflow's search)")
    p.add_argument("-c", "--config", action="append", help="config file(s), as the workflow reads them")
    p.add_argument(
        "--sample", type=int, default=20, help="entries whose header and model are fetched (default 20)"
    )
    p.add_argument(
        "--tflops", type=float, default=100.0, help="sustained GPU speed for the GPU-hours (default 100)"
    )
    p.add_argument("-o", "--out", help="also write the estimate to this Markdown file")
    paths.declare(p, inputs=["entries", "config"], outputs=["out"])
    p.set_defaults(func=_cli)


def _cli(args: Any) -> int:
    from cryosse import config as cfg
    from cryosse.estimate import run
    from cryosse.train.settings import grid_settings

    config = cfg.load(args.config or [])
    t = config["train"]
    n = sum(len(grid_settings(loss, t["lrs"], t["gammas"], t["term_weights"])) for loss in t["losses"])
    print(run(config, args.entries, args.out, n, args.sample, args.tflops), end="")
    return 0
