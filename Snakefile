# normstudy: normalization layers in a 7,652-parameter MNIST CNN, reproduced end to end.
# Stages live in workflow/rules/; each step is a standalone script in workflow/scripts/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# Validates the merged config (defaults + --configfile + --config) before any job is scheduled.
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    default_target: True
    input:
        all_targets(),
