"""Where the benchmarks write their JSON: ``bench/results/`` (git-ignored)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str | Path, data) -> Path:
    """Write ``data`` as indented JSON to ``bench/results/<name>`` (or to ``name`` if it is a path)."""
    path = name if isinstance(name, Path) else RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path
