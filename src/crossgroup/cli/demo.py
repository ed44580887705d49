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
    months: Annotated[
        int,
        typer.Option(
            "--months",
            min=1,
            max=36,
            help="Consecutive monthly batches of one world, the processor keeping its model.",
        ),
    ] = 1,
) -> None:
    """Run keys init, synth, export (every maison), process and import (every maison).

    Each party's files land in its own folder: OUT/keys/, OUT/maisons/<id>/ (CRM extracts,
    outbox, imported analyst files) and OUT/group/ (inbox, returns, reports, audit log).
    Re-running into the same folder starts clean; a folder holding anything else is refused.

    With --months N, the world is exported at each of the last N month ends and processed
    as a series: the segment model is kept from batch to batch, and each maison's analyst
    files of a month land in analyst/<batch>/.

    Example: crossgroup demo --out demo-output --persons 50000 --months 2
    """
    from crossgroup.demo import print_summary, run_demo

    result = run_demo(out, persons=persons, seed=seed, months=months, progress=True)
    print_summary(result)
