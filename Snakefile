# normstudy: normalization layers in a 7,652-parameter MNIST CNN, reproduced end to end.
# Stages live in workflow/rules/; each step is a standalone script in workflow/scripts/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# Validates the merged config (defaults + --configfile + --config) before any job is scheduled.
include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/batch_study.smk"
include: "workflow/rules/robustness.smk"
# Last: the report reads every stage's outputs.
include: "workflow/rules/report.smk"
# After every stage has named its runs: existing run files checked against the config.
include: "workflow/rules/run_files.smk"


rule all:
    default_target: True
    input:
        all_targets(),
