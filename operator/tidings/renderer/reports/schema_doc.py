"""The row-schema tables of docs/renderer.md, written from each type's registered schema
(tests/renderer/test_docs.py keeps the document equal to them)."""

from __future__ import annotations

from tidings.renderer.reports.model import Kind


def schema_table(kind: Kind) -> str:
    """The Markdown table of a type's columns: column, type, required, meaning."""
    lines = ["| column | type | required | meaning |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{c.key}` | {c.type} | {'yes' if c.required else 'no'} | {c.meaning} |".replace(
            "|  |", "| |"
        )
        for c in kind.schema
    ]
    return "\n".join(lines) + "\n"
