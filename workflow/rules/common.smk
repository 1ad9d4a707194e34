# Helpers shared by every stage: the entry table, paths, target lists.
import json
import os
import sys
from pathlib import Path

# The workflow and its scripts import the package from this checkout (here, in
# the venv, in conda envs and on cluster nodes alike; jobs inherit the environment).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p
        for p in (str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH"))
        if p
    )
)


# Wildcards shared by every rule: a split is a number; an entry is one folder name (its id
# is checked by the acquisition, which writes a bad id's rejection instead of failing the DAG).
wildcard_constraints:
    split=r"\d+",
    entry=r"[^/]+",


RESULTS = Path(config.get("results", "results"))
RESOURCES = Path(config.get("resources", "resources"))
LOGS = Path(config.get("logs", "logs"))

from cryosse.acquire.records import read_entry_table
from cryosse.io import map_bytes
from cryosse.classes import with_classes
from cryosse.config import SEARCH as SEARCH_ENTRIES, ConfigError, check as check_config

# The config, checked as `cryosse check-config` checks it (schema with its defaults filled in,
# then the rules across keys); a mistake is one message naming the files and the key.
try:
    config.update(
        check_config(
            config,
            "config " + ", ".join(dict.fromkeys(map(str, workflow.configfiles))),
        )
    )
except ConfigError as exc:
    sys.exit(
        f"cryosse: error: {exc}\n(`cryosse check-config FILE...` checks config files without running the workflow)"
    )

# The entry table: emdb_id, optional pdb_id and chain (comma-separated; an emdb_id may repeat,
# one chain per row), checked and merged by cryosse.acquire.records.read_entry_table. With
# `entries: search` it is what the EMDB search (checkpoint emdb_search, acquire.smk) wrote, and
# the entries' jobs are planned once it exists; an explicit table is read (and checked) now.
SEARCH = config["entries"] == SEARCH_ENTRIES
ENTRY_TABLE = (
    RESULTS / "acquire" / "emdb_search.tsv" if SEARCH else Path(config["entries"])
)
_entry_tables = {}


def entry_rows():
    """The entry table's rows by EMDB id, in table order (in an input function: after the
    search, when there is one)."""
    path = checkpoints.emdb_search.get().output.table if SEARCH else ENTRY_TABLE
    key = (str(path), os.stat(path).st_mtime_ns)
    if key not in _entry_tables:
        _entry_tables[key] = {r["emdb_id"]: r for r in read_entry_table(path)}
    return _entry_tables[key]


def entry_ids(wildcards=None):
    return list(entry_rows())


if not SEARCH:
    entry_rows()
    if config["split"]["test"] == "random":
        from cryosse.paper_cases import paper_entries_in

        _named = paper_entries_in(entry_ids(), config["split"]["paper_cases"])
        if _named:
            print(
                f"cryosse: warning: {ENTRY_TABLE} lists {len(_named)} entries of the paper's test cases "
                f"({', '.join(_named[:3])}{', ...' if len(_named) > 3 else ''}) and split.test is random: the "
                "test set is then drawn from them with the rest (split.test: paper tests on the paper's cases)",
                file=sys.stderr,
            )

# Label classes (3 the paper, 4 with nucleic acids). Rules whose results depend on it get
# it inside their config params by with_classes, which adds it only for 4: the params,
# and so the jobs, of 3-class runs stay as they were before the fourth class existed.
CLASSES = config.get("classes", 3)


def entry_mem_mb(wildcards, input):
    """Memory in MB of one entry's dataset job: its map decompressed, about twice (gzip reading
    holds two copies for a moment), plus 1.5 GB for boxes and DSSP; 4000 when the record or
    its map cannot be read (a rejected entry, whose job writes only its rejection)."""
    try:
        with open(input.record) as fh:
            size = map_bytes(json.load(fh)["map"])
    except (OSError, ValueError, TypeError, KeyError):
        return 4000
    return int(1500 + 2.2 * size / 2**20)


def all_targets():
    return (
        acquire_targets()
        + dataset_targets()
        + split_targets()
        + train_targets()
        + table_targets()
        + figure_targets()
        + report_targets()
        + card_targets()
    )
