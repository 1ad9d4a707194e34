# acquire stage (SPEC 1): per entry, map + header + model into
# {resources}/archive/{entry}/ and its record.json (always written: a bad entry
# is recorded as rejected, never fails the run); then the three tables.
# source: download (archives), local (a mirror folder), simulate (bundled structures).


# The target list of `snakemake acquire` (lambdas: this file holds rules only).
acquire_targets = lambda: [
    RESULTS / "acquire" / "entries.tsv",
    RESULTS / "acquire" / "rejected.tsv",
    RESULTS / "acquire" / "manifest.tsv",
]

# the search settings: a change reruns the search (the network's settings do not)
SEARCH_SETTINGS = (
    "emdb_api",
    "resolution_min",
    "resolution_max",
    "release_date_max",
    "methods",
    "search_rows",
)


checkpoint emdb_search:
    output:
        table=RESULTS / "acquire" / "emdb_search.tsv",
    log:
        LOGS / "acquire" / "emdb_search.log",
    localrule: True
    conda:
        "../../envs/acquire.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        search={k: config["acquire"][k] for k in SEARCH_SETTINGS},
    script:
        "../../scripts/emdb_search.py"


rule acquire_entry:
    output:
        record=RESOURCES / "archive" / "{entry}" / "record.json",
    log:
        LOGS / "acquire" / "{entry}.log",
    retries: 2
    localrule: config["source"] != "simulate"
    conda:
        "../../envs/acquire.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        # One download (and one map decompressed in memory) per job; the profiles cap the
        # total (resources: downloads=4), so --cores 64 never opens 64 connections at once.
        downloads=1,
    params:
        entry=lambda wildcards: entry_rows()[wildcards.entry],
        cfg={k: config[k] for k in ("source", "seed", "acquire")},
    script:
        "../../scripts/acquire_entry.py"


rule acquire_tables:
    input:
        records=lambda wildcards: expand(
            RESOURCES / "archive" / "{entry}" / "record.json", entry=entry_ids()
        ),
    output:
        entries=RESULTS / "acquire" / "entries.tsv",
        rejected=RESULTS / "acquire" / "rejected.tsv",
        manifest=RESULTS / "acquire" / "manifest.tsv",
    log:
        LOGS / "acquire" / "tables.log",
    localrule: True
    conda:
        "../../envs/acquire.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/acquire_tables.py"
