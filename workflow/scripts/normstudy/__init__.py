"""normstudy: shared code for the normalization-layer study's workflow steps.

The run core sits at the top (a run's typed settings, training engine, seeding, optimizer, packed seeds, model files,
atomic writes, the run-file reader, tables, the scripts' error exit, and values: the error that names a config key
and the dotted keys of nested mappings); the rest lives in wings by concern: config/,
data/, model/, analysis/, report/ and compare/, each saying in its docstring what it holds. Module names are unique
across the package (normstudy.layout), so a rule lists a script's modules by name.
"""
