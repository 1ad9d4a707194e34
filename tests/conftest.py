"""Shared fixtures: paths to the project and to the real test data beside it."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: ../shared beside the project (read-only test material; absent on a user's clone). CI runs a
#: second, quick pass with CRYOSSE_SHARED pointing nowhere, so a test that needs it and does
#: not skip fails there.
SHARED = Path(os.environ.get("CRYOSSE_SHARED", ROOT.parent / "shared"))
REAL = Path(os.environ.get("CRYOSSE_REAL_DATA", SHARED / "data" / "real"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def real() -> Path:
    """../shared/data/real (read in place, never copied); tests skip where it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real test data not found at {REAL}")
    return REAL


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


WORKFLOW_FILES = ("Snakefile", "workflow", "config", "scripts", "src", "data", "envs", "profiles")


def copy_workflow(
    dst: Path, n_entries: int | None = None, overlay: str | None = None, overlay_name: str = "test.yaml"
) -> Path:
    """The workflow in a temp folder (never the repo's results/).

    With ``n_entries``, ``config/test_entries.tsv`` holds the first demo entries; with
    ``overlay``, ``config/<overlay_name>`` holds a config overlay for ``--configfile``.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dst / name)
    if n_entries is not None:
        lines = (ROOT / "config" / "demo_entries.tsv").read_text().splitlines()
        head = [ln for ln in lines if ln.startswith("#")]
        rows = [ln for ln in lines if ln and not ln.startswith("#")]
        (dst / "config" / "test_entries.tsv").write_text("\n".join(head + rows[: n_entries + 1]) + "\n")
    if overlay is not None:
        (dst / "config" / overlay_name).write_text(overlay)
    return dst


def snakemake_cmd(
    *args: str, configfiles: Sequence[str | Path] = (), cores: int | None = 1, dry_run: bool = False
) -> list[str]:
    """The one place the tests build a Snakemake command line (this interpreter's):
    ``python -m snakemake [--configfile F..] [--cores N] [-n] ARGS``.

    ``--configfile`` comes first because it takes several values; put options before targets
    in ``args`` (or a ``--`` between them). ``cores=None`` leaves ``--cores`` out (a profile's
    executor decides). For a run that must be a ``Popen`` (killed mid-way); else use
    :func:`run_snakemake`.
    """
    cmd = [sys.executable, "-m", "snakemake"]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    return cmd + [*(["-n"] if dry_run else []), *args]


def run_snakemake(
    wf: Path,
    *args: str,
    configfiles: Sequence[str | Path] = (),
    cores: int | None = 1,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Snakemake (this interpreter's) in a workflow copy ``wf`` made by :func:`copy_workflow`.

    The command line is :func:`snakemake_cmd`'s. With ``check`` a non-zero exit fails the test
    with the output's tail.
    """
    cmd = snakemake_cmd(*args, configfiles=configfiles, cores=cores, dry_run=dry_run)
    proc = subprocess.run(
        cmd, cwd=wf, env=None if env is None else dict(env), capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule in a dry run's job-stats table (rule and count per line)."""
    jobs: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            jobs[parts[0]] = int(parts[1])
    return jobs


def plan_problem(
    wf: Path, *targets: str, need: Sequence[str], configfiles: Sequence[str | Path] = (), **kw
) -> str | None:
    """Why a dry run of ``targets`` in ``wf`` fails or plans no job of a rule in ``need``;
    None when it plans them all (``kw`` goes to :func:`run_snakemake`)."""
    res = run_snakemake(wf, "--quiet", "rules", "--", *targets, configfiles=configfiles, dry_run=True,
                        timeout=300, check=False, **kw)  # fmt: skip
    if res.returncode != 0:
        return f"snakemake -n failed: {(res.stdout + res.stderr)[-800:]}"
    missing = [r for r in need if r not in planned_jobs(res)]
    return f"no {', '.join(missing)} job planned for {' '.join(targets)}" if missing else None


# ------------------------------------------------------------------ the command line, as a user runs it

#: a small bundled wwPDB entry and its chain, for tests that need a real structure without ../shared
STRUCTURE = ROOT / "data" / "demo_structures" / "2XDG.cif.gz"
CHAIN = "A"


def tree(path: Path) -> dict[str, bytes | None]:
    """Every file and folder below ``path`` (hidden ones too) with its bytes: what must not change."""
    return {
        str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))
    }


