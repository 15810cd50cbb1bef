"""Data generated on the fly for examples and benchmarks (no downloads)."""
