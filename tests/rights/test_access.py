"""Access and portability: the answer matches the real export, the ledger and the returns,
and no pseudonym, secret or customer id leaks into the outputs or the audit log."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from return_payload import GLOSSARY, make_aggregates, make_segments

from crossgroup import audit
from crossgroup.crypto.keys import init_keys, load_party
from crossgroup.crypto.package import open_package, seal_package
from crossgroup.crypto.tokens import maison_refs

MAISON = "aurelle"
AS_OF = date(2026, 9, 30)
TARGET = "AU-000007"  # consenting, e-mail and phone, several months of purchases
NO_CONSENT = "AU-000003"
PLACEHOLDER = "AU-000011"  # consenting, e-mail shared by 5 customers, no phone
N_CUSTOMERS = 120
CATEGORIES = ["Bagues", "Colliers", "Montres", "Alliances", "Foulards"]  # last: unmapped


def _customers() -> pl.DataFrame:
    ids = [f"AU-{i:06d}" for i in range(N_CUSTOMERS)]
    shared = {f"AU-{i:06d}" for i in (11, 12, 13, 14, 15)}
    return pl.DataFrame(
        {
            "customer_id": ids,
            "first_name": ["Camille"] * N_CUSTOMERS,
            "email": [
                "noemail@aurelle.example" if c in shared else f"{c.lower()}@example.org"
                for c in ids
            ],
            "phone": [
                None if c in shared else f"06 12 34 {i // 100:02d} {i % 100:02d}"
                for i, c in enumerate(ids)
            ],
            "country": ["FR"] * N_CUSTOMERS,
            "cross_group_consent": [c != NO_CONSENT and i % 9 != 5 for i, c in enumerate(ids)],
            "consent_updated_at": [datetime(2024, 1, 1, 9, 30)] * N_CUSTOMERS,
            "restricted": [False] * N_CUSTOMERS,
        }
    )


def _purchases() -> pl.DataFrame:
    rng = np.random.default_rng(4)
    owner = rng.integers(0, N_CUSTOMERS, 900)
    days = rng.integers(-60, 4 * 365, 900)  # some future-dated, some before the window
    return pl.DataFrame(
        {
            "customer_id": [f"AU-{o:06d}" for o in owner],
            "order_id": [f"O{i:06d}" for i in range(900)],
            "purchased_at": [datetime(2026, 9, 30, 15) - timedelta(days=int(d)) for d in days],
            "category": rng.choice(CATEGORIES, 900),
            "amount": np.round(rng.lognormal(6.0, 1.0, 900), 2),
            "currency": rng.choice(["EUR", "USD"], 900),
            "channel": rng.choice(["boutique", "online", "other"], 900),
        }
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Keys, a CRM, one real export, a return sealed by the processor and imported."""
    from crossgroup.config import load_fx, load_maison, load_taxonomy, maison_config_path
    from crossgroup.maison.export import export_maison
    from crossgroup.maison.import_ import import_return

    root = tmp_path_factory.mktemp("rights")
    keys = root / "keys"
    init_keys(keys, [MAISON, "kessler"])
    crm, sales = root / "crm" / "customers.parquet", root / "crm" / "purchases.parquet"
    crm.parent.mkdir()
    _customers().write_parquet(crm)
    _purchases().write_parquet(sales)
    party = load_party(keys / MAISON)
    taxonomy = load_taxonomy()
    exported = export_maison(
        crm, sales, as_of=AS_OF, keys=party,
        config=load_maison(maison_config_path(MAISON), taxonomy),
        taxonomy=taxonomy, fx=load_fx(), out_dir=root / "outbox",
    )  # fmt: skip
    (root / "opened").mkdir()
    opened = open_package(
        exported.package_path, load_party(keys / "processor"), root / "opened", kind="export"
    )
    tables = {n: pl.read_parquet(p) for n, p in opened.tables.items()}
    # the processor's return: one row per exported ref (a hand-built payload, real seal)
    refs = tables["identities"]["maison_ref"]
    segments = make_segments(refs.len(), seed=3).with_columns(maison_ref=refs)
    plain = root / "return-plain"
    plain.mkdir()
    paths = {}
    for name, frame in {
        "segments": segments, "aggregates": make_aggregates(segments), "glossary": GLOSSARY,
    }.items():  # fmt: skip
        paths[name] = plain / f"{name}.parquet"
        frame.write_parquet(paths[name])
    processor = load_party(keys / "processor")
    package, _ = seal_package(
        root / "maison" / "inbox", kind="return", sender=processor, recipient=MAISON,
        tables=paths, batch_id="2026-09", as_of=AS_OF,
        matching_key_id=processor.registry.matching_key_id,
    )  # fmt: skip
    import_return(
        maison_id=MAISON, package=package, customers=crm, keys=load_party(keys / MAISON),
        out_dir=root / "maison" / "analyst",
    )  # fmt: skip
    return {
        "root": root, "keys": keys, "crm": crm, "sales": sales, "tables": tables,
        "export": exported, "segments": segments, "package": package,
    }  # fmt: skip


