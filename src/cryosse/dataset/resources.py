"""Job resources of the dataset rules (standard library only: Snakemake imports it at parse time)."""

from __future__ import annotations

import json
import os
import struct


def map_bytes(path: str | os.PathLike) -> int:
    """Size of a map once decompressed (gzip: its ISIZE trailer, exact below 4 GiB)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b" or size < 18:
            return size
        fh.seek(-4, os.SEEK_END)
        isize = struct.unpack("<I", fh.read(4))[0]
    # ISIZE is the size modulo 2^32: take the smallest value not below the compressed size.
    while isize < size:
        isize += 1 << 32
    return isize


def entry_mem_mb(record_path: str | os.PathLike) -> int:
    """Memory in MB for one entry's job: the decompressed map about twice (gzip
    reading holds two copies for a moment) plus 1.5 GB for boxes and DSSP;
    4000 when the record or its map cannot be read (a rejected entry)."""
    try:
        with open(record_path) as fh:
            size = map_bytes(json.load(fh)["map"])
    except (OSError, ValueError, TypeError, KeyError):
        return 4000
    return int(1500 + 2.2 * size / 2**20)
