"""Subcommands of the `tidings` CLI, one module each."""
