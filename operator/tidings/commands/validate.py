"""`tidings validate FILE...`: check ScheduledReport manifests with the admission rules.

Prints one line per problem (`FILE: NAME: path: rule`) and per warning; exits 0 when every
report is valid, 65 (EX_DATAERR, as for every input problem in docs/renderer.md#exit-codes)
when a report is invalid or a file cannot be read. Documents of other kinds in the same files are
ignored, so a whole GitOps directory can be checked at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="YAML manifests")


def run(args: argparse.Namespace) -> int:
    from tidings.renderer.result import EX_DATAERR

    valid = True
    for path in args.files:
        for line, ok in check_file(path):
            print(line)
            valid = valid and ok
    return 0 if valid else EX_DATAERR


def check_file(path: Path) -> list[tuple[str, bool]]:
    """(line to print, still valid) for every report in one file."""
    import yaml

    from tidings import models
    from tidings.documents import load_documents
    from tidings.validation import validate_spec

    try:
        documents = load_documents(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # YAML errors span several lines
        return [(f"{path}: cannot read: {reason}", False)]
    reports = [d for d in documents if isinstance(d, dict) and d.get("kind") == models.KIND]
    if not reports:
        return [(f"{path}: no {models.KIND} found", False)]
    api_version = f"{models.GROUP}/{models.VERSION}"
    lines = []
    for report in reports:
        metadata = report.get("metadata")
        name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
        result = validate_spec(report.get("spec"))
        problems = [str(problem) for problem in result.errors]
        if report.get("apiVersion") != api_version:
            problems.insert(0, f"apiVersion: must be {api_version}")
        lines += [(f"{path}: {name}: {problem}", False) for problem in problems]
        lines += [(f"{path}: {name}: warning: {warning}", True) for warning in result.warnings]
        if not problems:
            lines.append((f"{path}: {name}: valid", True))
    return lines