def per_case_table(
    tmp_path: Path, rows: list[str], header: str = "case\tca_helix\tca_sheet\tCE_helix\tCE_sheet"
) -> Path:
    """``tmp_path/per_case.tsv``: a per-case F1 table for ``cryosse aggregate`` (tab-separated rows)."""
    p = tmp_path / "per_case.tsv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


def run_cli(argv: Sequence[object], capsys) -> tuple[int, str]:
    """Run ``cryosse``; return (exit code, stderr), and check that a refusal is one line without
    a traceback."""
    from cryosse.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refuses an option's value: exit 2 (a usage error)
        code = exc.code
    err = capsys.readouterr().err
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.startswith("cryosse") and ": error: " in ln]
        assert len(lines) == 1, err
        assert "Traceback" not in err, err
    return code, err


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A map simulated at 6 A from :data:`STRUCTURE`, and that structure."""
    import gemmi

    from cryosse.acquire.simulate import simulate_density
    from cryosse.geometry import write_map

    folder = tmp_path_factory.mktemp("inputs")
    sim = simulate_density(gemmi.read_structure(str(STRUCTURE)), 6.0, 1.2, 10.0, 0.05, 0, 1)
    map_path = folder / "sim.mrc"
    write_map(map_path, sim.data, sim.geometry)
    return map_path, STRUCTURE


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A random-weight width-0.125 network (fast; its predictions mean nothing)."""
    import torch

    from cryosse.model import DeepSSETracerUNet, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, DeepSSETracerUNet(width=0.125), loss={"name": "FL_DL", "gamma": 1.0}, split=0)
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Choices cryosse remembers per machine (cryosse.machine) go to a folder of the test run's
    own, not the user's ~/.cache: no test sees another's, nor a cache left from earlier runs."""
    os.environ["CRYOSSE_CACHE"] = str(tmp_path_factory.mktemp("cryosse-cache"))


# --------------------------------------------------------------------------- synthetic pairs: evaluation

BOX, PAD = 24, 4


def make_pair(folder: Path, seed: int, origin=(10.0, -5.0, 3.0)) -> dict:
    """A tiny pair: helix and sheet blocks in the centre box, CAs at voxel centres."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((BOX, BOX, BOX), np.uint8)
    labels[6:12, 6:12, 6:18] = 1
    labels[14:17, 8:16, 8:16] = 2
    density = (labels > 0).astype(np.float32) + 0.2 * rng.standard_normal(labels.shape).astype(np.float32)
    density = np.clip(density, 0, None)
    density = (density - density.mean()) / density.std()
    zyx = np.array([[8, 8, 10], [9, 9, 14], [15, 10, 10], [15, 12, 12], [20, 20, 20], [1, 1, 1]])
    ca_xyz = (np.asarray(origin) + zyx[:, ::-1]).astype(np.float32)
    ca_class = labels[zyx[:, 0], zyx[:, 1], zyx[:, 2]]
    centre = np.array([PAD, BOX - PAD] * 3, np.int64)
    in_centre = np.all((zyx >= PAD) & (zyx < BOX - PAD), axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "arrays.npz",
        density=density.astype(np.float32),
        labels=labels,
        centre=centre,
        ca_xyz=ca_xyz,
        ca_class=ca_class.astype(np.uint8),
        ca_in_centre=in_centre,
        origin_xyz=np.asarray(origin, np.float64),
        voxel_size=np.float64(1.0),
    )
    return {
        "n_ca_helix": int(((ca_class == 1) & in_centre).sum()),
        "n_ca_sheet": int(((ca_class == 2) & in_centre).sum()),
        "n_ca_other": int(((ca_class == 0) & in_centre).sum()),
    }


