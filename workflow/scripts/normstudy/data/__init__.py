"""The datasets: what each one is (datasets), its files' format and checks (idx), how they are fetched and verified
(fetch), the synthetic stand-in (synthetic), the tensors a run reads (tensors), and the corrupted test sets of the
robustness study (corruptions, shift_sets).
"""
