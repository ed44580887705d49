"""`crossgroup purge`: the processor removes what is past its retention period."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from crossgroup.cli.options import (
    PassphraseEnvOption,
    ProcessorKeysOption,
    date_option,
    input_file_option,
    load_keys,
)


def purge(
    out: Annotated[Path, typer.Option("--out", help="The processor's output folder.")],
    keys: ProcessorKeysOption,
    pipeline: Annotated[
        Path | None,
        input_file_option(
            "--pipeline", "pipeline", "Retention settings (default: pipelines/group.toml)."
        ),
    ] = None,
    now: Annotated[
        dt.date | None,
        date_option("--now", "Purge as of this date, YYYY-MM-DD (default: today)."),
    ] = None,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Delete returns, reports, retained inputs and ledger entries past their retention.

    Periods come from [retention] in the pipeline file; each deletion is one entry in
    OUT/audit.jsonl (file digest, age, period), never an identifier.

    Example: crossgroup purge --out processed --keys keys/processor --now 2027-01-31
    """
    from crossgroup.config import load_group
    from crossgroup.group.retention import purge as run_purge

    group = load_group(pipeline)
    party = load_keys(keys, passphrase_env)
    when = None if now is None else dt.datetime.combine(now, dt.time(), tzinfo=dt.UTC)
    result = run_purge(out, party, group, now=when)
    for row in result.deleted:
        typer.echo(f"deleted {row['what']}: {row['file']} ({row['age_days']} days old)")
    for name, figures in result.ledgers.items():
        typer.echo(f"{name}: {figures['dropped']} entries dropped, {figures['kept']} kept")
    typer.echo(f"{len(result.deleted)} file(s) deleted; audit head {result.audit_head[:16]}")
