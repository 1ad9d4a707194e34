"""argparse value types that refuse what no run can use, so the error names the option.

``number(lo=0, lo_open=True)`` accepts finite numbers > 0; NaN and infinities are never
accepted. argparse reports a refusal as ``argument --ci: must be a number in (0, 1)``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> Callable[[str], float | int]:
    """A type accepting finite numbers (integers with ``integer``) within the bounds."""
    kind = "an integer" if integer else "a number"
    lo_s = "" if lo is None else ("(" if lo_open else "[") + f"{lo:g}"
    hi_s = "" if hi is None else f"{hi:g}" + (")" if hi_open else "]")
    if lo is not None and hi is not None:
        want = f"{kind} in {lo_s}, {hi_s}"
    elif lo is not None:
        want = f"{kind} {'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        want = f"{kind} {'<' if hi_open else '<='} {hi:g}"
    else:
        want = f"a finite {kind[2:] if kind.startswith('a ') else kind[3:]}"

    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}; must be {want}") from None
        bad = not math.isfinite(value)
        bad |= lo is not None and (value <= lo if lo_open else value < lo)
        bad |= hi is not None and (value >= hi if hi_open else value > hi)
        if bad:
            raise argparse.ArgumentTypeError(f"{text} is out of range; must be {want}")
        return value

    parse.__name__ = kind[2:] if kind.startswith("a ") else kind[3:]
    return parse


POSITIVE = number(0, lo_open=True)
NON_NEGATIVE = number(0)
FRACTION = number(0, 1)
COUNT = number(0, integer=True)
AT_LEAST_ONE = number(1, integer=True)


class _Renamed(argparse.Action):
    """An option's old spelling: works as the new one, with a deprecation message on stderr."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        print(f"{parser.prog}: {option_string} is deprecated; use {self.new} (same meaning)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def old_spelling(parser: argparse.ArgumentParser, old: str, new: str, dest: str) -> None:
    """Keep ``old`` working as ``new`` (stored in ``dest``), hidden from --help, with a message.

    A required ``new`` becomes optional to argparse (either spelling satisfies it) and is
    checked by :func:`check_required` after parsing."""
    parser.add_argument(old, dest=dest, action=_Renamed, new=new, help=argparse.SUPPRESS)
    for action in parser._actions:  # noqa: SLF001
        if action.dest == dest and action.required:
            action.required = False
            action.help = f"{action.help} (required)"
            needed = [*(parser.get_default("_required") or []), (dest, "/".join(action.option_strings))]
            parser.set_defaults(_required=needed, _parser=parser)


def check_required(args: argparse.Namespace) -> None:
    """The required options :func:`old_spelling` made optional to argparse: given by either name."""
    for dest, names in getattr(args, "_required", None) or []:
        if getattr(args, dest, None) is None:
            args._parser.error(f"the following arguments are required: {names}")  # noqa: SLF001


def out_dir_option(parser: argparse.ArgumentParser, help: str) -> None:
    """The required ``-o/--out-dir DIR`` (stored in ``out``) of a subcommand whose folder option
    was once spelt ``--out``: that spelling keeps working (:func:`old_spelling`)."""
    parser.add_argument("-o", "--out-dir", dest="out", metavar="DIR", required=True, help=help)
    old_spelling(parser, "--out", "--out-dir", "out")
