"""The ``cryosse`` command line. Each stage module contributes its subcommands.

:data:`COMMANDS` lists every subcommand, in the order ``cryosse --help`` shows them (what
users run first), with the module that defines it and its one-line help. The module
defines ``add_cli(subparsers)``, which adds its subcommands with
``set_defaults(func=...)``; ``func(args)`` returns an exit code. Only the module of the
subcommand being run is imported, so ``cryosse --help`` imports neither torch nor pandas.
The workflow's rule scripts call the same package functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys

from cryosse import __version__, paths
from cryosse.argtypes import check_required

#: subcommand -> (module defining it, one-line help), in the order of ``cryosse --help``
COMMANDS = {
    "predict": ("cryosse.predict_cli", "segment helices and sheets in a cryo-EM map"),
    "score": (
        "cryosse.score.cli",
        "score another tool's helix/sheet prediction against our labels or a label map",
    ),
    "check-config": (
        "cryosse.config",
        "check config files as the workflow and the subcommands do (names the file, line and key)",
    ),
    "query-emdb": (
        "cryosse.acquire.cli",
        "search EMDB for 5-10 A maps with a fitted model; write an entry table",
    ),
    "estimate": (
        "cryosse.estimate_cli",
        "what a run will cost: downloads, disk, CPU- and GPU-hours, from the entry table and a sample",
    ),
    "fetch": (
        "cryosse.acquire.cli",
        "acquire one entry (source from the config or --source) and write its record.json",
    ),
    "simulate": (
        "cryosse.acquire.cli",
        "simulate one entry's map from a bundled structure and write its record.json",
    ),
    "acquire-tables": (
        "cryosse.acquire.cli",
        "gather record.json files into entries/rejected/manifest tables",
    ),
    "build-pair": (
        "cryosse.dataset.cli",
        "build one map/label pair (quality, box crop, DSSP labels) for a chain",
    ),
    "cluster": ("cryosse.splits", "cluster central-chain sequences with MMseqs2 at 35%% identity"),
    "make-splits": ("cryosse.splits", "the main split and the cross-validation splits"),
    "audit": ("cryosse.splits", "leakage audit of split files (sequence identity and box overlap)"),
    "train": ("cryosse.train", "train the network for one split, loss and setting (resumable)"),
    "select": ("cryosse.train", "pick the best setting per loss from trained checkpoints"),
    "evaluate": ("cryosse.evaluate", "predict and score the test cases of one split with one checkpoint"),
    "aggregate": ("cryosse.evaluate", "weighted Table-1 row(s) from a per-case F1 table"),
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``cryosse predict: error: argument --ci: ...`` (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the named subcommand's module only, else every subcommand.

    With ``argv`` None, every module's subcommands are built in full (tests, docs); with an
    ``argv`` that names no known subcommand (``cryosse --help``), each subcommand is listed
    by its help line without importing its module."""
    parser = Parser(
        prog="cryosse",
        description="Secondary-structure segmentation of medium-resolution cryo-EM maps "
        "(Mu et al. 2024, DeepSSETracer 1.1): dataset, training benchmark and prediction.",
    )
    parser.add_argument("--version", action="version", version=f"cryosse {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(title="subcommands", metavar="COMMAND", parser_class=Parser)
    named = None if argv is None else _command(argv)
    if named in COMMANDS:
        modules = [COMMANDS[named][0]]
    elif argv is None:
        modules = list(dict.fromkeys(m for m, _ in COMMANDS.values()))
    else:
        for name, (_, hlp) in COMMANDS.items():
            sub.add_parser(name, help=hlp)
        return parser
    for module in modules:
        importlib.import_module(module).add_cli(sub)
    order = list(COMMANDS)
    sub._choices_actions.sort(key=lambda a: order.index(a.dest))  # --help lists them in COMMANDS' order
    for name, p in sub.choices.items():
        hlp = COMMANDS[name][1]
        p.description = p.description or hlp[0].upper() + hlp[1:] + "."
    return parser


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler or `kill`) becomes SystemExit, so every `finally` and
    # cleanup runs and no staging folder or temporary file is left behind.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    check_required(args)
    try:
        paths.check(args)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        # Package errors carry the input and the cause in their message.
        print(f"cryosse: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a folder given as a file, a folder that cannot be written, a full disk...
        where = exc.filename if exc.filename is not None else "input/output"
        print(f"cryosse: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
