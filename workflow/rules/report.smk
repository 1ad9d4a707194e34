# report stage: the paper's tables and the figures, rebuilt from stored per-case
# results in seconds (`snakemake tables --forcerun tables` retrains nothing), and
# the captions for `snakemake --report`. The HTML report itself comes from
# `snakemake --report results/report.html` after a run (Snakemake cannot build its
# own report from inside a rule), so report_targets() adds no file.
# (Target helpers are lambdas: `snakemake --lint` flags `def` beside rules.)

MAIN_SPLIT = str(config["train"]["splits"][0])
PAPER_RUN = config["split"]["test"] == "paper"
TABLES = ["table1", "table2", "tableS1", "stats", "breakdown"] + (
    ["table2_paper", "fidelity", "paper_unavailable"] if PAPER_RUN else []
)
FIGURES = [
    "focal_loss",
    "f1_by_loss",
    "per_case_vs_ce",
    "f1_vs_resolution",
    "training_curves",
    "slices",
]
with_caption = report  # `report` starting a line would read as the directive
# What the report calls each entry (its label), beside the caption in workflow/report/.
TITLES = {
    "table1": "Table 1: F1 per loss",
    "table2": "Table 2: F1 per test case",
    "tableS1": "Table S1: F1 per split",
    "stats": "Intervals and paired tests",
    "breakdown": "F1 by resolution and bin",
    "table2_paper": "Table 2 beside the paper",
    "fidelity": "Fidelity to the paper's cases",
    "paper_unavailable": "Paper cases not built",
    "focal_loss": "Focal loss curves",
    "f1_by_loss": "F1 per loss",
    "per_case_vs_ce": "Per case against CE",
    "f1_vs_resolution": "F1 against resolution",
    "training_curves": "Training curves",
    "slices": "Map, truth and predictions",
}
TABLE_FILES = {
    f"{t}_{ext}": (
        with_caption(
            RESULTS / "tables" / f"{t}.html",
            caption=f"../report/{t}.rst",
            category="Tables",
            labels={"name": TITLES[t]},
        )
        if ext == "html"
        else RESULTS / "tables" / f"{t}.{ext}"
    )
    for t in TABLES
    for ext in ("tsv", "md", "tex", "html")
}
FIGURE_FILES = {
    f"{f}_{ext}": (
        with_caption(
            RESULTS / "figures" / f"{f}.png",
            caption=f"../report/{f}.rst",
            category="Figures",
            labels={"name": TITLES[f]},
        )
        if ext == "png"
        else RESULTS / "figures" / f"{f}.pdf"
    )
    for f in FIGURES
    for ext in ("png", "pdf")
}

table_targets = lambda: [
    RESULTS / "tables" / f"{t}.{ext}"
    for t in TABLES
    for ext in ("tsv", "md", "tex", "html")
]
figure_targets = lambda: [
    RESULTS / "figures" / f"{f}.{ext}" for f in FIGURES for ext in ("png", "pdf")
]
report_targets = lambda: []


rule tables:
    input:
        per_case=evaluate_targets(),
        external=external_targets(),
        paper=[config["split"]["paper_cases"]] if PAPER_RUN else [],
        paper_split=[RESULTS / "splits" / "paper_cases.tsv"] if PAPER_RUN else [],
    output:
        **TABLE_FILES,
    log:
        LOGS / "report" / "tables.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        out_dir=RESULTS / "tables",
        main_split=MAIN_SPLIT,
        paper_columns=config["evaluate"]["paper_columns"],
        residue_loss=config["evaluate"]["residue_loss"],
        bootstrap=config["evaluate"]["bootstrap"],
        ci=config["evaluate"]["ci"],
        seed=config["seed"],
        bands=config["evaluate"]["resolution_bands"],
        main_split_by=config["split"]["main_split_by"],
    script:
        "../../scripts/report_tables.py"


rule figures:
    input:
        per_case=evaluate_targets(),
        external=external_targets(),
        dataset=RESULTS / "dataset" / "dataset.tsv",
        selection=RESULTS / "train" / MAIN_SPLIT / "selection.tsv",
    output:
        **FIGURE_FILES,
    log:
        LOGS / "report" / "figures.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        out_dir=RESULTS / "figures",
        eval_dir=RESULTS / "eval",
        main_split=MAIN_SPLIT,
        gammas=config["train"]["gammas"],
        bootstrap=config["evaluate"]["bootstrap"],
        ci=config["evaluate"]["ci"],
        seed=config["seed"],
        slices=config["evaluate"]["slice_cases"],
    script:
        "../../scripts/report_figures.py"
