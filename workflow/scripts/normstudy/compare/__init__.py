"""Two studies side by side (make compare): their config and environment differences and each shared comparison
(comparison), and a git revision's study exported to compare against (revisions).
"""