def run_access(run_cli, world, customer_id: str, out: Path, *extra: str):
    """`crossgroup access` on a copy of the world's keys (out's sibling `keys`): its audit
    entry and any other write stay out of the module's shared key folder, whatever the order."""
    keys = shutil.copytree(world["keys"], out.parent / "keys")
    result = run_cli(
        "access", "--maison", MAISON, "--customer-id", customer_id,
        "--customers", world["crm"], "--purchases", world["sales"],
        "--as-of", AS_OF.isoformat(), "--keys", keys / MAISON, "--out", out, *extra,
    )  # fmt: skip
    log = (keys / MAISON / "audit.jsonl").read_bytes()
    assert customer_id.encode() not in log and b"noemail" not in log
    return result


@pytest.fixture(scope="module")
def target_access(world, tmp_path_factory):
    """`crossgroup access` for the target customer, with --returns over the maison's folder."""
    import sys as _sys

    from crossgroup.cli.app import main

    out = tmp_path_factory.mktemp("access") / TARGET
    argv = [
        "crossgroup", "access", "--maison", MAISON, "--customer-id", TARGET,
        "--customers", str(world["crm"]), "--purchases", str(world["sales"]),
        "--as-of", AS_OF.isoformat(), "--keys", str(world["keys"] / MAISON),
        "--returns", str(world["root"] / "maison"), "--out", str(out), "--request-id", "DSAR-17",
    ]  # fmt: skip
    saved, _sys.argv = _sys.argv, argv
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        _sys.argv = saved
    assert done.value.code == 0
    return out, json.loads((out / "access.json").read_text())


def ref_of(world, customer_id: str) -> bytes:
    party = load_party(world["keys"] / MAISON)
    return maison_refs(party.local_secret, pl.Series([customer_id]))[0]


def test_activity_matches_the_real_export_package(world, target_access):
    _, record = target_access
    ref = ref_of(world, TARGET)
    expected = (
        world["tables"]["activity"].filter(pl.col("maison_ref") == ref).drop("maison_ref")
        .with_columns(pl.col("month").cast(pl.String)).sort(pl.all())
    )  # fmt: skip
    assert expected.height >= 3, "the target needs several activity rows to prove anything"
    got = pl.DataFrame(record["would_be_exported"]["activity"], schema=expected.schema)
    assert got.sort(pl.all()).equals(expected)
    assert record["would_be_exported"]["exported"] is True
    assert record["would_be_exported"]["status"] == "eligible"


def test_identifier_status_matches_the_export_tokens(world, target_access):
    _, record = target_access
    identities = world["tables"]["identities"].filter(pl.col("maison_ref") == ref_of(world, TARGET))
    assert identities.height == 1
    for kind in ("email", "phone"):
        shared = identities[f"{kind}_token"][0] is not None
        assert record["identifiers"][kind]["pseudonym_shared"] is shared is True


def test_batches_come_from_the_export_ledger(world, target_access):
    _, record = target_access
    manifest = world["export"].manifest
    batches = record["batches"]
    assert batches["exports_recorded"] == 1
    assert [b["package_id"] for b in batches["including_customer"]] == [manifest.package_id]
    assert batches["including_customer"][0]["batch_id"] == manifest.batch_id


