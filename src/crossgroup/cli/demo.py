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
    group_figures: Annotated[
        str | None,
        typer.Option(
            "--group-figures",
            help='"threshold" or "dp" (differential privacy, needs crossgroup[dp]); '
            "default: the pipeline's [privacy] group_figures.",
        ),
    ] = None,
) -> None:
    """Run keys init, synth, export (every maison), process and import (every maison).

    Each party's files land in its own folder: OUT/keys/, OUT/maisons/<id>/ (CRM extracts,
    outbox, imported analyst files) and OUT/group/ (inbox, returns, reports, audit log).
    Re-running into the same folder starts clean; a folder holding anything else is refused.

    With --months N, the world is exported at each of the last N month ends and processed
    as a series: the segment model is kept from batch to batch, and each maison's analyst
    files of a month land in analyst/<batch>/.

    With --group-figures dp, the group-wide figures are released with differential privacy
    and each batch's epsilon is recorded in OUT/keys/processor/privacy-budget.jsonl.

    Example: crossgroup demo --out demo-output --persons 50000 --months 2
    """
    import dataclasses

    from crossgroup.config import GROUP_FIGURES, load_group
    from crossgroup.demo import print_summary, run_demo
    from crossgroup.errors import InputError

    group = load_group()
    if group_figures is not None:
        if group_figures not in GROUP_FIGURES:
            raise InputError(f"--group-figures must be one of {', '.join(GROUP_FIGURES)}")
        group = dataclasses.replace(group, group_figures=group_figures)
    result = run_demo(out, persons=persons, seed=seed, months=months, group=group, progress=True)
    print_summary(result)
