"""The networks of the registry, one module each (named as the network), each defining SPEC (model/architecture.py)."""
