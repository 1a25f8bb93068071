"""The reports in examples/ and the moment the renderer tests render them for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_AT = "2024-05-13T09:00:00+02:00"  # Monday 09:00 Berlin, after the examples' data week


def load_example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))
