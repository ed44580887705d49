"""`crossgroup access`: a maison answers a customer's access or portability request."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from crossgroup.cli.options import FxOption, MaisonConfigOption, TaxonomyOption
from crossgroup.config import PARTY_ID, load_fx, load_maison, load_taxonomy, maison_config_path
from crossgroup.errors import InputError

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def access(
    maison: Annotated[str, typer.Option("--maison", help="Maison id, e.g. aurelle.")],
    customer_id: Annotated[
        str, typer.Option("--customer-id", help="The customer's id in the maison's CRM.")
    ],
    customers: Annotated[Path, typer.Option("--customers", help="Customers .parquet or .csv.")],
    purchases: Annotated[Path, typer.Option("--purchases", help="Purchases .parquet or .csv.")],
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date, YYYY-MM-DD.")],
    keys: Annotated[Path, typer.Option("--keys", help="The maison's key directory.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for access.json and access.html.")],
    returns: Annotated[
        Path | None,
        typer.Option(
            "--returns",
            help="Folder searched for imported segments.parquet files and return packages.",
        ),
    ] = None,
    request_id: Annotated[
        str | None,
        typer.Option("--request-id", help="Your ticket number, recorded in the audit log."),
    ] = None,
    config: MaisonConfigOption = None,
    taxonomy: TaxonomyOption = None,
    fx: FxOption = None,
) -> None:
    """Show one customer what cross-group analytics holds about them (GDPR art. 15 and 20).

    Writes access.json (machine-readable, for portability) and access.html (a readable page):
    whether the customer would be exported as of --as-of and why, their activity rows exactly
    as the export computes them, whether an e-mail or phone pseudonym is shared (never the
    pseudonym itself), the past batches that included them (from the export ledger), and the
    attributes the group returned (from --returns). Appends to the maison's audit log, without
    the customer id.

    Example: crossgroup access --maison aurelle --customer-id AU-000042
    --customers crm/customers.parquet --purchases crm/purchases.parquet --as-of 2026-09-30
    --keys keys/aurelle --returns analyst --out access/AU-000042
    """
    from crossgroup.crypto.keys import load_party
    from crossgroup.maison.access import access_request

    if not PARTY_ID.match(maison):
        raise InputError("--maison must be a party id (lower-case letters, digits, '-')")
    try:
        as_of_date = date.fromisoformat(as_of)
    except ValueError:
        raise InputError(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)") from None
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise InputError("--request-id must be 1-64 letters, digits, '.', '_' or '-'")
    if not customer_id.strip():
        raise InputError("--customer-id must not be empty")
    if returns is not None and not returns.is_dir():
        raise InputError(f"--returns {returns} is not a folder")
    tax = load_taxonomy(taxonomy)
    cfg = load_maison(config or maison_config_path(maison), tax)
    if cfg.id != maison:
        raise InputError(f"maison config {config} is for {cfg.id!r}, not {maison!r}")
    with Console(stderr=True).status("Computing what would be exported for this customer"):
        result = access_request(
            customer_id=customer_id,
            customers=customers,
            purchases=purchases,
            as_of=as_of_date,
            keys=load_party(keys),
            config=cfg,
            taxonomy=tax,
            fx=load_fx(fx),
            out_dir=out,
            returns_dir=returns,
            request_id=request_id,
        )
    record = result.record
    exported = record["would_be_exported"]
    console = Console()
    verdict = "would be exported" if exported["exported"] else "would not be exported"
    console.print(f"As of {record['as_of']}: {verdict} ({escape(exported['reason'])})")
    console.print(f"Activity rows: {len(exported['activity'])}")
    console.print(f"Past batches including them: {len(record['batches']['including_customer'])}")
    console.print(f"Returned attribute rows: {len(record['returned_attributes'])}")
    console.print(f"Wrote {escape(str(result.json_path))} and {escape(str(result.html_path))}")
