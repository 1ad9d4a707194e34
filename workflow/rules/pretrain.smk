# pretrain (issue 13): the CPU-sized default model that `cryosse predict` ships with.
# Run with `snakemake --configfile config/pretrain.yaml --cores 2 pretrain`: structures
# from pinned packages -> inventory, families and roles -> simulated maps cut into
# pairs -> training (resumable) -> held-out report. Logic in cryosse.pretrain.
PRE = config.get("pretrain", {})
PRE_SOURCES = {s["name"]: s for s in PRE.get("sources", [])}
PRE_INV = RESULTS / "inventory"
PRE_PAIRS = RESULTS / "pairs"
PRE_MODEL = RESULTS / "model"
PRE_REPORT = RESULTS / "report"
# An optional second stage (pretrain.finetune): the first stage's network trained on, with
# the finetune section's train keys over the first stage's (e.g. maps made to look deposited).
PRE_FT = (PRE.get("finetune") or {}).get("train") or {}  # empty: no second stage
PRE_FT_MODEL = RESULTS / "finetuned"
PRE_FT_REPORT = RESULTS / "report_finetuned"
# pretrain.spectrum: the first stage's network with an input preparation (every input brought
# to the amplitude profile of its training boxes: cryosse.spectrum); the weights unchanged.
PRE_SP = bool(PRE.get("spectrum", False))
PRE_SP_MODEL = RESULTS / "model_spectrum"
PRE_SP_REPORT = RESULTS / "report_spectrum"

pretrain_targets = lambda: [
    d / n
    for d in (
        [PRE_MODEL, PRE_REPORT]
        + ([PRE_FT_MODEL, PRE_FT_REPORT] if PRE_FT else [])
        + ([PRE_SP_MODEL, PRE_SP_REPORT] if PRE_SP else [])
    )
    for n in (
        ("checkpoint.pt",)
        if d in (PRE_MODEL, PRE_FT_MODEL, PRE_SP_MODEL)
        else ("pairs.tsv", "summary.md", "curves.png")
    )
]


rule pretrain_source:
    output:
        directory(RESOURCES / "sources" / "{source}"),
    log:
        LOGS / "pretrain" / "source_{source}.log",
    retries: 2
    localrule: True
    conda:
        "../../envs/acquire.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        downloads=1,
    params:
        source=lambda wildcards: PRE_SOURCES[wildcards.source],
    script:
        "../../scripts/pretrain_source.py"


rule pretrain_inventory:
    input:
        sources=expand(RESOURCES / "sources" / "{source}", source=PRE_SOURCES),
        exclude=PRE.get("exclude_fasta") or [],
    output:
        provenance=PRE_INV / "provenance.tsv",
        structures=PRE_INV / "structures.tsv",
        chains=PRE_INV / "chains.tsv",
        rejected=PRE_INV / "rejected.tsv",
        families=PRE_INV / "families.tsv",
        roles=PRE_INV / "roles.tsv",
    log:
        LOGS / "pretrain" / "inventory.log",
    conda:
        "../../envs/pretrain.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        sources_dir=RESOURCES / "sources",
        exclude_structures=PRE.get("exclude_structures", []),
        selection={
            k: PRE[k]
            for k in (
                "min_residues",
                "max_residues",
                "min_sidechain_fraction",
                "holdout_fraction",
                "val_fraction",
                "max_per_family",
            )
            if k in PRE
        },
        seed=config["seed"],
    script:
        "../../scripts/pretrain_inventory.py"


rule pretrain_pairs:
    input:
        structures=PRE_INV / "structures.tsv",
        roles=PRE_INV / "roles.tsv",
    output:
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
        failed=PRE_PAIRS / "failed.tsv",
    log:
        LOGS / "pretrain" / "pairs.log",
    # The pair folders and the per-structure markers in PRE_PAIRS are not outputs:
    # Snakemake deletes the outputs of an interrupted job, and the rerun resumes from them.
    conda:
        "../../envs/pretrain.yaml"
    threads: PRE.get("threads", 2)
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        sources_dir=RESOURCES / "sources",
        pairs_dir=PRE_PAIRS,
        simulate=PRE.get("simulate", {}),
        dataset=config.get("dataset", {}),
        seed=config["seed"],
    script:
        "../../scripts/pretrain_pairs.py"


rule pretrain_train:
    input:
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
    output:
        checkpoint=PRE_MODEL / "checkpoint.pt",
        history=PRE_MODEL / "history.tsv",
    log:
        LOGS / "pretrain" / "train.log",
    # state.pt (the resume state) lives beside them but is not an output (see train.smk).
    conda:
        "../../envs/train.yaml"
    threads: PRE.get("train", {}).get("threads", 2)
    resources:
        mem_mb=16000,
        runtime=10080,
    params:
        train=PRE.get("train", {}),
        seed=config["seed"],
    script:
        "../../scripts/pretrain_train.py"


rule pretrain_report:
    input:
        checkpoint=PRE_MODEL / "checkpoint.pt",
        history=PRE_MODEL / "history.tsv",
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
        structures=PRE_INV / "structures.tsv",
    output:
        pairs=PRE_REPORT / "pairs.tsv",
        summary=PRE_REPORT / "summary.md",
        curves=PRE_REPORT / "curves.png",
    log:
        LOGS / "pretrain" / "report.log",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    script:
        "../../scripts/pretrain_report.py"


use rule pretrain_train as pretrain_finetune with:
    input:
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
        start=PRE_MODEL / "checkpoint.pt",
    output:
        checkpoint=PRE_FT_MODEL / "checkpoint.pt",
        history=PRE_FT_MODEL / "history.tsv",
    log:
        LOGS / "pretrain" / "finetune.log",
    params:
        train={
            **PRE.get("train", {}),
            **PRE_FT,
            "init_from": str(PRE_MODEL / "checkpoint.pt"),
        },
        seed=config["seed"],


use rule pretrain_report as pretrain_finetune_report with:
    input:
        checkpoint=PRE_FT_MODEL / "checkpoint.pt",
        history=PRE_FT_MODEL / "history.tsv",
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
        structures=PRE_INV / "structures.tsv",
    output:
        pairs=PRE_FT_REPORT / "pairs.tsv",
        summary=PRE_FT_REPORT / "summary.md",
        curves=PRE_FT_REPORT / "curves.png",
    log:
        LOGS / "pretrain" / "report_finetuned.log",


rule pretrain_spectrum:
    input:
        checkpoint=PRE_MODEL / "checkpoint.pt",
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
    output:
        checkpoint=PRE_SP_MODEL / "checkpoint.pt",
    log:
        LOGS / "pretrain" / "spectrum.log",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../../scripts/pretrain_spectrum.py"


use rule pretrain_report as pretrain_spectrum_report with:
    input:
        checkpoint=PRE_SP_MODEL / "checkpoint.pt",
        history=PRE_MODEL / "history.tsv",
        dataset=PRE_PAIRS / "dataset.tsv",
        split=PRE_PAIRS / "split.tsv",
        structures=PRE_INV / "structures.tsv",
    output:
        pairs=PRE_SP_REPORT / "pairs.tsv",
        summary=PRE_SP_REPORT / "summary.md",
        curves=PRE_SP_REPORT / "curves.png",
    log:
        LOGS / "pretrain" / "report_spectrum.log",
