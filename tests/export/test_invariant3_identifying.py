"""Invariant 3 (DESIGN §5.3) checked independently: nothing in an export identifies a person.

Every value of every exported column, every key and scalar of the manifest and the package's
file name go through `identifying.Recognizer`, a test-side recognizer built from the test's
own CRM input (no crossgroup function decides what is identifying). Planted values of each
kind show the recognizer catches them, and that an export either refuses them or leaves
them out of the package.
"""

from __future__ import annotations

import random
import shutil
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the test-side recognizer
from identifying import Recognizer, scan_export

AS_OF = date(2026, 9, 30)
CUSTOMERS = pl.DataFrame(
    {
        "customer_id": ["CUST-000123", "C-0001", "A"],
        "first_name": ["Claire", "Jean-Luc", "Zoé"],
        "last_name": ["Dubois", "Marchetti", "Okafor"],
        "email": ["Jane.Doe@Example.org", None, "zoe.okafor@mail.example.com"],
        "phone": ["06 12 34 56 78", "+44 20 7946 0958", None],
        "country": ["FR", "GB", "IT"],
    }
)
PURCHASES = pl.DataFrame(
    {"customer_id": ["CUST-000123", "A"], "order_id": ["ORD-2026-00042", "o1"]}
)
REC = Recognizer.from_crm(CUSTOMERS, PURCHASES)


# --- (a) the recognizer catches each kind ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("jane.doe@example.org", "email"),
        ("Jane.Doe@Example.org", "email"),  # original case
        ("Contact: JANE.DOE@EXAMPLE.ORG", "email"),
        ("x@y", "email"),
        ("+33 6 12 34 56 78", "phone"),  # international
        ("06.12.34.56.78", "phone"),  # national, FR
        ("0612345678", "phone"),
        ("(212) 555-0199", "phone"),  # national, US
        ("+41 44 668 18 00", "phone"),  # E.164 of a region not in the CRM
        ("03-1234-5678", "phone"),  # national, JP
        ("020 7946 0958", "phone"),  # the CRM's GB phone, nationally
        ("CUST-000123", "customer_id"),
        ("cust-000123", "customer_id"),  # case-insensitive
        ("Gift for cust-000123", "customer_id"),  # substring
        ("a", "customer_id"),  # short id: whole value only
        ("ORD-2026-00042", "order_id"),
        ("refund ord-2026-00042", "order_id"),
        ("Claire", "name"),
        ("Cadeau pour Mme DUBOIS", "name"),
        ("Jean-Luc", "name"),
        ("zoé", "name"),
        ("zoe.okafor", "email_local"),
    ],
)
def test_recognizer_catches_each_kind_in_text(value, kind):
    assert kind in REC.value(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"jane.doe@example", "text"),  # the first 16 bytes of an e-mail
        (b"jane.doe@example", "email"),
        (b"Jane.Doe@Example", "text"),
        (b"jane.doe@examp\x00\x00", "text"),  # cut short, NUL-padded
        (b"\x8a\x13jane.doe\x00\xc4\x7f\x01\x99\x10\x00\xee", "email_local"),
        (b"+33612345678\x00\x00\x00\x00", "phone"),
        (b"\x9f\x01CUST-000123\x02\xfe\x80", "customer_id"),  # inside random-looking bytes
        (b"\xff\xeeord-2026-00042", "order_id"),
        (b"\x01\x02\x03marchetti\x04\x05\x06\x07", "name"),
        (b"\x01\x02\x03\x04" + "Zoé Okafor".encode() + b"\x05", "name"),  # UTF-8
    ],
)
def test_recognizer_catches_each_kind_in_binary(value, kind):
    assert kind in REC.value(value)


@pytest.mark.parametrize("value", [612345678, 2125550199, 33612345678.0, 442079460958])
def test_recognizer_catches_phones_written_as_numbers(value):
    assert "phone" in REC.value(value)


