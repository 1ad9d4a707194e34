"""The ``cryosse`` command line. Each stage module contributes its subcommands.

A module listed in ``_MODULES`` defines ``add_cli(subparsers)``, which adds its
subcommands with ``set_defaults(func=...)``; ``func(args)`` returns an exit
code. The workflow's rule scripts call the same package functions.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys

from cryosse import __version__, paths

_MODULES = (
    "cryosse.config",
    "cryosse.acquire.cli",
    "cryosse.dataset.cli",
    "cryosse.splits",
    "cryosse.train",
    "cryosse.evaluate",
    "cryosse.predict_cli",
    "cryosse.score.cli",
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``cryosse predict: error: argument --ci: ...`` (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cryosse",
        description="Secondary-structure segmentation of medium-resolution cryo-EM maps "
        "(Mu et al. 2024, DeepSSETracer 1.1): dataset, training benchmark and prediction.",
    )
    parser.add_argument("--version", action="version", version=f"cryosse {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(title="subcommands", metavar="COMMAND", parser_class=Parser)
    for name in _MODULES:
        module = importlib.import_module(name)
        module.add_cli(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler or `kill`) becomes SystemExit, so every `finally` and
    # cleanup runs and no staging folder or temporary file is left behind.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
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
