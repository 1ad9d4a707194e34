"""One entry in, one ``record.json`` out: the acquire stage's per-entry step and its tables.

``acquire_entry`` fetches (``download``), copies (``local``) or makes
(``simulate``) the map ``emd_N.map.gz``, the header ``emd-N.xml`` and the
model ``XXXX.cif.gz`` into ``{resources}/archive/{entry}/``, checks them and
writes ``record.json`` (docs/design.md). It never raises for a problem of the
entry itself: the record says ``status: rejected`` with the reason, so one bad
entry never stops a run. A transient failure of the archive (timeouts, 5xx, 429)
that outlasts the retries raises instead and writes no record: the job fails and
a later run fetches the entry, rather than losing it for good. ``write_tables`` gathers the records into
``entries.tsv``, ``rejected.tsv`` and ``manifest.tsv``.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryosse.acquire import download as dl
from cryosse.acquire.emdb import HeaderError, header_v3_xml, parse_header, verify_header
from cryosse.acquire.records import check_ids, emdb_number, empty_record
from cryosse.io import atomic_write, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

SOURCES = ("download", "local", "simulate")
STRUCTURE_SUFFIXES = (".cif.gz", ".cif", ".pdb.gz", ".pdb", ".ent.gz", ".ent")


@dataclass(frozen=True)
class AcquireSettings:
    """The acquire section of the config (plus source and seed) as one typed object."""

    source: str = "download"
    seed: int = 42
    emdb_api: str = "https://www.ebi.ac.uk/emdb/api"
    emdb_files: str = "https://ftp.ebi.ac.uk/pub/databases/emdb/structures"
    pdb_files: str = "https://files.wwpdb.org/pub/pdb/data/structures/divided/mmCIF"
    mirror: str = ""
    retries: int = 4
    backoff_s: float = 2.0
    timeout_s: float = 120.0
    resolution_min: float = 5.0
    resolution_max: float = 10.0
    release_date_max: str = ""
    methods: tuple[str, ...] = ("singleParticle", "helical", "subtomogramAveraging")
    search_rows: int = 100000
    sim_structures: str = "data/demo_structures"
    sim_resolution_range: tuple[float, float] = (5.0, 10.0)
    sim_voxel_size: float = 1.2
    sim_noise: float = 0.1
    sim_margin: float = 12.0
    sim_release_date: str = "2024-01-01"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any], base: str | os.PathLike = ".") -> AcquireSettings:
        """Build from the workflow config; relative folders are taken from ``base``."""
        acq = dict(config.get("acquire") or {})
        sim = dict(acq.pop("simulate", None) or {})
        d = cls()

        def path(p: str) -> str:
            return str(Path(base) / p) if p and not Path(p).is_absolute() else p

        return cls(
            source=str(config.get("source", d.source)),
            seed=int(config.get("seed", d.seed)),
            emdb_api=str(acq.get("emdb_api", d.emdb_api)),
            emdb_files=str(acq.get("emdb_files", d.emdb_files)),
            pdb_files=str(acq.get("pdb_files", d.pdb_files)),
            mirror=path(str(acq.get("mirror", d.mirror) or "")),
            retries=int(acq.get("retries", d.retries)),
            backoff_s=float(acq.get("backoff_s", d.backoff_s)),
            timeout_s=float(acq.get("timeout_s", d.timeout_s)),
            resolution_min=float(acq.get("resolution_min", d.resolution_min)),
            resolution_max=float(acq.get("resolution_max", d.resolution_max)),
            release_date_max=str(acq.get("release_date_max", d.release_date_max) or ""),
            methods=tuple(acq.get("methods", d.methods)),
            search_rows=int(acq.get("search_rows", d.search_rows)),
            sim_structures=path(str(sim.get("structures", d.sim_structures))),
            sim_resolution_range=tuple(float(v) for v in sim.get("resolution_range", d.sim_resolution_range)),  # type: ignore[arg-type]
            sim_voxel_size=float(sim.get("voxel_size", d.sim_voxel_size)),
            sim_noise=float(sim.get("noise", d.sim_noise)),
            sim_margin=float(sim.get("margin", d.sim_margin)),
            sim_release_date=str(sim.get("release_date", d.sim_release_date)),
        )


def archive_names(emdb_id: str, pdb_id: str) -> dict[str, str]:
    n = emdb_number(emdb_id)
    return {"map": f"emd_{n}.map.gz", "header": f"emd-{n}.xml", "model": f"{pdb_id.upper()}.cif.gz"}


def remote_locations(settings: AcquireSettings, emdb_id: str, pdb_id: str | None) -> dict[str, str]:
    """Where the map, header and model live in the archives (or the mirror), same layout."""
    n = emdb_number(emdb_id)
    if settings.source == "local":
        if not settings.mirror:
            raise ValueError("source local needs acquire.mirror (a folder with the archives' layout)")
        emdb_base = str(Path(settings.mirror) / "structures")
        pdb_base = str(Path(settings.mirror) / "mmCIF")
        join = os.path.join
    else:
        emdb_base, pdb_base = settings.emdb_files.rstrip("/"), settings.pdb_files.rstrip("/")

        def join(*parts: str) -> str:
            return "/".join(parts)

    out = {
        "map": join(emdb_base, f"EMD-{n}", "map", f"emd_{n}.map.gz"),
        "header": join(emdb_base, f"EMD-{n}", "header", f"emd-{n}.xml"),
    }
    if pdb_id:
        pid = pdb_id.lower()
        # The divided archive's hash folder: the id's 2nd and 3rd characters from the end
        # (1abc -> ab; an extended pdb_12345678 -> 67, wwPDB's rule).
        out["model"] = join(pdb_base, pid[-3:-1], f"{pid}.cif.gz")
    return out


def _file_entry(path: Path, root: Path) -> dict[str, Any]:
    return {"path": str(path), "name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}


def find_structure(folder: str | os.PathLike, pdb_id: str) -> Path:
    folder = Path(folder)
    for stem in (pdb_id.upper(), pdb_id.lower()):
        for sfx in STRUCTURE_SUFFIXES:
            p = folder / f"{stem}{sfx}"
            if p.is_file():
                return p
    raise FileNotFoundError(f"no structure {pdb_id} in {folder} (looked for {pdb_id.upper()}.cif.gz etc.)")


def simulate_entry_files(entry: dict[str, Any], folder: Path, settings: AcquireSettings) -> None:
    """Make map, header and model of a simulated entry (skips files already there)."""
    import gemmi

    from cryosse.acquire.simulate import draw_resolution, simulate_density, write_map_gz

    emdb_id, pdb_id = entry["emdb_id"], entry["pdb_id"]
    if not pdb_id:
        raise dl.DownloadError(f"{emdb_id}: source simulate needs a pdb_id", "no fitted model", True)
    names = archive_names(emdb_id, pdb_id)
    try:
        src = find_structure(settings.sim_structures, pdb_id)
    except FileNotFoundError as exc:
        raise dl.DownloadError(f"{emdb_id}: {exc}", "structure not bundled", True) from exc
    model = folder / names["model"]
    if src.name.endswith(".cif.gz"):
        dl.fetch_file(str(src), model, dl.verify_model, retries=0, what=f"{emdb_id} model")
    else:
        st0 = gemmi.read_structure(str(src))
        st0.setup_entities()
        with dl.atomic_path(model) as tmp:
            st0.make_mmcif_document().write_file(str(tmp.with_suffix("")))
            import gzip
            import shutil

            with open(tmp.with_suffix(""), "rb") as a, gzip.open(tmp, "wb") as b:
                shutil.copyfileobj(a, b)
            tmp.with_suffix("").unlink()
    number = emdb_number(emdb_id)
    lo, hi = settings.sim_resolution_range
    resolution = draw_resolution(settings.seed, int(number), lo, hi)
    map_path, header_path = folder / names["map"], folder / names["header"]
    if map_path.exists() and header_path.exists():
        try:
            dl.verify_map(map_path)
            verify_header(header_path)
            return
        except dl.VerifyError:
            pass
    st = gemmi.read_structure(str(model))
    sim = simulate_density(
        st,
        resolution,
        settings.sim_voxel_size,
        settings.sim_margin,
        settings.sim_noise,
        settings.seed,
        int(number),
    )
    write_map_gz(map_path, sim)
    xml = header_v3_xml(
        emdb_id,
        resolution,
        sim.contour_level,
        "simulated",
        settings.sim_voxel_size,
        [pdb_id],
        settings.sim_release_date,
        title=f"Simulated map of PDB {pdb_id} (cryosse demo; not an EMDB entry)",
    )
    with atomic_write(header_path, "wb") as fh:
        fh.write(xml)


def acquire_entry(
    entry: dict[str, Any], out_dir: str | os.PathLike, settings: AcquireSettings
) -> dict[str, Any]:
    """Acquire one entry into ``out_dir`` and write ``out_dir/record.json``; return the record."""
    folder = Path(out_dir)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    rec = empty_record(entry, settings.source)
    try:
        _acquire(entry, folder, settings, rec)
        rec["status"], rec["reason"] = "ok", ""
    except OSError:  # a full disk, a folder that cannot be written: no record, and no half entry
        if created and settings.source == "simulate":  # (downloads are kept: they are verified, and reused)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    except dl.DownloadError as exc:
        if not exc.permanent:  # the archive's trouble, not the entry's: fail the job, record nothing
            raise RuntimeError(
                f"{entry['emdb_id']}: {exc} (a transient failure after {settings.retries + 1} attempts; nothing "
                "was recorded, so the entry is not lost: run again later)"
            ) from exc
        rec["reason"] = exc.reason
        log.error("%s: rejected: %s", entry["emdb_id"], exc)
    except (HeaderError, dl.VerifyError) as exc:
        rec["reason"] = str(exc).split(": ", 1)[-1]
        log.error("%s: rejected: %s", entry["emdb_id"], exc)
    except _Reject as exc:
        rec["reason"] = str(exc)
        log.error("%s: rejected: %s", entry["emdb_id"], exc)
    except (ValueError, RuntimeError) as exc:
        # Anything else wrong with this entry's files (e.g. gemmi cannot read a
        # structure): recorded, so the other entries go on.
        rec["reason"] = f"{type(exc).__name__}: {exc}"
        log.exception("%s: rejected", entry["emdb_id"])
    write_json(folder / "record.json", rec)
    return rec


class _Reject(Exception):
    pass


def _acquire(entry: dict[str, Any], folder: Path, settings: AcquireSettings, rec: dict[str, Any]) -> None:
    problem = entry.get("problem") or check_ids(
        entry["emdb_id"], entry.get("pdb_id", ""), entry.get("chains", [])
    )
    if problem:
        raise _Reject(problem)
    if settings.source not in SOURCES:
        raise ValueError(f"source {settings.source!r} is not one of {SOURCES}")
    emdb_id = entry["emdb_id"]
    kw = {"retries": settings.retries, "backoff_s": settings.backoff_s, "timeout_s": settings.timeout_s}
    n = emdb_number(emdb_id)
    header_path = folder / f"emd-{n}.xml"
    if settings.source == "simulate":
        simulate_entry_files(entry, folder, settings)
    else:
        loc = remote_locations(settings, emdb_id, None)
        dl.fetch_file(loc["header"], header_path, verify_header, what=f"{emdb_id} header", **kw)
    meta = parse_header(header_path)
    if meta["emdb_id"] != emdb_id:
        raise _Reject(f"header names {meta['emdb_id']}, not {emdb_id}")
    rec["fitted_pdbs"] = meta["fitted_pdbs"]
    rec["release_date"] = meta["release_date"]
    rec["method"] = meta["method"]
    rec["resolution"] = meta["resolution"]
    rec["contour_level"] = meta["contour_level"]
    rec["contour_source"] = meta["contour_source"]
    pdb_id = entry.get("pdb_id") or (meta["fitted_pdbs"][0] if meta["fitted_pdbs"] else "")
    if not pdb_id:
        raise _Reject("no fitted model in the EMDB header and none given in the entry table")
    rec["pdb_id"] = pdb_id
    if meta["fitted_pdbs"] and pdb_id not in meta["fitted_pdbs"]:
        log.warning(
            "%s: PDB %s is not among the header's fitted models %s", emdb_id, pdb_id, meta["fitted_pdbs"]
        )
    res = meta["resolution"]
    if res is None:
        raise _Reject("no resolution in the EMDB header")
    if not (settings.resolution_min <= res <= settings.resolution_max):
        raise _Reject(
            f"resolution {res:g} A outside {settings.resolution_min:g}-{settings.resolution_max:g} A"
        )
    names = archive_names(emdb_id, pdb_id)
    map_path, model_path = folder / names["map"], folder / names["model"]
    if settings.source != "simulate":
        loc = remote_locations(settings, emdb_id, pdb_id)
        dl.fetch_file(loc["map"], map_path, dl.verify_map, what=f"{emdb_id} map", **kw)
        dl.fetch_file(loc["model"], model_path, dl.verify_model, what=f"{emdb_id} model {pdb_id}", **kw)
    from cryosse.geometry import read_map

    geom = read_map(map_path).geometry
    rec["voxel_size_xyz"] = [round(v, 6) for v in geom.voxel_size]
    rec["voxel_size"] = round(float(geom.voxel_size[0]), 6)
    rec["origin_xyz"] = [round(v, 4) for v in geom.origin_xyz]
    rec["shape_zyx"] = list(geom.shape_zyx)
    rec["map"], rec["header"], rec["model"] = str(map_path), str(header_path), str(model_path)
    rec["files"] = [_file_entry(p, folder) for p in (map_path, header_path, model_path)]
    _check_chains(entry.get("chains") or [], model_path, pdb_id)


def _check_chains(chains: list[str], model_path: Path, pdb_id: str) -> None:
    """Reject an entry whose chains of interest the model does not have."""
    if not chains:
        return
    import gemmi

    st = gemmi.read_structure(str(model_path))
    have = [ch.name for ch in st[0]] if len(st) else []
    missing = [c for c in chains if c not in have]
    if missing:
        raise _Reject(
            f"chain(s) {', '.join(missing)} not in model {pdb_id} (its chains: {', '.join(have) or 'none'})"
        )


# --- tables -----------------------------------------------------------------------

ENTRY_COLUMNS = [
    "emdb_id",
    "pdb_id",
    "chains",
    "resolution",
    "contour_level",
    "contour_source",
    "voxel_size",
    "fitted_pdbs",
    "release_date",
    "method",
    "source",
    "record",
]


def write_tables(
    records: list[str | os.PathLike],
    entries_tsv: str | os.PathLike,
    rejected_tsv: str | os.PathLike,
    manifest_tsv: str | os.PathLike,
) -> tuple[int, int]:
    """Gather records into the entry, rejection and manifest tables; returns (ok, rejected)."""
    import pandas as pd

    ok_rows, rej_rows, files = [], [], []
    for path in records:
        try:
            rec = read_json(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable record ({exc})") from exc
        if not isinstance(rec, dict) or "status" not in rec:
            raise ValueError(f"{path}: not an acquisition record (a JSON object with a status is expected)")
        if rec.get("status") == "ok":
            row = {k: rec.get(k) for k in ENTRY_COLUMNS}
            row["chains"] = ",".join(rec.get("chains") or [])
            row["fitted_pdbs"] = ",".join(rec.get("fitted_pdbs") or [])
            row["record"] = str(path)
            ok_rows.append(row)
            for f in rec.get("files") or []:
                files.append(
                    {"emdb_id": rec["emdb_id"], "path": f["path"], "size": f["size"], "sha256": f["sha256"]}
                )
        else:
            rej_rows.append(
                {"stage": "acquire", "id": rec.get("emdb_id"), "reason": rec.get("reason") or "unknown"}
            )
    from cryosse.io import write_tsv

    write_tsv(entries_tsv, pd.DataFrame(ok_rows, columns=ENTRY_COLUMNS))
    write_tsv(rejected_tsv, pd.DataFrame(rej_rows, columns=["stage", "id", "reason"]))
    write_tsv(manifest_tsv, pd.DataFrame(files, columns=["emdb_id", "path", "size", "sha256"]))
    return len(ok_rows), len(rej_rows)
