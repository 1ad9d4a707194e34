"""Small I/O helpers at the edge: atomic writes, checksums, tables.

Every file the workflow produces is written to a temporary name in the same
folder and renamed into place only when complete, so a crash or a kill never
leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary name keeps the final suffix (``.mrc``, ``.npz``...) so that
    libraries which pick a format from the extension behave. On any exception
    the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else "".join(path.suffixes[-2:]) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=sfx, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, file_mode())  # mkstemp makes files private; outputs follow the umask
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, str(tmp_path)):
            # e.g. a full disk: name the file being written, not its temporary name (or nothing)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file for writing; it replaces ``path`` only when closed cleanly."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON, atomically (byte-stable for equal input).

    Valid JSON only: NaN (no value) is written as null, and an infinity is refused naming its key.
    """
    try:
        text = json.dumps(json_ready(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    except ValueError as exc:  # an infinity: not JSON, and a sign of a value gone wrong upstream
        keys = ", ".join(k for k, _ in non_finite(obj))
        raise ValueError(f"{path}: not written: {exc} (an infinity in {keys})") from exc
    with atomic_write(path) as fh:
        fh.write(text + "\n")


def json_ready(obj: Any, infinities: bool = False) -> Any:
    """``obj`` with numpy values as plain ones and every NaN (no value: e.g. the F1 of a class
    absent from a box) as None, JSON's null; with ``infinities``, infinities too."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: json_ready(v, infinities) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v, infinities) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist(), infinities)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or (infinities and math.isinf(obj))):
        return None
    return obj


def non_finite(obj: Any, at: str = "") -> Iterator[tuple[str, float]]:
    """(key as ``a.b[2]``, value) of every NaN or infinity in ``obj``'s dicts and lists."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from non_finite(v, f"{at}.{k}" if at else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from non_finite(v, f"{at}[{i}]")
    else:
        try:
            if not math.isfinite(float(obj)):
                yield at, float(obj)
        except (TypeError, ValueError):
            return


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


#: identifier columns: always read as text, never as numbers or NA (a chain may be called
#: "NA", a split "0", a PDB id "1E10")
ID_COLUMNS = ("pair_id", "emdb_id", "pdb_id", "chain", "split", "loss", "setting", "role", "case_id")
#: what stands for "no value" in every other column
NA_STRINGS = ("", "NA", "N/A", "nan", "NaN")


def read_tsv(path: str | os.PathLike | Any, text: bool = False, **kwargs: Any) -> Any:
    """A TSV as a pandas DataFrame, with the one NA policy of every cryosse table: identifier
    columns (:data:`ID_COLUMNS`) are text as written, and in the others :data:`NA_STRINGS`
    are NaN. With ``text``, every cell is text as written (nothing is NA; ``path`` may then be
    an open buffer). ``kwargs`` go to ``pandas.read_csv`` (``dtype`` adds to the identifiers')."""
    import pandas as pd

    if text:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, **kwargs)

    header = pd.read_csv(path, sep="\t", nrows=0, comment=kwargs.get("comment")).columns
    text = {c: str for c in header if c in ID_COLUMNS}
    na = {c: list(NA_STRINGS) for c in header if c not in text}
    return pd.read_csv(
        path,
        sep="\t",
        dtype={**text, **kwargs.pop("dtype", {})},
        keep_default_na=False,
        na_values=na,
        **kwargs,
    )


def write_tsv(path: str | os.PathLike, df: Any, **kwargs: Any) -> None:
    """Write a pandas DataFrame as TSV atomically (no index, '.'-free NA as empty)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("sep", "\t")
    kwargs.setdefault("lineterminator", "\n")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode a newly created file gets under the current umask."""
    return 0o666 & ~_umask()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def staging_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new hidden folder ``{parent}/.{prefix}-{pid}-XXXX`` for outputs that appear whole or not at all.

    The process id in the name lets :func:`remove_stale_staging` tell a folder left
    by a killed run (SIGKILL leaves no chance to clean up) from one in use.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{prefix}-{os.getpid()}-", dir=parent))
    os.chmod(
        path, 0o777 & ~_umask()
    )  # mkdtemp makes it private; a folder renamed into place follows the umask
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_staging(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove ``.{prefix}-{pid}-*`` entries of ``parent`` whose process no longer runs; return them."""
    parent = Path(parent)
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    head = f".{prefix}-"
    for entry in parent.iterdir():
        if not entry.name.startswith(head):
            continue
        pid_text = entry.name[len(head) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether a file starts with gzip's magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def map_bytes(path: str | os.PathLike) -> int:
    """Size of a file once decompressed (gzip: its ISIZE trailer, exact below 4 GiB)."""
    size = os.path.getsize(path)
    if size < 18 or not is_gzip(path):
        return size
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        isize = struct.unpack("<I", fh.read(4))[0]
    # ISIZE is the size modulo 2^32: take the smallest value not below the compressed size.
    while isize < size:
        isize += 1 << 32
    return isize


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike, who: str) -> Iterator[None]:
    """Hold ``folder`` (made when missing, removed again if left empty) for one run of ``who``:
    a second run into the same folder is refused while this one holds it (``flock``; released
    when the process ends, however it ends)."""
    import fcntl

    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"{folder}: another {who} is writing into this folder; wait for it to finish, or choose"
                " another output folder"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
