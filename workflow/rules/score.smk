# External tools (issue 18): another tool's predictions of the main split's test cases,
# scored as the evaluate stage scores our losses (cryosse.score), into a per-case table
# with the evaluation's columns, so the tables show each tool beside the five losses.
# config external.tools maps NAME: FOLDER; FOLDER holds {pair_id}_helix.mrc and
# {pair_id}_sheet.mrc (masks or probability maps) or {pair_id}.mrc (one label map), on any
# grid (docs/design.md). None configured (the default): no job, and the tables as before.
# (Helpers are lambdas: `snakemake --lint` flags `def` beside rules.)
import re

from cryosse.score.external import MAP_SUFFIXES

EXTERNAL = config.get("external", {})
EXTERNAL_TOOLS = dict(EXTERNAL.get("tools", {}) or {})
EXTERNAL_SPLIT = str(config["train"]["splits"][0])  # the main split, as the tables use
_clash = sorted(set(EXTERNAL_TOOLS) & set(LOSSES))
if _clash:
    raise ValueError(
        f"config external.tools: {_clash} named like our losses; give the tools other names"
    )

external_targets = lambda: [
    RESULTS / "external" / EXTERNAL_SPLIT / tool / "per_case.tsv"
    for tool in EXTERNAL_TOOLS
]
# The tool's files present now: a new or changed prediction reruns the scoring.
external_files = lambda wildcards: sorted(
    str(p)
    for p in Path(EXTERNAL_TOOLS[wildcards.tool]).glob("*")
    if p.is_file() and p.name.lower().endswith(MAP_SUFFIXES)
)


rule score_external:
    input:
        split=RESULTS / "splits" / "split_{split}.tsv",
        dataset=RESULTS / "dataset" / "dataset.tsv",
        predictions=external_files,
    output:
        per_case=report(
            RESULTS / "external" / "{split}" / "{tool}" / "per_case.tsv",
            caption="../report/per_case_external.rst",
            category="Per-case results",
            labels={"split": "{split}", "loss": "{tool} (external)"},
        ),
    log:
        LOGS / "external" / "{split}" / "{tool}.log",
    wildcard_constraints:
        split=r"\d+",
        tool="|".join(re.escape(t) for t in EXTERNAL_TOOLS) or "(?!)",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        folder=lambda wildcards: EXTERNAL_TOOLS[wildcards.tool],
        threshold=EXTERNAL.get("threshold", 0.5),
        helix_value=EXTERNAL.get("helix_value", 1),
        sheet_value=EXTERNAL.get("sheet_value", 2),
        radius=config["evaluate"]["residue_radius"],
        ties=config["evaluate"]["residue_ties"],
    script:
        "../../scripts/score_external.py"
