"""Fixtures for the maison export: tiny CRM extracts written to tmp files, demo keys."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from crossgroup.config import load_fx, load_maison, load_taxonomy

CUSTOMER_SCHEMA = {
    "customer_id": pl.String,
    "first_name": pl.String,  # beyond the contract: must never be read
    "email": pl.String,
    "phone": pl.String,
    "country": pl.String,
    "cross_group_consent": pl.Boolean,
    "consent_updated_at": pl.Datetime("us"),
    "restricted": pl.Boolean,
}
PURCHASE_SCHEMA = {
    "customer_id": pl.String,
    "order_id": pl.String,
    "purchased_at": pl.Datetime("us"),
    "category": pl.String,
    "amount": pl.Float64,
    "currency": pl.String,
    "channel": pl.String,
}


def customer(cid: str, **kw: Any) -> dict[str, Any]:
    """A consenting, unrestricted customer (consent dated 2024-01-01) unless overridden."""
    row = {
        "customer_id": cid,
        "first_name": "Camille",
        "email": f"{cid.lower()}@example.org",
        "phone": None,
        "country": "FR",
        "cross_group_consent": True,
        "consent_updated_at": datetime(2024, 1, 1, 9, 30),
        "restricted": False,
    }
    row.update(kw)
    return row


def purchase(cid: str, oid: str, when: date | datetime, **kw: Any) -> dict[str, Any]:
    """One EUR 100 boutique line of a mapped Aurelle category unless overridden."""
    at = when if isinstance(when, datetime) else datetime(when.year, when.month, when.day, 12)
    row = {
        "customer_id": cid,
        "order_id": oid,
        "purchased_at": at,
        "category": "Bagues",
        "amount": 100.0,
        "currency": "EUR",
        "channel": "boutique",
    }
    row.update(kw)
    return row


def write(path: Path, rows: list[dict] | pl.DataFrame, schema: dict | None = None) -> Path:
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=schema)
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


@dataclass
class Opened:
    result: Any
    identities: pl.DataFrame
    activity: pl.DataFrame
    manifest: Any


@pytest.fixture(scope="session")
def fresh_keys(tmp_path_factory) -> Path:
    from crossgroup.crypto.keys import init_keys

    root = tmp_path_factory.mktemp("keys")
    init_keys(root, ["aurelle", "kessler"])
    return root


@pytest.fixture
def keydir(fresh_keys, tmp_path) -> Path:
    """The session's keys with no export recorded yet: each test exports its batch once."""
    return Path(shutil.copytree(fresh_keys, tmp_path / "keys"))


@pytest.fixture
def export_world_paths(tmp_path, keydir, pipelines):
    """Run the export on given files and open the package as the processor would."""
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import open_package
    from crossgroup.maison.export import export_maison

    taxonomy = load_taxonomy(pipelines / "taxonomy.toml")
    config = load_maison(pipelines / "maisons" / "aurelle.toml", taxonomy)
    fx = load_fx(pipelines / "fx.toml")
    maison = load_party(keydir / "aurelle")
    processor = load_party(keydir / "processor")

    def run(customers: Path, purchases: Path, as_of: date, **kw: Any) -> Opened:
        result = export_maison(
            customers,
            purchases,
            as_of=as_of,
            keys=maison,
            config=kw.pop("config", config),
            taxonomy=taxonomy,
            fx=fx,
            out_dir=tmp_path / "outbox",
            **kw,
        )
        work = tmp_path / "opened"
        work.mkdir(exist_ok=True)
        opened = open_package(result.package_path, processor, work, kind="export")
        return Opened(
            result,
            pl.read_parquet(opened.tables["identities"]),
            pl.read_parquet(opened.tables["activity"]),
            opened.manifest,
        )

    return run


@pytest.fixture
def export_world(tmp_path, export_world_paths):
    """Write crafted rows to tmp Parquet files, export them and open the package."""

    def run(customers: list[dict], purchases: list[dict], as_of: date, **kw: Any) -> Opened:
        cpath = write(tmp_path / "customers.parquet", customers, CUSTOMER_SCHEMA)
        ppath = write(tmp_path / "purchases.parquet", purchases, PURCHASE_SCHEMA)
        return export_world_paths(cpath, ppath, as_of, **kw)

    return run


@pytest.fixture
def ref_of(keydir):
    """maison_ref of Aurelle customer_ids, recomputed the way the maison would."""
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.tokens import maison_refs

    secret = load_party(keydir / "aurelle").local_secret
    return lambda ids: maison_refs(secret, ids)


@pytest.fixture
def ref(ref_of):
    """The set of maison_refs of the given Aurelle customer_ids."""
    return lambda *ids: set(ref_of(pl.Series(list(ids), dtype=pl.String)))


@pytest.fixture
def crm() -> SimpleNamespace:
    """Row builders and a writer, handed to tests as one fixture (no conftest imports)."""
    return SimpleNamespace(
        customer=customer,
        purchase=purchase,
        write=write,
        customer_schema=CUSTOMER_SCHEMA,
        purchase_schema=PURCHASE_SCHEMA,
    )
