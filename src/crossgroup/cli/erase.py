"""`crossgroup erase`: a maison seals the withdrawals and erasure requests for the processor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossgroup.cli.options import (
    MaisonConfigOption,
    MaisonKeysOption,
    MaisonOption,
    PassphraseEnvOption,
    input_file_option,
    load_keys,
    load_maison_config,
    short_id_option,
)


def erase(
    maison: MaisonOption,
    customers: Annotated[
        Path,
        input_file_option("--customers", "customers", "Customers .parquet or .csv (current CRM)."),
    ],
    ids: Annotated[
        Path,
        input_file_option(
            "--ids",
            "ids",
            "Customer ids to erase: .txt (one a line), .csv or .parquet (customer_id).",
        ),
    ],
    keys: MaisonKeysOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for the sealed erasure package.")],
    config: MaisonConfigOption = None,
    batch_id: Annotated[
        str | None, short_id_option("--batch-id", "Package batch id (default: erasure-<time>).")
    ] = None,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Seal an erasure package: the refs and tokens of customers who withdrew or asked
    to be forgotten, for the processor to drop now and in every later batch.

    Tokens are recomputed from the customers file with the export's normalization and
    keys; ids missing from it still get their ref. Prints counts only; they stay at
    the maison (here and in <package>.summary.json beside the package, never sent with
    it): the package's readable manifest carries none.

    Example: crossgroup erase --maison aurelle --customers crm/customers.parquet
    --ids withdrawn.csv --keys keys/aurelle --out outbox
    """
    from crossgroup.maison.erase import erase_customers

    cfg = load_maison_config(maison, config)
    party = load_keys(keys, passphrase_env)
    result = erase_customers(customers, ids, keys=party, config=cfg, out_dir=out, batch_id=batch_id)
    s = result.summary
    typer.echo(
        f"Erasure of {s['customers']} customer(s) of {maison} sealed for the processor "
        f"({s['not_in_customers_file']} not in the customers file, "
        f"{s['with_email_token']} with an email token, {s['with_phone_token']} with a phone token)"
    )
    typer.echo(f"Package: {result.package_path}")
