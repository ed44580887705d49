"""Export rules on crafted CRM extracts whose answer is known by hand; packages are opened
with the processor's keys, so every assertion is about what actually leaves the maison."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from crossgroup.privacy.export_checks import EXPORT_SCHEMA, looks_identifying

AS_OF = date(2026, 9, 30)


def test_consent_restriction_and_consent_after_as_of(export_world, crm, ref):
    c, p = crm.customer, crm.purchase
    customers = [
        c("A"),
        c("B", cross_group_consent=False),
        c("N", cross_group_consent=None),
        c("R", restricted=True),
        c("L", consent_updated_at=datetime(2026, 10, 1, 0, 0)),  # the day after as-of
        c("E", consent_updated_at=datetime(2026, 9, 30, 23, 59, 59)),  # last second: counts
        c("U", consent_updated_at=None),
        c("Q", restricted=None),  # no restriction recorded
        c("S"),  # consents, but no purchase in the window
    ]
    purchases = [p(cid, f"O-{cid}", date(2026, 5, 2)) for cid in "ABNRLEUQ"]
    purchases.append(p("S", "O-S", date(2023, 9, 30)))
    out = export_world(customers, purchases, AS_OF)
    summary = out.result.summary["customers"]
    assert summary == {
        "read": 9,
        "eligible": 4,
        "exported": 3,
        "dropped": {
            "no_consent": 2,
            "restricted": 1,
            "consent_time_unknown": 1,
            "consent_after_as_of": 1,
            "no_purchase_in_window": 1,
        },
    }
    assert set(out.identities["maison_ref"]) == ref("A", "E", "Q")
    assert set(out.activity["maison_ref"]) == ref("A", "E", "Q")
    assert out.result.summary["purchases"]["in_window_not_eligible"] == 5


def test_window_boundaries_on_a_leap_day(export_world, crm, ref):
    c, p = crm.customer, crm.purchase
    as_of = date(2028, 2, 29)
    purchases = [
        p("A", "o1", datetime(2025, 2, 28, 23, 59, 59)),  # window starts after 2025-02-28
        p("A", "o2", datetime(2025, 3, 1, 0, 0)),  # first instant inside
        p("A", "o3", datetime(2028, 2, 29, 23, 59, 59)),  # last instant inside
        p("A", "o4", datetime(2028, 3, 1, 0, 0)),  # future-dated: dropped, counted
        p("A", "o5", date(2024, 2, 29)),  # an earlier leap day: before the window
    ]
    out = export_world([c("A", consent_updated_at=datetime(2025, 1, 1))], purchases, as_of)
    months = sorted(out.activity["month"].to_list())
    assert months == [date(2025, 3, 1), date(2028, 2, 1)]
    assert out.activity["orders"].sum() == 2
    assert out.result.summary["purchases"] == {
        "read": 5,
        "in_window": 2,
        "before_window": 2,
        "future_dated": 1,
        "in_window_not_eligible": 0,
        "unknown_customer": 0,
        "exported": 2,
    }
    assert out.result.summary["window"] == {"after": "2025-02-28", "through": "2028-02-29"}


def test_exact_three_year_boundary(export_world, crm):
    c, p = crm.customer, crm.purchase
    purchases = [p("A", "o1", date(2023, 9, 30)), p("A", "o2", date(2023, 10, 1))]
    out = export_world([c("A")], purchases, AS_OF)
    assert out.activity["month"].to_list() == [date(2023, 10, 1)]
    assert out.result.summary["purchases"]["before_window"] == 1


def test_unmapped_categories_go_to_the_sector_catch_all(export_world, crm):
    """Unmapped rows are counted; a label is named only when more than
    placeholder_max_customers (3) exported customers carry it, the rest counted as withheld."""
    c, p = crm.customer, crm.purchase
    purchases = [
        p("A", "o1", date(2026, 1, 5), category="Bagues"),
        *(p(cid, f"b{cid}", date(2026, 1, 6), category="Broches") for cid in "ABCD"),
        p("A", "o4", date(2026, 1, 8), category="Entretien"),  # one customer only: withheld
        p("A", "o5", date(2026, 1, 9), category=None),
    ]
    out = export_world([c(cid) for cid in "ABCD"], purchases, AS_OF)
    cats = dict(out.activity.group_by("group_category").agg(pl.col("orders").sum()).iter_rows())
    assert cats == {"Fine Jewelry": 1, "Other Watches & Jewelry": 6}
    assert out.result.summary["unmapped_categories"] == {
        "rows": 6,
        "labels": [
            {"category": "Broches", "rows": 4},
            {"category": "(missing)", "rows": 1},
        ],
        "withheld": {"labels": 1, "rows": 1},
    }


def test_an_unmapped_label_counts_its_exported_customers_once(export_world, crm):
    """Two spellings of one label are one label: the same 3 exported customers (not 6) carry
    it, so it is withheld; rows of a customer without consent are not counted at all."""
    c, p = crm.customer, crm.purchase
    d = date(2026, 1, 6)
    purchases = [
        *(p(cid, f"a{cid}", d, category="Broches") for cid in "ABC"),
        *(p(cid, f"b{cid}", d, category="Broches ") for cid in "ABC"),
        p("E", "e1", d, category="Broches"),
    ]
    customers = [*(c(cid) for cid in "ABC"), c("E", cross_group_consent=False)]
    out = export_world(customers, purchases, AS_OF)
    assert out.result.summary["unmapped_categories"] == {
        "rows": 6,
        "labels": [],
        "withheld": {"labels": 1, "rows": 6},
    }
    assert out.result.summary["purchases"]["exported"] == 6


def test_fx_orders_and_net_amounts(export_world, crm):
    c, p = crm.customer, crm.purchase
    d = date(2026, 3, 10)
    purchases = [
        p("A", "o1", d, amount=1000.0, currency="USD"),  # 920.00
        p("A", "o1", d, amount=250.0, currency="EUR"),  # same order, second line
        p("A", "o2", d, amount=100_000.0, currency="JPY"),  # 620.00
        p("A", "o3", d, amount=-250.0, currency="EUR"),  # a refund
        p("A", "o4", d, amount=33.333, currency="GBP", channel="online"),  # 38.99961
    ]
    out = export_world([c("A")], purchases, AS_OF)
    rows = {r["channel"]: r for r in out.activity.iter_rows(named=True)}
    assert rows["boutique"]["orders"] == 3
    assert rows["boutique"]["amount_eur"] == pytest.approx(1540.00, abs=1e-9)
    assert rows["online"]["amount_eur"] == pytest.approx(39.00, abs=1e-9)
    assert out.result.summary["amount_eur_total"] == pytest.approx(1579.00, abs=1e-9)
    assert out.activity.schema["orders"] == pl.Int32


def test_a_cell_sums_exactly_whatever_order_the_lines_are_added_in(export_world, crm):
    """Floating-point sums depend on the order DuckDB's threads add lines in, so the same
    extract could export 0.01 or 0.02 here from one run to the next; a fixed-point sum gives
    one answer, and an exact half cent rounds away from zero."""
    c, p = crm.customer, crm.purchase
    d = date(2026, 3, 10)
    purchases = [
        p("A", "o1", d, amount=1e11, currency="EUR"),
        p("A", "o2", d, amount=0.015, currency="EUR"),
        p("A", "o3", d, amount=-1e11, currency="EUR"),
        p("A", "o4", d, amount=0.005, currency="EUR", channel="online"),
        p("A", "o5", d, amount=0.01, currency="EUR", channel="online"),
    ]
    out = export_world([c("A")], purchases, AS_OF)
    rows = {r["channel"]: r["amount_eur"] for r in out.activity.iter_rows(named=True)}
    assert rows == {"boutique": 0.02, "online": 0.02}


def test_placeholder_identifiers_get_no_token(export_world, crm):
    c, p = crm.customer, crm.purchase
    shared_email = [
        "noemail@aurelle.example",
        " NoEmail@Aurelle.example",
        "noemail@aurelle.example",
        "NOEMAIL@aurelle.example ",
    ]
    customers = [c(f"P{i}", email=e) for i, e in enumerate(shared_email)]
    customers += [  # three share a phone: at the limit, still tokens
        c(f"F{i}", email=None, phone=ph, country="FR")
        for i, ph in enumerate(["06 12 34 56 78", "+33 6 12 34 56 78", "0612345678"])
    ]
    customers.append(c("X", phone="not a phone"))
    purchases = [p(r["customer_id"], f"o{i}", date(2026, 2, 1)) for i, r in enumerate(customers)]
    out = export_world(customers, purchases, AS_OF)
    ids = out.identities
    assert ids.height == 8
    assert ids["email_token"].null_count() == 7  # 4 placeholders + 3 without email
    phones = ids["phone_token"].drop_nulls()
    assert phones.len() == 3 and phones.n_unique() == 1
    summary = out.result.summary
    assert summary["placeholders"]["email_values"] == 1
    assert summary["placeholders"]["phone_values"] == 0
    assert summary["placeholders"]["customers_affected"] == 4
    assert summary["phones_unparseable"] == 1


def test_placeholder_counted_over_the_whole_file(export_world, crm):
    """Only one of four sharers consents: the shared value still gets no token."""
    c, p = crm.customer, crm.purchase
    customers = [c("A", email="shop@aurelle.example")]
    customers += [
        c(f"B{i}", email="shop@aurelle.example", cross_group_consent=False) for i in range(3)
    ]
    out = export_world(customers, [p("A", "o1", date(2026, 2, 1))], AS_OF)
    assert out.identities["email_token"].to_list() == [None]
    assert out.result.summary["placeholders"]["customers_affected"] == 1


def test_package_holds_only_the_allow_list(export_world, crm, keydir):
    c, p = crm.customer, crm.purchase
    customers = [c("C-1", phone="+33 6 11 22 33 44"), c("C-2", email="Jane.Doe@Example.org")]
    purchases = [p("C-1", "ORD-1", date(2026, 4, 1)), p("C-2", "ORD-2", date(2026, 5, 1))]
    out = export_world(customers, purchases, AS_OF, batch_id="2026-q3")
    tables = {"identities": out.identities, "activity": out.activity}
    for name, frame in tables.items():
        assert frame.columns == list(EXPORT_SCHEMA[name])
        for column in frame.columns:
            if frame.schema[column] == pl.String:
                assert not any(looks_identifying(v) for v in frame[column].drop_nulls())
            if frame.schema[column] == pl.Binary:
                assert set(frame[column].drop_nulls().bin.size()) <= {16}
        raw = {str(v) for col in frame.iter_columns() for v in col.to_list()}
        assert not raw & {"C-1", "C-2", "ORD-1", "ORD-2", "jane.doe@example.org"}
    m = out.manifest
    assert m.sender == "aurelle" and m.batch_id == "2026-q3"
    assert str(m.as_of) == "2026-09-30"
    assert m.summary["customers"]["exported"] == 2
    summary_file = out.result.package_path.with_name(out.result.package_path.name + ".summary.json")
    assert summary_file.is_file()


def test_failure_while_sealing_leaves_out_dir_empty(export_world, crm, monkeypatch, tmp_path):
    import crossgroup.maison.export as export
    from crossgroup.errors import SecurityError

    def broken_seal(out_dir, **kw):
        (out_dir / "export-partial.cgpkg").write_bytes(b"half a package")
        raise SecurityError("sealing failed")

    monkeypatch.setattr(export, "seal_package", broken_seal)
    c, p = crm.customer, crm.purchase
    with pytest.raises(SecurityError):
        export_world([c("A")], [p("A", "o1", date(2026, 1, 5))], AS_OF)
    out = tmp_path / "outbox"
    assert not out.exists() or not any(out.iterdir())


def test_nothing_to_export_is_refused_before_any_output(export_world, crm, tmp_path):
    from crossgroup.errors import InputError

    c, p = crm.customer, crm.purchase
    with pytest.raises(InputError, match="nothing to export"):
        export_world([c("A", restricted=True)], [p("A", "o1", date(2026, 1, 5))], AS_OF)
    assert not (tmp_path / "outbox").exists()


def test_placeholder_phone_found_across_formats_and_non_exported(export_world, crm, ref):
    """A boutique phone in four spellings, three on non-consenting customers: no token."""
    c, p = crm.customer, crm.purchase
    spellings = ["01 42 60 00 00", "+33 1 42 60 00 00", "0033142600000", "+33 (0)1.42.60.00.00"]
    customers = [c("A", email=None, phone=spellings[0])]
    customers += [
        c(f"B{i}", phone=s, cross_group_consent=False) for i, s in enumerate(spellings[1:])
    ]
    customers.append(c("D", email=None, phone="+33 1 42 60 00 01"))  # one digit apart: kept
    purchases = [p("A", "o1", date(2026, 2, 1)), p("D", "o2", date(2026, 2, 1))]
    out = export_world(customers, purchases, AS_OF)
    tokens = dict(zip(out.identities["maison_ref"], out.identities["phone_token"], strict=True))
    assert tokens[ref("A").pop()] is None
    assert tokens[ref("D").pop()] is not None
    assert out.result.summary["placeholders"]["phone_values"] == 1
    assert out.result.summary["placeholders"]["customers_affected_in_file"] == 4


@pytest.mark.parametrize("as_of", [date(1, 1, 1), date(3, 12, 31)])
def test_an_as_of_whose_window_starts_before_year_1_is_input_error(as_of):
    from crossgroup.errors import InputError
    from crossgroup.maison.export_rules import window_start

    with pytest.raises(InputError, match="window starts before year 1"):
        window_start(as_of)
    assert window_start(date(4, 2, 29)) == date(1, 2, 28)
