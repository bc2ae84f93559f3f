"""Two studies side by side (make compare): their config and environment differences and each shared comparison
(comparison), whether the ranking of the norms on one dataset held on another (transfer), and a git revision's study
exported to compare against (revisions).
"""