def test_returned_attributes_from_package_and_imported_file(world, target_access):
    _, record = target_access
    returned = record["returned_attributes"]
    sources = sorted(r["source"] for r in returned)
    assert sources == ["analyst/segments.parquet", world["package"].name]
    sealed = (
        world["segments"].filter(pl.col("maison_ref") == ref_of(world, TARGET)).row(0, named=True)
    )
    for row in returned:
        assert row["segment_label"] == sealed["segment_label"]
        assert row["value_tier"] == sealed["value_tier"]
        assert "maison_ref" not in row and "customer_id" not in row


def test_reading_an_imported_return_does_not_touch_the_replay_ledger(world, target_access):
    ledger = (world["keys"] / MAISON / "ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 1  # the import's acceptance only: access verified, did not accept


def test_no_pseudonym_secret_or_ref_in_outputs_or_logs(world, target_access):
    out, _ = target_access
    party = load_party(world["keys"] / MAISON)
    ident = world["tables"]["identities"].filter(pl.col("maison_ref") == ref_of(world, TARGET))
    needles = [party.local_secret, party.matching.secret]
    needles += [v for c in ident.columns for v in ident[c].to_list() if v is not None]
    needles += [n.hex().encode() for n in list(needles)]
    files = [out / "access.json", out / "access.html"]
    files += [
        world["keys"] / MAISON / n for n in ("audit.jsonl", "audit.jsonl.head", "exports.jsonl")
    ]
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"a pseudonym or secret is in {path.name}"
    log = (world["keys"] / MAISON / "audit.jsonl").read_bytes()
    assert TARGET.encode() not in log and b"noemail" not in log


def test_html_page_is_self_contained_and_readable(target_access):
    out, record = target_access
    page = (out / "access.html").read_text()
    assert "Content-Security-Policy" in page and "<script" not in page
    assert "http://" not in page and "https://" not in page
    assert TARGET in page and "would be shared" in page
    assert record["would_be_exported"]["activity"][0]["group_category"] in page


def test_customer_without_consent_is_told_why(run_cli, world, tmp_path):
    result = run_access(run_cli, world, NO_CONSENT, tmp_path / "a")
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "a" / "access.json").read_text())
    exp = record["would_be_exported"]
    assert exp["exported"] is False and exp["status"] == "no_consent" and exp["activity"] == []
    assert record["batches"]["including_customer"] == []
    for kind in ("email", "phone"):
        assert not record["identifiers"][kind]["pseudonym_shared"]
        assert (
            record["identifiers"][kind]["reason"] == "nothing about this customer would be exported"
        )


def test_placeholder_email_is_explained(run_cli, world, tmp_path):
    result = run_access(run_cli, world, PLACEHOLDER, tmp_path / "p")
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "p" / "access.json").read_text())
    assert record["would_be_exported"]["exported"], (
        "the placeholder case needs an exported customer"
    )
    email = record["identifiers"]["email"]
    assert email["on_file"] and not email["pseudonym_shared"]
    assert "placeholder" in email["reason"]
    ident = world["tables"]["identities"].filter(pl.col("maison_ref") == ref_of(world, PLACEHOLDER))
    assert ident["email_token"][0] is None  # the real export agrees: no e-mail token


def test_unknown_customer_is_exit_2_and_writes_nothing(run_cli, world, tmp_path):
    result = run_access(run_cli, world, "AU-999999", tmp_path / "x")
    assert result.exit_code == 2
    assert "no such customer" in result.stderr and "AU-999999" not in result.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_every_maison_command_was_audited(world, target_access, run_cli):
    log = world["keys"] / MAISON / "audit.jsonl"
    entries = audit.read_entries(log)
    commands = [e["command"] for e in entries]
    assert commands == ["export", "import", "access"]  # other tests write to copies
    export_entry = entries[0]
    assert export_entry["outputs"][0]["package_id"] == world["export"].manifest.package_id
    assert export_entry["counts"]["customers_exported"] == world["tables"]["identities"].height
    assert entries[2]["settings"]["request_id"] == "DSAR-17"
    registry = world["keys"] / "registry.toml"
    result = run_cli("audit", "verify", "--log", log, "--registry", registry)
    assert result.exit_code == 0, result.stderr
    assert "intact" in result.stdout
