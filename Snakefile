# cryosse: the Mu et al. 2024 (DeepSSETracer 1.1) dataset and loss benchmark.
# Stages flow one way: acquire -> dataset -> split -> train -> evaluate -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/acquire.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/card.smk"
include: "workflow/rules/cluster.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/estimate.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule acquire:
    input:
        acquire_targets(),


rule dataset:
    input:
        dataset_targets(),


rule splits:
    input:
        split_targets(),


rule train:
    input:
        train_targets(),


rule evaluate:
    input:
        evaluate_targets(),


rule report:
    # what `snakemake --report results/report.html` shows: tables, figures, the dataset card
    input:
        table_targets(),
        figure_targets(),
        card_targets(),


rule pretrain:
    input:
        pretrain_targets(),


# cheap collecting rules run where Snakemake runs, never as cluster jobs
localrules:
    dataset_tables,
    train_select,
    tables,
    figures,
    dataset_card,