def make_project(tmp: Path, pair_ids: list[str], losses=("CE", "FL_DL")) -> dict:
    """dataset.tsv, split_0.tsv, pair arrays and one tiny checkpoint per loss under ``tmp``."""
    import torch

    from cryosse.model import DeepSSETracerUNet, save_checkpoint

    torch.manual_seed(0)
    rows = []
    for i, pid in enumerate(pair_ids):
        emdb, pdb, chain = pid.split("_", 2)
        folder = tmp / "results" / "dataset" / "pairs" / pid
        counts = make_pair(folder, i)
        rows.append(
            {
                "pair_id": pid,
                "emdb_id": f"EMD-{emdb}",
                "pdb_id": pdb,
                "chain": chain,
                "resolution": 5.5 + i,
                "bin": 1 + i % 3,
                **counts,
                "path": str(folder),
            }
        )
    ds = tmp / "results" / "dataset" / "dataset.tsv"
    pd.DataFrame(rows).to_csv(ds, sep="\t", index=False)
    sp = tmp / "results" / "splits" / "split_0.tsv"
    sp.parent.mkdir(parents=True, exist_ok=True)
    roles = ["test"] * len(pair_ids)
    pd.DataFrame({"pair_id": pair_ids, "role": roles, "cluster": range(len(pair_ids))}).to_csv(
        sp, sep="\t", index=False
    )
    models = {}
    for loss in losses:
        m = DeepSSETracerUNet(width=0.125)
        path = tmp / "results" / "models" / "0" / f"{loss}.pt"
        gamma = {"gamma": 1.0} if loss in ("FL", "FL_DL") else {}
        save_checkpoint(
            path,
            m,
            loss={"name": loss, **gamma},
            split="0",
            best_val={"val_mean": 0.3},
            epoch=1,
            setting="lr0.001" + ("_g1" if gamma else ""),
            train_pairs=["9999_1ABC_A"],
        )
        models[loss] = path
    return {"dataset": ds, "split": sp, "models": models}


# --------------------------------------------------------------------------- synthetic pairs: training


def synthetic_pair(folder: Path, n: int = 32, pad: int = 4, seed: int = 0) -> None:
    """A box with two helix-like rods and a ridged sheet-like plate, blurred, with noise; labels 0/1/2."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:n, :n, :n].astype(np.float32)
    s = n / 32.0
    rod1 = ((y - 10 * s) ** 2 + (z - 10 * s) ** 2 <= 2.5**2) & (x >= 6 * s) & (x < 26 * s)
    rod2 = ((y - 22 * s) ** 2 + (x - 22 * s) ** 2 <= 2.5**2) & (z >= 8 * s) & (z < 26 * s)
    plate = (
        (np.abs(z - 22 * s) <= 0.8)
        & (y >= 6 * s)
        & (y < 18 * s)
        & (x >= 6 * s)
        & (x < 18 * s)
        & ((x.astype(int) % 4) != 0)
    )
    dens = np.zeros((n, n, n), np.float32)
    dens[rod1 | rod2 | plate] = 1.0
    dens = ndimage.gaussian_filter(dens, 1.0) + rng.normal(0, 0.02, dens.shape).astype(np.float32)
    lab = np.zeros((n, n, n), np.uint8)
    lab[ndimage.binary_dilation(plate, iterations=1)] = 2
    lab[rod1 | rod2] = 1
    dens = np.maximum(dens / dens.max(), 0)
    dens = ((dens - dens.mean()) / dens.std()).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "arrays.npz", density=dens, labels=lab, centre=np.array([pad, n - pad] * 3, np.int64))


def synthetic_dataset(root: Path, roles: list[str], n: int = 32) -> tuple[Path, Path]:
    """dataset.tsv + split_0.tsv with one synthetic pair per role (``"train+val"`` = the same pair in both)."""
    ds_rows, split_rows = [], []
    for i, role in enumerate(roles):
        pid = f"{1000 + i}_1ABC_A"
        synthetic_pair(root / "pairs" / pid, n=n, seed=i)
        ds_rows.append({"pair_id": pid, "path": str(root / "pairs" / pid)})
        for r in role.split("+"):
            split_rows.append({"pair_id": pid, "role": r, "cluster": i})
    pd.DataFrame(ds_rows).to_csv(root / "dataset.tsv", sep="\t", index=False)
    pd.DataFrame(split_rows).to_csv(root / "split_0.tsv", sep="\t", index=False)
    return root / "dataset.tsv", root / "split_0.tsv"


# --------------------------------------------------------------------------- archives on disk


def archive_entry(
    mirror: Path,
    emdb_id: str,
    header: bytes | None = None,
    map_file: Path | None = None,
    pdb: str | None = None,
    model: Path | None = None,
) -> None:
    """Put an entry's header, map (gzipped as EMDB ships it) and fitted model where the archives
    keep them, in the layout the acquisition reads (:func:`cryosse.acquire.stage.remote_locations`)."""
    import gzip

    from cryosse.acquire.stage import AcquireSettings, remote_locations

    loc = remote_locations(AcquireSettings(source="local", mirror=str(mirror)), emdb_id, pdb)
    files = {"header": header, "map": map_file, "model": model}
    for kind, src in files.items():
        if src is None:
            continue
        dest = Path(loc[kind])
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = src if isinstance(src, bytes) else Path(src).read_bytes()
        dest.write_bytes(gzip.compress(data) if kind == "map" and data[:2] != b"\x1f\x8b" else data)


def archive_simulated(
    mirror: Path, work: Path, emdb_id: str, pdb: str, structures: Path, release_date: str | None = None
) -> None:
    """Simulate ``emdb_id``'s map from ``structures``/``pdb`` (cryosse.acquire.stage) and archive it."""
    from cryosse.acquire.stage import AcquireSettings, simulate_entry_files

    kw = {"sim_release_date": release_date} if release_date else {}
    settings = AcquireSettings(source="simulate", sim_structures=str(structures), **kw)
    folder = work / emdb_id
    n = emdb_id.split("-")[1]
    simulate_entry_files({"emdb_id": emdb_id, "pdb_id": pdb, "chains": []}, folder, settings)
    archive_entry(
        mirror,
        emdb_id,
        (folder / f"emd-{n}.xml").read_bytes(),
        folder / f"emd_{n}.map.gz",
        pdb,
        folder / f"{pdb}.cif.gz",
    )


