"""`crossgroup import`: a maison opens its return package and gets analyst-ready files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossgroup.cli.options import (
    MaisonKeysOption,
    MaisonOption,
    ModeOption,
    PassphraseEnvOption,
    input_file_option,
    load_keys,
)


def import_(
    maison: MaisonOption,
    package: Annotated[
        Path, input_file_option("--package", "return package", "The return package (.cgpkg).")
    ],
    customers: Annotated[
        Path,
        input_file_option(
            "--customers", "customers", "CRM extract (.parquet or .csv) with customer_id."
        ),
    ],
    keys: MaisonKeysOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for the analyst files.")],
    csv: Annotated[bool, typer.Option("--csv", help="Also write segments.csv.")] = False,
    previous: Annotated[
        Path | None,
        input_file_option(
            "--previous",
            "previous segments",
            "segments.parquet of this maison's previous import: also write changes.parquet "
            "(segment transitions, new and no longer returned customers, in counts).",
        ),
    ] = None,
    mode: ModeOption = 0o600,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Verify and decrypt a return package, relink it to customer_id, write the analyst files.

    The package must be addressed to this maison and signed by the group processor, and may
    be imported once (a replay is refused). Each returned maison_ref is matched to the CRM
    by recomputing refs from customer_id; refs with no customer any more are counted and
    dropped. Writes segments.parquet (customer_id + segment + generalized attributes),
    report.html, and with --csv segments.csv: readable by their owner only unless --mode
    says otherwise. With --previous (the segments.parquet of the previous batch's import),
    compares each customer's segment then and now and writes changes.parquet and a "What
    changed since last month" section in report.html: counts, each below the return's
    k_aggregate suppressed and accounted for.

    Example: crossgroup import --maison aurelle --package inbox/return.cgpkg
    --customers crm/customers.parquet --keys keys/aurelle --out analyst
    --previous analyst/segments.parquet
    """
    from crossgroup.maison.import_ import import_return

    party = load_keys(keys, passphrase_env)
    with Console(stderr=True).status("Verifying and relinking the return package"):
        result = import_return(
            maison_id=maison,
            package=package,
            customers=customers,
            keys=party,
            out_dir=out,
            write_csv=csv,
            mode=mode,
            previous=previous,
        )
    table = Table(title=f"Import {escape(result.maison_id)}, batch {escape(result.batch_id)}")
    table.add_column("Figure")
    table.add_column("Count", justify="right")
    table.add_row("Rows returned", f"{result.returned:,}")
    table.add_row("Relinked to customer_id", f"{result.relinked:,}")
    table.add_row("Dropped (no longer in the CRM)", f"{result.dropped:,}")
    table.add_row("Segments", f"{result.segments:,}")
    if result.changes is not None:
        changes = result.changes
        held = changes.suppressed_customers
        table.add_row("Change cells (since the previous import)", f"{changes.table.height:,}")
        table.add_row(
            f"Change cells suppressed (k_aggregate = {changes.k_aggregate:,})",
            f"{changes.suppressed_cells:,}"
            + (f" ({held:,} customers)" if held is not None else ""),
        )
    console = Console()
    console.print(table)
    for path in (result.segments_path, result.csv_path, result.changes_path, result.report_path):
        if path is not None:
            console.print(f"Wrote {escape(str(path))}")
