"""`tidings validate FILE...`: check ScheduledReport manifests with the admission rules.

Prints one line per problem (`FILE: NAME: path: rule`) and per warning; exits 0 when every
report is valid, 1 otherwise. Documents of other kinds in the same files are ignored, so a
whole GitOps directory can be checked at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="YAML manifests")


def run(args: argparse.Namespace) -> int:
    valid = True
    for path in args.files:
        for line, ok in check_file(path):
            print(line)
            valid = valid and ok
    return 0 if valid else 1


def check_file(path: Path) -> list[tuple[str, bool]]:
    """(line to print, still valid) for every report in one file."""
    import yaml

    from tidings import models
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


def load_documents(text: str) -> list[Any]:
    """All YAML documents, with unquoted dates kept as strings as kubectl sends them."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # Drop the timestamp resolver: `from: 2024-01-01` must stay the string the API would see.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]
    except yaml.YAMLError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # PyYAML's constructors raise these for tagged values they cannot build, such as
        # `!!float abc`, `!!int abc`, `!!timestamp abc` or `!!bool maybe`.
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise yaml.YAMLError(f"a tagged value cannot be read ({detail})") from None
