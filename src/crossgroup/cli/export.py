"""`crossgroup export`: a maison seals its consented, pseudonymized activity for the processor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossgroup.cli.options import (
    AsOfOption,
    CustomersOption,
    FxOption,
    MaisonConfigOption,
    MaisonKeysOption,
    MaisonOption,
    PassphraseEnvOption,
    PurchasesOption,
    TaxonomyOption,
    load_keys,
    load_maison_config,
    short_id_option,
)
from crossgroup.config import load_fx, load_taxonomy
from crossgroup.text import printable


def export(
    maison: MaisonOption,
    customers: CustomersOption,
    purchases: PurchasesOption,
    as_of: AsOfOption,
    keys: MaisonKeysOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for the sealed package.")],
    config: MaisonConfigOption = None,
    taxonomy: TaxonomyOption = None,
    fx: FxOption = None,
    batch_id: Annotated[
        str | None, short_id_option("--batch-id", "Batch id (default: as-of month, YYYY-MM).")
    ] = None,
    passphrase_env: PassphraseEnvOption = None,
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
    from crossgroup.maison.export import export_maison

    tax = load_taxonomy(taxonomy)
    cfg = load_maison_config(maison, config, tax)
    party = load_keys(keys, passphrase_env)
    err = Console(stderr=True)
    with err.status("Starting export") as status:
        result = export_maison(
            customers,
            purchases,
            as_of=as_of,
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
    package = escape(printable(str(result.package_path)))
    console.print(f"Sealed for the processor: {package}")
    console.print(
        f"Summary (keep at the maison, do not send): {package}.summary.json", soft_wrap=True
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
    for label, value in rows:  # labels include CRM free text: shown only through printable
        table.add_row(
            escape(printable(label)), f"{value:,}" if isinstance(value, int) else str(value)
        )
    return table
