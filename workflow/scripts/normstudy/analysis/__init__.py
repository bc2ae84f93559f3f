"""The numbers a study reports: statistics primitives (stats), the declared main analysis (declared), the batch-size
and robustness studies' tables and verdicts (batches, robustness), the tuning search's table (tuning), test-set
metrics (metrics), and the sentences generated from them (findings, findings_robustness).
"""
