"""The study's config: its sources merged strictly (sources, strict_yaml), checked against the schema and the
cross-field rules (schema, validation), the study's name and folders (studies), and each run's typed settings
derived from it (recipes).
"""