@pytest.mark.parametrize(
    "value",
    ["Fine Jewelry", "Other Watches & Jewelry", "Cognac & Spirits", "boutique", "online",
     "2026-09-30", "2026-09-30T23:59:59.999999+00:00", 1579.0, 31003.59, 12, None,
     "5f0c7b8e-3d1e-4c5e-9a3f-2b1c0d9e8f7a", "x25519-hkdf-sha256-chacha20poly1305"],
)  # fmt: skip
def test_recognizer_passes_what_an_export_legitimately_holds(value):
    assert REC.value(value) == set()


def test_recognizer_passes_keyed_pseudonyms():
    rng = random.Random(17)  # fixed: pseudonym-like bytes
    assert all(REC.value(rng.randbytes(16)) == set() for _ in range(2000))
    # the limit: one non-printable byte in a value not from the CRM is not caught
    assert REC.value(b"john.roe@exam\x9fle") == set()


# --- the real export holds nothing identifying ----------------------------------------------


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from crossgroup.config import demo_maisons
    from crossgroup.synth.writer import write_world

    out = tmp_path_factory.mktemp("synth-ident")
    write_world(out, demo_maisons()[:2], persons=400, seed=23, as_of=AS_OF)
    return out


def _scan(out, recognizer: Recognizer) -> list[tuple[str, str]]:
    tables = {"identities": out.identities, "activity": out.activity}
    return scan_export(recognizer, tables, out.manifest.to_dict(), [out.result.package_path.name])


def test_synth_export_holds_nothing_identifying(synth_dir, export_world_paths):
    from crossgroup.config import load_maison, load_taxonomy

    customers = pl.read_parquet(synth_dir / "aurelle" / "customers.parquet")
    purchases = pl.read_parquet(synth_dir / "aurelle" / "purchases.parquet")
    rec = Recognizer.from_crm(customers, purchases)
    # the scan is not blind: it sees the input's own identifiers of every kind
    sample = customers.head(50).to_dicts()
    assert all("customer_id" in rec.value(r["customer_id"]) for r in sample)
    assert all("email" in rec.value(r["email"]) for r in sample if r["email"])
    assert all("name" in rec.value(r["last_name"]) for r in sample)
    assert sum("phone" in rec.value(r["phone"]) for r in sample if r["phone"]) >= 30
    assert all("order_id" in rec.value(o) for o in purchases["order_id"].head(50))

    config = load_maison(synth_dir / "aurelle" / "maison.toml", load_taxonomy())
    out = export_world_paths(
        synth_dir / "aurelle" / "customers.parquet",
        synth_dir / "aurelle" / "purchases.parquet",
        AS_OF,
        config=config,
    )
    assert out.identities.height > 50 and out.identities["phone_token"].null_count() < 50
    assert _scan(out, rec) == []


PLANTED = {
    "email": "jane.doe@example.org",
    "email_case": "Jane.Doe@Example.ORG",
    "phone_national": "06 12 34 56 78",
    "phone_international": "+33 6 12 34 56 78",
    "customer_id": "CUST-000123",
    "order_id": "ORD-2026-00042",
    "name": "Cadeau pour Mme Claire Dubois",
}


def test_planted_crm_values_never_reach_the_package(export_world_paths, crm, tmp_path):
    """Identifying category labels, carried by enough customers to pass the placeholder
    line, plus names in the CRM: the export succeeds and none of them is in the package."""
    c, p = crm.customer, crm.purchase
    ids = ["CUST-000123", *(f"CUST-00020{i}" for i in range(5))]
    customers = [
        c(cid, first_name="Claire", email=f"claire.{cid.lower()}@example.org",
          phone=f"+33 6 12 34 56 7{i}")
        for i, cid in enumerate(ids)
    ]  # fmt: skip
    d = date(2026, 3, 2)
    purchases = [p(ids[0], "ORD-2026-00042", d)]
    for i, cid in enumerate(ids):
        for j, label in enumerate(PLANTED.values()):
            purchases.append(p(cid, f"ORD-{i}-{j}", d, category=label))
    frame = pl.DataFrame(customers, schema=crm.customer_schema).with_columns(
        last_name=pl.lit("Dubois")
    )
    rec = Recognizer.from_crm(frame, pl.DataFrame(purchases, schema=crm.purchase_schema))
    for kind, label in PLANTED.items():
        assert rec.value(label), kind  # the scan would see each planted label
    cpath = crm.write(tmp_path / "c.parquet", frame)
    ppath = crm.write(tmp_path / "p.parquet", purchases, crm.purchase_schema)
    out = export_world_paths(cpath, ppath, AS_OF)
    assert out.identities.height == len(ids)
    assert _scan(out, rec) == []


