"""`crossgroup synth`: write synthetic maison CRM and sales extracts plus the ground truth."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossgroup.cli.options import date_option
from crossgroup.config import demo_maisons
from crossgroup.errors import InputError
from crossgroup.synth import world  # parameters only: cheap to import for the defaults below

if TYPE_CHECKING:
    from crossgroup.synth.writer import SynthSummary


def synth(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if missing).")],
    maisons: Annotated[
        int, typer.Option("--maisons", help="How many demo maisons, in group.toml order (1-8).")
    ] = 8,
    persons: Annotated[int, typer.Option("--persons", help="Number of persons.")] = (
        world.DEFAULT_PERSONS
    ),
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: same seed and arguments, same bytes.")
    ] = world.DEFAULT_SEED,
    as_of: Annotated[
        date, date_option("--as-of", "Extract date (YYYY-MM-DD); history covers 5 years.")
    ] = world.DEFAULT_AS_OF,
    chunk_persons: Annotated[
        int,
        typer.Option(
            "--chunk-persons",
            hidden=True,
            help="Persons per chunk (memory vs. speed); part of what the seed reproduces.",
        ),
    ] = world.CHUNK_PERSONS,
) -> None:
    """Generate synthetic maison extracts, and the ground truth to evaluate matching against.

    Writes DIR/<maison>/customers.parquet, purchases.parquet and maison.toml, and DIR/truth.parquet.
    Persons with latent preference archetypes buy at one or more fictional demo maisons.
    Each maison keeps them under its own customer_id, with drifting and dirty identifiers.
    Emails use reserved example domains only; phone numbers are random but valid.
    Same arguments and seed give byte-identical files; output is written atomically.

    Example:  crossgroup synth --out synthetic --persons 10000 --seed 7 --as-of 2026-09-30
    """
    # deferred: the writer loads Polars, NumPy and Faker, which no other command needs
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from crossgroup.io import staged_output
    from crossgroup.synth.writer import check_arguments, write_world

    configs = demo_maisons()
    if not 1 <= maisons <= len(configs):
        raise InputError(
            f"--maisons must be between 1 and {len(configs)} (the configured demo maisons)"
        )
    check_arguments(persons=persons, seed=seed, chunk_persons=chunk_persons)
    err = Console(stderr=True)
    columns = (
        TextColumn("synth"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks · {task.fields[lines]:,} purchase lines"),
        TimeElapsedColumn(),
    )
    with staged_output(out) as staging, Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("synth", total=None, lines=0)

        def on_chunk(done: int, total: int, summary: SynthSummary) -> None:
            bar.update(task, completed=done, total=total, lines=summary.purchase_lines)

        summary = write_world(
            staging,
            configs[:maisons],
            persons=persons,
            seed=seed,
            as_of=as_of,
            chunk_persons=chunk_persons,
            on_chunk=on_chunk,
        )
    _print_summary(summary, out, as_of)


def _print_summary(summary: SynthSummary, out: Path, as_of: date) -> None:
    typer.echo(f"wrote {out} (as-of {as_of.isoformat()}, {summary.persons:,} persons)")
    typer.echo(f"{'maison':<12} {'customers':>12} {'purchase lines':>16}")
    for maison, counts in summary.maisons.items():
        typer.echo(f"{maison:<12} {counts.customers:>12,} {counts.purchase_lines:>16,}")
    typer.echo(f"{'total':<12} {summary.customers:>12,} {summary.purchase_lines:>16,}")
