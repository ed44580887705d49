"""Withdrawal and erasure at a maison: seal an `erasure` package for the processor.

The package lists, for each customer id given, the `maison_ref` (from the local secret) and
the email and phone tokens recomputed from the customers file with exactly the export's
normalization, placeholder guard and keys, so the processor can drop every record it holds
or will receive for them. Ids absent from the customers file still get their ref (a customer
already deleted from the CRM can be erased from the group), and are counted.

The manifest is readable by anyone holding the package, so its summary is empty: the
processor needs nothing beyond the `erased` table itself (whose row count the manifest
already states). How many ids were not in the customers file and how many carry each token
stay at the maison: on the console, in `<package>.summary.json` beside the package (never
sent with it) and in the maison's audit log.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from crossgroup import audit
from crossgroup.commit import party_session, transaction
from crossgroup.config import MaisonConfig
from crossgroup.contracts import ERASURE
from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.package import Manifest, seal_package
from crossgroup.crypto.tokens import maison_refs
from crossgroup.engine import DuckDBEngine
from crossgroup.errors import InputError
from crossgroup.io import private_workdir, require_readable_file, scan_table, table_columns
from crossgroup.maison.export_identities import pseudonymize, tokenizable_identifiers
from crossgroup.maison.export_ledger import party_log
from crossgroup.maison.export_rules import check_keys
from crossgroup.maison.inputs import load_customers

(ERASURE_TABLE,) = ERASURE  # the one table of an erasure package (contracts.ERASURE)
# what the cleartext manifest summary of an erasure package holds: nothing (module doc)
MANIFEST_SUMMARY: dict = {}


@dataclass(frozen=True)
class EraseResult:
    package_path: Path
    manifest: Manifest
    summary: dict


def read_customer_ids(path: Path) -> pl.Series:
    """Customer ids from a .txt (one per line), .csv or .parquet file (column customer_id)."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        require_readable_file(path, "ids")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError(f"ids file {path} cannot be read: not UTF-8 text") from None
        except OSError as e:
            raise InputError(f"cannot read ids file {path}: {e.strerror}") from None
        ids = pl.Series("customer_id", [s.strip() for s in lines if s.strip()], dtype=pl.String)
    else:
        lf = scan_table(path, label="ids")
        schema = table_columns(lf, path, label="ids")
        if "customer_id" not in schema:
            raise InputError(f"ids file {path}: missing required column customer_id")
        try:
            ids = lf.select(pl.col("customer_id").cast(pl.String)).collect().to_series()
        except Exception:
            raise InputError(
                f"ids file {path}: column customer_id cannot be read as text"
            ) from None
        ids = ids.str.strip_chars().drop_nulls()
        ids = ids.filter(ids.str.len_chars() > 0)
    ids = ids.unique(maintain_order=True)
    if ids.len() == 0:
        raise InputError(f"ids file {path} lists no customer_id")
    return ids


def erasure_identities(
    customers: pl.DataFrame, ids: pl.Series, keys: PartyKeys, config: MaisonConfig
) -> tuple[pl.DataFrame, int]:
    """maison_ref, email_token, phone_token for every id; and how many were not in the file.

    `customers` has customer_id, email, phone, country for the whole CRM file, so that the
    placeholder guard sees exactly what the export saw.
    """
    identifiers, _ = tokenizable_identifiers(
        customers, ids, placeholder_max_customers=config.placeholder_max_customers
    )
    tokens = pseudonymize(identifiers, keys).select("customer_id", "email_token", "phone_token")
    everyone = pl.DataFrame({"customer_id": ids}).with_columns(
        maison_refs(keys.local_secret, ids).alias("maison_ref")
    )
    table = everyone.join(tokens, on="customer_id", how="left").sort("maison_ref")
    missing = int(ids.is_in(customers["customer_id"].implode()).not_().sum())
    return table.select(ERASURE[ERASURE_TABLE].names), missing


def erase_customers(
    customers: Path,
    ids: Path,
    *,
    keys: PartyKeys,
    config: MaisonConfig,
    out_dir: Path,
    batch_id: str | None = None,
    now: dt.datetime | None = None,
) -> EraseResult:
    """Seal an erasure package for the customers listed in `ids`, into `out_dir`.

    Example: erase_customers(Path("crm/customers.parquet"), Path("withdrawn.csv"),
    keys=load_party(Path("keys/aurelle")), config=cfg, out_dir=Path("outbox"))
    """
    recipient, matching_key_id = check_keys(keys, config.id)
    with party_session(keys.directory, party=config.id, command="erase"):
        return _erase(customers, ids, keys, config, out_dir, batch_id, now,
                      recipient, matching_key_id)  # fmt: skip


def _erase(customers, ids, keys, config, out_dir, batch_id, now, recipient, matching_key_id):
    """Under the maison's lock: the package, its local summary and the audit entry, one
    commit."""
    audit.require_intact(party_log(keys))  # refuse before working, not after
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    batch_id = batch_id or f"erasure-{now:%Y%m%dT%H%M%S}"
    wanted = read_customer_ids(ids)
    with private_workdir(prefix="crossgroup-erase-", party=config.id) as work:
        with DuckDBEngine(work, memory_limit="1GB", threads=2) as engine:
            load_customers(engine, Path(customers))
            crm = engine.to_polars("SELECT customer_id, email, phone, country FROM customers")
        table, missing = erasure_identities(crm, wanted, keys, config)
        path = work / f"{ERASURE_TABLE}.parquet"
        table.write_parquet(path, compression="zstd", statistics=False)
        summary = {
            "maison": config.id,
            "customers": table.height,
            "not_in_customers_file": missing,
            "with_email_token": int(table["email_token"].is_not_null().sum()),
            "with_phone_token": int(table["phone_token"].is_not_null().sum()),
        }
        with transaction(keys.directory) as tx:
            staging = tx.stage_output(out_dir)
            package_path, manifest = seal_package(
                staging,
                kind="erasure",
                sender=keys,
                recipient=recipient,
                tables={ERASURE_TABLE: path},
                batch_id=batch_id,
                as_of=now.date(),
                matching_key_id=matching_key_id,
                summary=dict(MANIFEST_SUMMARY),
                now=now,
            )
            # the counts stay at the maison, beside the package (never sent with it)
            side = package_path.with_name(package_path.name + ".summary.json")
            side.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            _record_erase(tx, keys, customers, ids, package_path, manifest, summary, batch_id, now)
    return EraseResult(Path(out_dir) / package_path.name, manifest, summary)


def _record_erase(tx, keys, customers, ids, package, manifest, summary, batch_id, now) -> None:
    tx.audit(
        party_log(keys),
        party=keys.party_id,
        command="erase",
        counts={k: v for k, v in summary.items() if k != "maison"},
        inputs=[
            {"file": Path(customers).name, "role": "customers",
             "sha256": audit.file_digest(Path(customers))},
            {"file": Path(ids).name, "role": "erasure_ids", "sha256": audit.file_digest(Path(ids))},
        ],
        outputs=[{"file": package.name, "package_id": manifest.package_id,
                  "sha256": audit.file_digest(package)}],
        settings={"batch_id": batch_id},
        signer=keys.signing_key,
        now=now,
    )  # fmt: skip
