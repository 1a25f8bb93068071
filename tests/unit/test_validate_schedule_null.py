"""`schedule: null` reads as absent (a manual report) in `tidings validate`, as the apiserver
stores it and admission sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from tests.support.admission_cases import BASE

from tidings import models


def test_tidings_validate_accepts_schedule_null_as_a_manual_report(tmp_path: Path) -> None:
    report = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": "manual"},
        "spec": {**BASE, "schedule": None},
    }
    path = tmp_path / "manual.yaml"
    path.write_text(yaml.safe_dump(report))
    assert "schedule: null" in path.read_text()
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"{path}: manual: valid\n"), done.stderr


def test_a_null_inside_a_list_is_still_refused(tmp_path: Path) -> None:
    from tidings.validation import validate_spec

    spec = {**BASE, "recipients": {"to": [None]}}
    assert [str(p) for p in validate_spec(spec).errors] == [
        "spec.recipients.to[0]: must be a string"
    ]
