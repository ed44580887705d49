"""Review fixes: what the cleartext manifest may say, unmapped labels in the local summary,
non-finite amounts, and category labels that differ only in spacing or Unicode form."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from datetime import date

import polars as pl
import pytest

from crossgroup.errors import InputError

AS_OF = date(2026, 9, 30)
PERSON_LABEL = "Cadeau pour Mme Claire Dubois"
CUSTOMER_ID_LABEL = "CUST-AB42"  # a category equal to a customer_id
ORDER_ID_LABEL = "ORDER-ZZ777"  # a category equal to an order_id
MANIFEST_KEYS = {
    "customers": {"exported"},
    "identities": {"with_email_token", "with_phone_token", "without_token"},
    "activity_rows": None,
    "unmapped_categories": {"rows"},
}


def _labelled_world(crm):
    c, p = crm.customer, crm.purchase
    ids = [f"CUST-AB{i}" for i in range(40, 46)]  # 40..45, 42 is CUSTOMER_ID_LABEL
    customers = [c(cid) for cid in ids]
    customers += [c(f"NOPE-{i}", cross_group_consent=False) for i in range(7)]  # CRM-level only
    d = date(2026, 3, 2)
    purchases = [p(ids[0], "ORD-person", d, category=PERSON_LABEL)]
    for i, cid in enumerate(ids[:5]):  # each label on 5 customers: past the rarity threshold
        purchases.append(p(cid, f"ORD-cid-{i}", d, category=CUSTOMER_ID_LABEL))
        purchases.append(p(cid, f"ORD-oid-{i}", d, category=ORDER_ID_LABEL))
        purchases.append(p(cid, f"ORD-broche-{i}", d, category="Broches"))
    purchases.append(p(ids[5], ORDER_ID_LABEL, d))  # makes ORDER_ID_LABEL an order_id
    purchases += [p(f"NOPE-{i}", f"ORD-nope-{i}", d, category=PERSON_LABEL) for i in range(7)]
    return customers, purchases


def test_manifest_summary_holds_only_package_counts_and_no_label(export_world, crm):
    customers, purchases = _labelled_world(crm)
    out = export_world(customers, purchases, AS_OF)

    raw = out.result.package_path.read_bytes()
    for needle in (PERSON_LABEL, "Claire Dubois", CUSTOMER_ID_LABEL, ORDER_ID_LABEL, "Broches"):
        assert needle.encode() not in raw, needle
    for word in ("no_consent", "dropped", "placeholders", "amount_eur_total", "in_file"):
        assert word.encode() not in raw, word

    summary = out.manifest.summary
    assert set(summary) == set(MANIFEST_KEYS)
    for key, allowed in MANIFEST_KEYS.items():
        if allowed is None:
            assert isinstance(summary[key], int)
        else:
            assert set(summary[key]) == allowed
    assert summary["customers"]["exported"] == 6 == out.identities.height
    assert summary["activity_rows"] == out.activity.height
    assert summary["unmapped_categories"]["rows"] == 16
    assert summary["identities"]["with_email_token"] == 6


def test_local_summary_names_only_shared_non_identifying_labels(export_world, crm):
    customers, purchases = _labelled_world(crm)
    out = export_world(customers, purchases, AS_OF)
    local = out.result.summary["unmapped_categories"]
    assert local == {
        "rows": 16,
        "labels": [{"category": "Broches", "rows": 5}],
        # the person's note (1 customer), the customer_id and the order_id labels
        "withheld": {"labels": 3, "rows": 11},
    }
    side = out.result.package_path.with_name(out.result.package_path.name + ".summary.json")
    text = side.read_text(encoding="utf-8")
    for needle in ("Claire Dubois", CUSTOMER_ID_LABEL, ORDER_ID_LABEL):
        assert needle not in text
    # the full summary is local: it keeps the CRM-level figures the manifest no longer has
    assert json.loads(text)["customers"]["dropped"]["no_consent"] == 7


def test_cli_prints_withheld_labels_as_a_count(run_cli, keydir, tmp_path, crm):
    customers, purchases = _labelled_world(crm)
    cpath = crm.write(tmp_path / "c.parquet", customers, crm.customer_schema)
    ppath = crm.write(tmp_path / "p.parquet", purchases, crm.purchase_schema)
    r = run_cli(
        "export", "--maison", "aurelle", "--customers", cpath, "--purchases", ppath,
        "--as-of", "2026-09-30", "--keys", keydir / "aurelle", "--out", tmp_path / "out",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "3 label(s) withheld" in r.stdout and "Broches" in r.stdout
    assert "Dubois" not in r.stdout and CUSTOMER_ID_LABEL not in r.stdout


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
def test_non_finite_csv_amount_is_refused_naming_file_and_column(
    export_world_paths, tmp_path, crm, value
):
    c, p = crm.customer, crm.purchase
    cpath = crm.write(tmp_path / "customers.parquet", [c("A"), c("B")], crm.customer_schema)
    rows = [p("A", "o1", date(2026, 1, 5)), p("B", "o2", date(2026, 1, 5))]
    frame = pl.DataFrame(rows, schema=crm.purchase_schema).with_columns(
        pl.col("amount").cast(pl.String)
    )
    frame = frame.with_columns(pl.when(pl.col("customer_id") == "A").then(pl.lit(value))
                               .otherwise(pl.col("amount")).alias("amount"))  # fmt: skip
    ppath = tmp_path / "purchases.csv"
    frame.write_csv(ppath)
    with pytest.raises(InputError) as e:
        export_world_paths(cpath, ppath, AS_OF)
    message = str(e.value)
    assert str(ppath) in message and "column amount has 1 value(s)" in message
    assert "not finite" in message
    assert not (tmp_path / "outbox").exists()


def test_non_finite_parquet_amount_is_refused(export_world, crm, tmp_path):
    c, p = crm.customer, crm.purchase
    purchases = [
        p("A", "o1", date(2026, 1, 5), amount=float("nan")),
        p("A", "o2", date(2026, 1, 6), amount=float("inf")),
        p("A", "o3", date(2026, 1, 7)),
    ]
    with pytest.raises(InputError, match="column amount has 2 value"):
        export_world([c("A")], purchases, AS_OF)
    assert not (tmp_path / "outbox").exists()


def test_amounts_overflowing_once_summed_are_refused(export_world, crm, tmp_path):
    c, p = crm.customer, crm.purchase
    d = date(2026, 1, 5)
    purchases = [p("A", "o1", d, amount=1e308), p("A", "o2", d, amount=1e308)]  # same cell
    with pytest.raises(InputError, match="column amount: 1 activity row"):
        export_world([c("A")], purchases, AS_OF)
    assert not (tmp_path / "outbox").exists()


def test_a_cell_at_the_contract_amount_limit_is_refused(export_world, crm, tmp_path):
    """Two finite lines summing to 1e15 EUR or more in one cell: beyond AMOUNT_LIMIT_EUR."""
    c, p = crm.customer, crm.purchase
    d = date(2026, 1, 5)
    purchases = [p("A", "o1", d, amount=6e14), p("A", "o2", d, amount=6e14), p("A", "o3", d)]
    with pytest.raises(InputError, match=r"1 activity row\(s\) not finite or not below 1e\+15"):
        export_world([c("A")], purchases, AS_OF)
    assert not (tmp_path / "outbox").exists()


def test_category_labels_are_trimmed_and_nfc_normalized(export_world, crm, pipelines):
    from crossgroup.config import load_maison, load_taxonomy

    taxonomy = load_taxonomy(pipelines / "taxonomy.toml")
    base = load_maison(pipelines / "maisons" / "aurelle.toml", taxonomy)
    accented = unicodedata.normalize("NFC", "Bagues Émeraude")
    config = dataclasses.replace(base, categories={**base.categories, accented: "Fine Jewelry"})
    c, p = crm.customer, crm.purchase
    d = date(2026, 1, 5)
    labels = [
        "Bagues ",
        "  Bagues",
        "Bagues\u00a0",
        "\tMontres\n",
        "Boucles  d'oreilles",
        unicodedata.normalize("NFD", accented),
        "   ",  # blank: a missing label
    ]
    purchases = [p("A", f"o{i}", d, category=label) for i, label in enumerate(labels)]
    out = export_world([c("A")], purchases, AS_OF, config=config)
    cats = dict(out.activity.group_by("group_category").agg(pl.col("orders").sum()).iter_rows())
    assert cats == {"Fine Jewelry": 5, "Watches": 1, "Other Watches & Jewelry": 1}
    assert out.result.summary["unmapped_categories"]["labels"] == [
        {"category": "(missing)", "rows": 1}
    ]


def test_map_labels_that_normalize_alike_must_agree(export_world, crm, pipelines):
    from crossgroup.config import load_maison, load_taxonomy

    taxonomy = load_taxonomy(pipelines / "taxonomy.toml")
    base = load_maison(pipelines / "maisons" / "aurelle.toml", taxonomy)
    config = dataclasses.replace(base, categories={**base.categories, "Bagues ": "Watches"})
    c, p = crm.customer, crm.purchase
    with pytest.raises(InputError, match="differ only in spacing"):
        export_world([c("A")], [p("A", "o1", date(2026, 1, 5))], AS_OF, config=config)
