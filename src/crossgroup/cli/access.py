"""`crossgroup access`: a maison answers a customer's access or portability request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

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
    folder_option,
    load_keys,
    load_maison_config,
    short_id_option,
)
from crossgroup.config import load_fx, load_taxonomy
from crossgroup.errors import InputError


def access(
    maison: MaisonOption,
    customer_id: Annotated[
        str, typer.Option("--customer-id", help="The customer's id in the maison's CRM.")
    ],
    customers: CustomersOption,
    purchases: PurchasesOption,
    as_of: AsOfOption,
    keys: MaisonKeysOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for access.json and access.html.")],
    returns: Annotated[
        Path | None,
        folder_option(
            "--returns", "Folder searched for imported segments.parquet files and return packages."
        ),
    ] = None,
    request_id: Annotated[
        str | None,
        short_id_option("--request-id", "Your ticket number, recorded in the audit log."),
    ] = None,
    config: MaisonConfigOption = None,
    taxonomy: TaxonomyOption = None,
    fx: FxOption = None,
    passphrase_env: PassphraseEnvOption = None,
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
    from crossgroup.maison.access import access_request

    if not customer_id.strip():
        raise InputError("--customer-id must not be empty")
    tax = load_taxonomy(taxonomy)
    cfg = load_maison_config(maison, config, tax)
    party = load_keys(keys, passphrase_env)
    with Console(stderr=True).status("Computing what would be exported for this customer"):
        result = access_request(
            customer_id=customer_id,
            customers=customers,
            purchases=purchases,
            as_of=as_of,
            keys=party,
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
