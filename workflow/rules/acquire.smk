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

ENTRY_BY_ID = {r["emdb_id"]: r for r in ENTRY_ROWS}


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
        entry=lambda wildcards: ENTRY_BY_ID[wildcards.entry],
        cfg={k: config[k] for k in ("source", "seed", "acquire")},
    script:
        "../../scripts/acquire_entry.py"


rule acquire_tables:
    input:
        records=expand(RESOURCES / "archive" / "{entry}" / "record.json", entry=ENTRIES),
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
