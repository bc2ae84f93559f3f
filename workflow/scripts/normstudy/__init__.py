"""normstudy: shared code for the normalization-layer study's workflow steps."""
