"""The datasets of the registry, one module each (named as the dataset), each defining SPEC (data/datasets.py)."""
