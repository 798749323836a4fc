"""Benchmarks: scripts that print figures (not installed with the package; run from the repository root)."""