def write_mmcif(src: Path, pdb_id: str, dest: Path, rename: tuple[str, str] | None = None) -> Path:
    """``src`` (any format gemmi reads) as gzipped mmCIF of PDB ``pdb_id``, a chain renamed
    (``rename`` = (old, new)) where asked."""
    import gzip

    import gemmi

    st = gemmi.read_structure(str(src))
    st.name = pdb_id
    if rename:
        old, new = rename
        names = [ch.name for ch in st[0]]
        assert old in names, f"{src.name}: no chain {old} (has {names})"
        for m in st:
            for ch in m:
                if ch.name == old:
                    ch.name = new
    st.setup_entities()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(gzip.compress(st.make_mmcif_document().as_string().encode()))
    return dest


class Server:
    """An archive on loopback: http.server in a thread serving ``root`` under ``/files/`` and
    ``search_body`` at ``/api/search/``; ``rules[path]`` = list of behaviours, one per request (last repeats)."""

    def __init__(self, root: Path):
        self.root = root
        self.rules: dict[str, list[str]] = {}
        self.hits: dict[str, int] = {}
        self.search_body = b""
        self.release = threading.Event()  # ends a "trickle" response early
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                n = server.hits.get(path, 0)
                server.hits[path] = n + 1
                if path.startswith("/api/search/"):
                    return self._send(200, server.search_body)
                rules = server.rules.get(path, ["ok"])
                rule = rules[min(n, len(rules) - 1)]
                file = server.root / path.removeprefix("/files/")
                if rule == "404" or not file.is_file():
                    return self._send(404, b"not found")
                if rule == "500":
                    return self._send(500, b"server error")
                if rule.startswith(("429:", "503:")):  # busy: Retry-After seconds (or an HTTP date)
                    code, wait = rule.split(":", 1)
                    return self._send(int(code), b"busy", {"Retry-After": wait})
                body = file.read_bytes()
                if rule == "slow":
                    time.sleep(1.5)
                if rule == "corrupt":
                    body = body[:-200] + bytes(200)
                if rule == "trickle":  # half the body, then stall (a kill lands here)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(20)
                    with contextlib.suppress(OSError):
                        self.wfile.write(body[len(body) // 2 :])
                    return None
                if rule == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self._send(200, body)

            def _send(self, code: int, body: bytes, headers: dict | None = None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
