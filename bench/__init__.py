"""Benchmarks (`make bench`): each prints a table and appends it to docs/benchmarks.md."""