@pytest.mark.parametrize("channel", ["jane.doe@example.org", "+33 6 12 34 56 78", "CUST-000123"])
def test_identifying_channel_is_refused_exit_2(export_world, crm, tmp_path, channel):
    from crossgroup.errors import InputError

    c, p = crm.customer, crm.purchase
    with pytest.raises(InputError) as info:
        export_world(
            [c("CUST-000123")], [p("CUST-000123", "o1", date(2026, 3, 2), channel=channel)], AS_OF
        )
    assert info.value.exit_code == 2
    assert channel not in str(info.value)
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())


@pytest.mark.parametrize("category", ["jane.doe@example.org", "+33 6 12 34 56 78", "CUST-000123"])
def test_identifying_group_category_is_refused_exit_3(crm, keydir, pipelines, tmp_path, category):
    """A taxonomy whose group category is an e-mail, a phone or a customer's id: exit 3."""
    from crossgroup.config import load_fx, load_maison, load_taxonomy
    from crossgroup.crypto.keys import load_party
    from crossgroup.errors import PrivacyCheckError
    from crossgroup.maison.export import export_maison

    doctored = Path(shutil.copytree(pipelines, tmp_path / "pipelines"))
    for path in (doctored / "taxonomy.toml", doctored / "maisons" / "aurelle.toml"):
        path.write_text(path.read_text().replace('"Fine Jewelry"', f'"{category}"'))
    taxonomy = load_taxonomy(doctored / "taxonomy.toml")
    c, p = crm.customer, crm.purchase
    cpath = crm.write(tmp_path / "c.parquet", [c("CUST-000123")], crm.customer_schema)
    ppath = crm.write(
        tmp_path / "p.parquet", [p("CUST-000123", "o1", date(2026, 3, 2))], crm.purchase_schema
    )
    out = tmp_path / "outbox"
    with pytest.raises(PrivacyCheckError) as info:
        export_maison(
            cpath, ppath, as_of=AS_OF, keys=load_party(keydir / "aurelle"),
            config=load_maison(doctored / "maisons" / "aurelle.toml", taxonomy),
            taxonomy=taxonomy, fx=load_fx(doctored / "fx.toml"), out_dir=out,
        )  # fmt: skip
    assert info.value.exit_code == 3
    assert "activity.group_category" in str(info.value) and category not in str(info.value)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("column", ["email_token", "maison_ref"])
def test_identifier_bytes_in_a_pseudonym_column_are_refused_exit_3(
    export_world, crm, monkeypatch, tmp_path, column
):
    """A pseudonymization bug that writes 16 bytes of the normalized e-mail in place of a
    keyed token: the export refuses (exit 3) and ships nothing."""
    import crossgroup.maison.export as export
    from crossgroup.errors import PrivacyCheckError

    real = export.pseudonymize

    def leaky(identifiers, keys):
        raw = identifiers["email_norm"].map_elements(
            lambda e: e.encode()[:16].ljust(16, b"\0"), return_dtype=pl.Binary
        )
        return real(identifiers, keys).with_columns(raw.alias(column))

    monkeypatch.setattr(export, "pseudonymize", leaky)
    c, p = crm.customer, crm.purchase
    customers = [c("CUST-000123", email="jane.doe@example.org")]
    assert Recognizer.from_crm(
        pl.DataFrame(customers, schema=crm.customer_schema), pl.DataFrame()
    ).value(b"jane.doe@example")  # what the bug would ship is identifying
    with pytest.raises(PrivacyCheckError) as info:
        export_world(customers, [p("CUST-000123", "o1", date(2026, 3, 2))], AS_OF)
    assert info.value.exit_code == 3
    assert "read as text" in str(info.value) and "jane" not in str(info.value)
    out = tmp_path / "outbox"
    assert not out.exists() or not any(out.iterdir())
