"""One small demo run per test session, shared by the demo, report and notebook tests."""

from __future__ import annotations

import json
from pathlib import Path

DEMO_PERSONS = 3000


def demo_output(tmp_path_factory) -> Path:
    """Run `run_demo` once per session at a small size; later callers reuse its folder."""
    from crossgroup.demo import run_demo

    root = tmp_path_factory.getbasetemp() / f"demo-{DEMO_PERSONS}"
    if not (root / "demo-summary.json").is_file():
        run_demo(root, persons=DEMO_PERSONS, seed=11)
    return root


def demo_summary(root: Path) -> dict:
    return json.loads((root / "demo-summary.json").read_text())
