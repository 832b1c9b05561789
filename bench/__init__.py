"""Load benchmarks for Nachtregister (not part of the application)."""
