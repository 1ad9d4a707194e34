"""The one check of a subcommand's paths, before it reads or writes anything.

Each subcommand declares which of its options are inputs, output files and output
folders (:func:`declare`); ``cryosse.cli.main`` calls :func:`check` on the parsed
arguments. It refuses an empty output path, an output that is one of the inputs (the same path,
a symbolic link to it or a hard link of it), an output folder that is an input file, two
outputs that are the same file, and one file given twice to a list of inputs. The message
names the options and the paths.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Iterator
from typing import Any

_KEY = "_cryosse_paths"


def declare(
    parser: argparse.ArgumentParser,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    out_dirs: Iterable[str] = (),
) -> None:
    """Record the ``dest`` names of ``parser``'s input paths, output files and output folders."""
    names = {
        a.dest: ("/".join(a.option_strings) or a.dest.upper())
        for a in parser._actions
        if a.help != argparse.SUPPRESS
    }  # an old spelling (argtypes.old_spelling) is not the name
    roles = {"input": tuple(inputs), "output": tuple(outputs), "output folder": tuple(out_dirs)}
    for dests in roles.values():
        unknown = [d for d in dests if d not in names]
        if unknown:
            raise AssertionError(f"{parser.prog}: no option {unknown}")  # a programming error
    parser.set_defaults(**{_KEY: {role: [(d, names[d]) for d in dests] for role, dests in roles.items()}})


def _given(args: argparse.Namespace, dests: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(option name, path) of each path given to these options (lists give one per item)."""
    for dest, name in dests:
        value: Any = getattr(args, dest, None)
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                yield name, os.fspath(item)


def _same(a: str, b: str) -> bool:
    """The same file or folder: one path, a link to the other, or a hard link of it."""
    if os.path.abspath(a) == os.path.abspath(b) or os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming the options and paths when the declared paths cannot be used."""
    roles = getattr(args, _KEY, None)
    if roles is None:
        return
    inputs = [(n, p) for n, p in _given(args, roles["input"]) if p.strip()]  # "" is "none" (--init-from)
    outputs = list(_given(args, roles["output"]))
    out_dirs = list(_given(args, roles["output folder"]))
    for name, path in outputs + out_dirs:
        if not path.strip():
            raise ValueError(f"{name}: an empty path; give a file or folder name")
    for i, (name, path) in enumerate(inputs):
        for other, other_path in inputs[:i]:
            if other == name and _same(path, other_path):
                raise ValueError(f"{name}: {path} is given twice (as {other_path})")
    for out_name, out in outputs + out_dirs:
        for in_name, src in inputs:
            if _same(out, src):
                raise ValueError(
                    f"{out_name} {out}: it is the input {in_name} {src}; writing there would destroy it"
                    " (choose another output path)"
                )
    for i, (name, path) in enumerate(outputs):
        for other, other_path in outputs[:i]:
            if _same(path, other_path):
                raise ValueError(f"{name} {path}: the same file as {other} {other_path}; give two paths")
