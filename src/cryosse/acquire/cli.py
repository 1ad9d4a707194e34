"""``cryosse query-emdb | fetch | simulate | acquire-tables``: the acquire stage from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path

from cryosse import paths
from cryosse.argtypes import old_spelling


def _settings(args: argparse.Namespace, source: str | None = None):
    from cryosse import config as cfg
    from cryosse.acquire.stage import AcquireSettings

    config = cfg.load(args.config or [])  # named by file, line and key when wrong
    if source or getattr(args, "source", None):
        config["source"] = source or args.source
        config = cfg.check(config, "--source")
    return config, AcquireSettings.from_config(config)


def _query(args: argparse.Namespace) -> int:
    from cryosse.acquire.emdb import search_table

    out = Path(args.output)
    if out.exists() and not args.force:
        raise ValueError(f"{out}: exists; give another -o, or --force to replace it")
    _, s = _settings(args)
    rows = search_table(s, out)
    print(
        f"{len(rows)} released entries at {s.resolution_min:g}-{s.resolution_max:g} A with a fitted model"
        + (f", released by {s.release_date_max}" if s.release_date_max else "")
        + f" -> {args.output}"
    )
    return 0


def _fetch(args: argparse.Namespace, source: str | None = None) -> int:
    from cryosse.acquire.records import check_ids
    from cryosse.acquire.stage import acquire_entry

    chains = [c for c in (args.chains or "").split(",") if c]
    entry = {"emdb_id": args.entry.upper(), "pdb_id": (args.pdb or "").upper(), "chains": chains}
    problem = check_ids(entry["emdb_id"], entry["pdb_id"], chains)
    if problem:  # refused before any folder is named after it: nothing is written anywhere
        raise ValueError(f"{args.entry}: {problem}; nothing was written")
    config, s = _settings(args, source)
    entry["problem"] = ""
    out = (
        Path(args.out_dir)
        if args.out_dir
        else Path(config.get("resources", "resources")) / "archive" / entry["emdb_id"]
    )
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder; give -o a folder for the entry's files")
    rec = acquire_entry(entry, out, s)
    print(
        f"{rec['emdb_id']}: {rec['status']}{' (' + rec['reason'] + ')' if rec['reason'] else ''} -> {out / 'record.json'}"
    )
    return 0 if rec["status"] == "ok" else 3


def _tables(args: argparse.Namespace) -> int:
    from cryosse.acquire.stage import write_tables

    out = Path(args.out_dir)
    n_ok, n_rej = write_tables(args.records, out / "entries.tsv", out / "rejected.tsv", out / "manifest.tsv")
    print(f"{n_ok} entries ok, {n_rej} rejected -> {out}")
    return 0


def add_cli(subparsers) -> None:
    cfg_help = "config YAML file(s), later ones override (default: built-in defaults)"
    p = subparsers.add_parser(
        "query-emdb", help="search EMDB for 5-10 A maps with a fitted model; write an entry table"
    )
    p.add_argument("-c", "--config", action="append", help=cfg_help)
    p.add_argument(
        "-o",
        "--out",
        dest="output",
        required=True,
        help="entry table to write, e.g. config/my_entries.tsv (then `entries:` in your config);"
        " config/entries.tsv is the paper's, shipped with cryosse",
    )
    old_spelling(p, "--output", "--out", "output")
    p.add_argument("--force", action="store_true", help="replace the -o file if it exists")
    p.set_defaults(func=_query)
    paths.declare(p, inputs=["config"], outputs=["output"])

    for name, source, hlp in (
        ("fetch", None, "acquire one entry (source from the config or --source) and write its record.json"),
        (
            "simulate",
            "simulate",
            "simulate one entry's map from a bundled structure and write its record.json",
        ),
    ):
        p = subparsers.add_parser(name, help=hlp)
        p.add_argument("entry", help="EMDB id, e.g. EMD-1997")
        p.add_argument("--pdb", help="fitted PDB id (default: the header's first fitted model)")
        p.add_argument("--chains", help="chains of interest, comma-separated (default: all)")
        p.add_argument("-c", "--config", action="append", help=cfg_help)
        if source is None:
            p.add_argument(
                "--source", choices=["download", "local", "simulate"], help="override the config's source"
            )
        p.add_argument("-o", "--out-dir", help="entry folder (default: {resources}/archive/{entry})")
        p.set_defaults(func=(lambda a, s=source: _fetch(a, s)))
        paths.declare(p, inputs=["config"], out_dirs=["out_dir"])

    p = subparsers.add_parser(
        "acquire-tables", help="gather record.json files into entries/rejected/manifest tables"
    )
    p.add_argument("records", nargs="+", help="record.json files")
    p.add_argument("-o", "--out-dir", default="results/acquire", help="folder of the three tables")
    p.set_defaults(func=_tables)
    paths.declare(p, inputs=["records"], out_dirs=["out_dir"])
