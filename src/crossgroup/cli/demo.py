"""`crossgroup demo`: every party's step end to end on synthetic data, in one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the whole demo.")] = Path(
        "demo-output"
    ),
    persons: Annotated[
        int, typer.Option("--persons", min=100, help="Synthetic persons across the group.")
    ] = 50_000,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the synthetic world (default: synth's).")
    ] = None,
) -> None:
    """Run keys init, synth, export (every maison), process and import (every maison).

    Each party's files land in its own folder: OUT/keys/, OUT/maisons/<id>/ (CRM extracts,
    outbox, imported analyst files) and OUT/group/ (inbox, returns, reports, audit log).
    Re-running into the same folder starts clean; a folder holding anything else is refused.

    Example: crossgroup demo --out demo-output --persons 50000
    """
    from crossgroup.demo import print_summary, run_demo

    result = run_demo(out, persons=persons, seed=seed, progress=True)
    print_summary(result)
