"""`crossgroup purge`: the processor removes what is past its retention period."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from crossgroup.errors import InputError


def purge(
    out: Annotated[Path, typer.Option("--out", help="The processor's output folder.")],
    keys: Annotated[Path, typer.Option("--keys", help="The processor's key directory.")],
    pipeline: Annotated[
        Path | None,
        typer.Option("--pipeline", help="Retention settings (default: pipelines/group.toml)."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Purge as of this date, YYYY-MM-DD (default: today)."),
    ] = None,
) -> None:
    """Delete returns, reports, retained inputs and ledger entries past their retention.

    Periods come from [retention] in the pipeline file; each deletion is one entry in
    OUT/audit.jsonl (file digest, age, period), never an identifier.

    Example: crossgroup purge --out processed --keys keys/processor --now 2027-01-31
    """
    from crossgroup.config import load_group
    from crossgroup.group.retention import purge as run_purge

    when = None
    if now is not None:
        try:
            when = dt.datetime.combine(dt.date.fromisoformat(now), dt.time(), tzinfo=dt.UTC)
        except ValueError:
            raise InputError(f"--now {now!r} is not a date (YYYY-MM-DD)") from None
    result = run_purge(out, keys, load_group(pipeline), now=when)
    for row in result.deleted:
        typer.echo(f"deleted {row['what']}: {row['file']} ({row['age_days']} days old)")
    for name, figures in result.ledgers.items():
        typer.echo(f"{name}: {figures['dropped']} entries dropped, {figures['kept']} kept")
    typer.echo(f"{len(result.deleted)} file(s) deleted; audit head {result.audit_head[:16]}")
