# Helpers shared by every stage: the entry table, paths, target lists.
import csv
import os
from pathlib import Path

# Rule scripts import the package from this checkout, in the venv, in conda envs
# and on cluster nodes alike (the environment is passed on to jobs).
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")) if p
)

RESULTS = Path(config.get("results", "results"))
RESOURCES = Path(config.get("resources", "resources"))
LOGS = Path(config.get("logs", "logs"))


def read_entry_table(path):
    """The explicit entry table (static DAG): emdb_id, pdb_id, optional chain, ..."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r.get("emdb_id", "").strip()]
    seen = set()
    for r in rows:
        key = r["emdb_id"].strip()
        if key in seen:
            raise ValueError(f"{path}: entry {key} is listed twice")
        seen.add(key)
    return rows


ENTRY_ROWS = read_entry_table(config["entries"])
ENTRIES = [r["emdb_id"].strip() for r in ENTRY_ROWS]


def all_targets():
    return (
        acquire_targets()
        + dataset_targets()
        + split_targets()
        + train_targets()
        + table_targets()
        + figure_targets()
        + report_targets()
    )
