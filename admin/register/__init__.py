"""The register: tonight's board, the register and one visit, walk-in, corrections, print, export
and import, and the tourist tax report."""
