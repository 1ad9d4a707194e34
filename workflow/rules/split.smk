# split stage (SPEC 6): MMseqs2 clusters of the central chains, the main split and the
# cross-validation splits, then the leakage audit. make_splits writes candidates; the
# audit publishes results/splits/split_{k}.tsv only when every enforced split passes,
# so a leaking split never reaches training.
from cryosse.splits.common import AUDIT_KEYS, SEARCH_KEYS, SPLIT_KEYS

SPLIT = config["split"]
SPLIT_DIR = RESULTS / "splits"
# each step gets only the split keys it reads, so editing one reruns only what it changes
split_params = lambda keys: {k: SPLIT[k] for k in keys if k in SPLIT}


# 0 = main split, 1..n_cv = cross-validation; the audit enforces the cross-validation
# splits, and split 0 too when split.enforce_main is set.
SPLIT_IDS = list(range(SPLIT["n_cv"] + 1))
SPLIT_ENFORCED = [k for k in SPLIT_IDS if k > 0 or SPLIT["enforce_main"]]

# The target list of `snakemake splits` (a lambda: this file holds rules only).
split_targets = lambda: [
    SPLIT_DIR / "sequences.fasta",
    SPLIT_DIR / "clusters.tsv",
    SPLIT_DIR / "audit.tsv",
    SPLIT_DIR / "audit.md",
    SPLIT_DIR / "paper_cases.tsv",
] + [SPLIT_DIR / f"split_{k}.tsv" for k in SPLIT_IDS]


rule split_cluster:
    input:
        dataset=RESULTS / "dataset" / "dataset.tsv",
    output:
        fasta=SPLIT_DIR / "sequences.fasta",
        clusters=SPLIT_DIR / "clusters.tsv",
    log:
        LOGS / "splits" / "cluster.log",
    benchmark:
        LOGS / "benchmark" / "splits" / "cluster.tsv"
    conda:
        "../../envs/split.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=split_params(SEARCH_KEYS),
    script:
        "../../scripts/split_cluster.py"


rule split_make:
    input:
        dataset=RESULTS / "dataset" / "dataset.tsv",
        clusters=SPLIT_DIR / "clusters.tsv",
        paper_cases=SPLIT["paper_cases"],
        entries=ENTRY_TABLE,
        dataset_rejected=RESULTS / "dataset" / "rejected.tsv",
        acquire_rejected=RESULTS / "acquire" / "rejected.tsv",
    output:
        splits=expand(SPLIT_DIR / "candidates" / "split_{k}.tsv", k=SPLIT_IDS),
        paper=SPLIT_DIR / "paper_cases.tsv",
    log:
        LOGS / "splits" / "make.log",
    conda:
        "../../envs/split.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=split_params(SPLIT_KEYS),
        seed=config["seed"],
    script:
        "../../scripts/split_make.py"


rule split_audit:
    input:
        fasta=SPLIT_DIR / "sequences.fasta",
        splits=expand(SPLIT_DIR / "candidates" / "split_{k}.tsv", k=SPLIT_IDS),
        dataset=RESULTS / "dataset" / "dataset.tsv",
        paper=SPLIT_DIR / "paper_cases.tsv",
    output:
        audit_tsv=SPLIT_DIR / "audit.tsv",
        audit_md=report(
            SPLIT_DIR / "audit.md",
            caption="../report/audit.rst",
            category="Dataset and splits",
            labels={"name": "Split leakage audit"},
        ),
        splits=expand(SPLIT_DIR / "split_{k}.tsv", k=SPLIT_IDS),
    log:
        LOGS / "splits" / "audit.log",
    conda:
        "../../envs/split.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cfg=split_params(AUDIT_KEYS),
        enforce=SPLIT_ENFORCED,
    script:
        "../../scripts/split_audit.py"
