"""`crossgroup export`: a maison seals its consented, pseudonymized activity for the processor."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossgroup.cli.options import FxOption, MaisonConfigOption, TaxonomyOption
from crossgroup.config import load_fx, load_maison, load_taxonomy, maison_config_path
from crossgroup.errors import InputError

BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def export(
    maison: Annotated[str, typer.Option("--maison", help="Maison id, e.g. aurelle.")],
    customers: Annotated[Path, typer.Option("--customers", help="Customers .parquet or .csv.")],
    purchases: Annotated[Path, typer.Option("--purchases", help="Purchases .parquet or .csv.")],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date, YYYY-MM-DD.")],
    keys: Annotated[Path, typer.Option("--keys", help="The maison's key directory.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the sealed package.")],
    config: MaisonConfigOption = None,
    taxonomy: TaxonomyOption = None,
    fx: FxOption = None,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Batch id (default: as-of month, YYYY-MM).")
    ] = None,
) -> None:
    """Export consented customers' last 3 years of purchases as one sealed package.

    Only consenting, unrestricted customers (as of --as-of) and their purchases
    in (as-of - 3 years, as-of] leave the maison: pseudonymized, aggregated per
    month, group category and channel, and sealed for the group processor.
    Prints what was kept and what was dropped, and why, and writes the same
    summary to <package>.summary.json beside the package: it stays at the
    maison (never send it with the package). The package's readable manifest
    only counts what the package holds.

    Example: crossgroup export --maison aurelle --as-of 2026-09-30
    --customers crm/customers.parquet --purchases crm/purchases.parquet
    --keys keys/aurelle --out outbox
    """
    from crossgroup.crypto.keys import load_party
    from crossgroup.maison.export import export_maison

    try:
        as_of_date = date.fromisoformat(as_of)
    except ValueError:
        raise InputError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    if batch_id is not None and not BATCH_ID.match(batch_id):
        raise InputError("--batch-id must be 1-64 letters, digits, '.', '_' or '-'")
    tax = load_taxonomy(taxonomy)
    cfg = load_maison(config or maison_config_path(maison), tax)
    if cfg.id != maison:
        raise InputError(f"maison config {config} is for {cfg.id!r}, not {maison!r}")
    party = load_party(keys)
    err = Console(stderr=True)
    with err.status("Starting export") as status:
        result = export_maison(
            customers,
            purchases,
            as_of=as_of_date,
            keys=party,
            config=cfg,
            taxonomy=tax,
            fx=load_fx(fx),
            out_dir=out,
            batch_id=batch_id,
            progress=lambda label: status.update(label),
        )
    console = Console()
    console.print(summary_table(result.summary))
    console.print(f"Sealed for the processor: {result.package_path}")
    console.print(
        f"Summary (keep at the maison, do not send): {escape(str(result.package_path))}"
        ".summary.json",
        soft_wrap=True,
    )
    # one plain line, read by benchmarks/run.py (rich output may wrap)
    typer.echo("Step times: " + ", ".join(f"{k} {v:.3f} s" for k, v in result.timings.items()))


def summary_table(summary: dict[str, Any]) -> Table:
    """The export summary as a two-column table: what was kept and what was dropped, and why."""
    table = Table(title=f"Export {summary['maison']} as of {summary['as_of']}", show_lines=False)
    table.add_column("Figure")
    table.add_column("Count", justify="right")
    cust, purch, ph = summary["customers"], summary["purchases"], summary["placeholders"]
    unmapped = summary["unmapped_categories"]
    withheld = unmapped.get("withheld") or {"labels": 0, "rows": 0}
    withheld_row = (f"  {withheld['labels']:,} label(s) withheld (rare or identifier-like)",
                    withheld["rows"])  # fmt: skip
    rows: list[tuple[str, Any]] = [
        ("Customers read", cust["read"]),
        ("  eligible (consent as of the as-of date)", cust["eligible"]),
        ("  exported", cust["exported"]),
        *((f"  dropped: {k.replace('_', ' ')}", v) for k, v in cust["dropped"].items()),
        ("Purchase rows read", purch["read"]),
        ("  in window", purch["in_window"]),
        ("  before window", purch["before_window"]),
        ("  future-dated (dropped)", purch["future_dated"]),
        ("  of unknown customers", purch["unknown_customer"]),
        ("  exported", purch["exported"]),
        ("Placeholder email values", ph["email_values"]),
        ("Placeholder phone values", ph["phone_values"]),
        ("  exported customers affected", ph["customers_affected"]),
        ("Phones unparseable", summary["phones_unparseable"]),
        ("Unmapped category rows (to catch-all)", unmapped["rows"]),
        *((f"  {u['category']}", u["rows"]) for u in unmapped["labels"][:10]),
        *([withheld_row] if withheld["labels"] else []),
        ("Activity rows", summary["activity_rows"]),
        ("EUR total (net)", f"{summary['amount_eur_total']:,.2f}"),
    ]
    for label, value in rows:
        table.add_row(escape(label), f"{value:,}" if isinstance(value, int) else str(value))
    return table
