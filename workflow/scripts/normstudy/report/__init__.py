"""The published page: its context and rendering (page), the robustness section (robustness_section), the figures'
shared code (plots), and where every number comes from (provenance).
"""
