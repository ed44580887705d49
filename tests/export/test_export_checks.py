"""The pre-seal privacy check, called directly on doctored payload frames."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from crossgroup.engine import DuckDBEngine
from crossgroup.errors import PrivacyCheckError
from crossgroup.privacy.export_checks import (
    EXPORT_SCHEMA,
    check_export_files,
    check_export_payload,
    looks_identifying,
)

REF = b"\x01" * 16
IDS = {"customer_id": "SELECT customer_id AS value FROM crm_customers",
       "order_id": "SELECT order_id AS value FROM crm_orders"}  # fmt: skip


def identities(**cols) -> pl.DataFrame:
    base = {"maison_ref": [REF, b"\x02" * 16], "email_token": [b"\x03" * 16, None],
            "phone_token": [None, None]}  # fmt: skip
    base.update(cols)
    return pl.DataFrame(base, schema={c: pl.Binary for c in base})


def activity(**cols) -> pl.DataFrame:
    base = {
        "maison_ref": [REF, REF],
        "month": [date(2026, 8, 1), date(2026, 9, 1)],
        "group_category": ["Champagne", "Fine Jewelry"],
        "channel": ["boutique", "online"],
        "orders": [1, 2],
        "amount_eur": [120.5, -30.0],
    }
    base.update(cols)
    schema = {"maison_ref": pl.Binary, "month": pl.Date, "group_category": pl.String,
              "channel": pl.String, "orders": pl.Int32, "amount_eur": pl.Float64}  # fmt: skip
    return pl.DataFrame(base, schema={c: schema.get(c) for c in base})


def check(ids: pl.DataFrame, act: pl.DataFrame, **extra: pl.DataFrame) -> None:
    with DuckDBEngine() as engine:
        engine.register("crm_customers", pl.DataFrame({"customer_id": ["C-0001", "C0002"]}))
        engine.register("crm_orders", pl.DataFrame({"order_id": ["O-77", "O-78"]}))
        tables = {"identities": "ids", "activity": "act"}
        engine.register("ids", ids)
        engine.register("act", act)
        for name, frame in extra.items():
            engine.register(f"x_{name}", frame)
            tables[name] = f"x_{name}"
        check_export_payload(
            engine,
            tables,
            identifier_sources=IDS,
            allowed_values={"activity.channel": ["boutique", "online", "other"]},
        )


def refused(ids: pl.DataFrame, act: pl.DataFrame, **extra: pl.DataFrame) -> str:
    with pytest.raises(PrivacyCheckError) as info:
        check(ids, act, **extra)
    assert info.value.exit_code == 3
    assert "\n" not in str(info.value)
    return str(info.value)


def test_clean_payload_passes():
    check(identities(), activity())


@pytest.mark.parametrize("value", ["jane.doe@example.org", "x@y", "Name <a@b.fr>"])
def test_email_shaped_value_refused_without_echoing_it(value):
    message = refused(identities(), activity(group_category=["Champagne", value]))
    assert "activity.group_category: 1 value(s) look like an email" in message
    assert value not in message


def test_problems_are_counted_in_rows_not_distinct_values():
    act = activity(
        maison_ref=[b"jane.doe@example", b"jane.doe@example"], group_category=["x@y", "x@y"]
    )
    message = refused(identities(), act)
    assert "activity.group_category: 2 value(s) look like an email" in message
    assert "activity.maison_ref: 2 value(s) read as text, not as a keyed pseudonym" in message


@pytest.mark.parametrize("value", ["+33 6 12 34 56 78", "06.12.34.56.78", "(212) 555-0199"])
def test_phone_shaped_value_refused(value):
    message = refused(identities(), activity(group_category=[value, "Champagne"]))
    assert "look like a phone number" in message
    assert value not in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_amount_refused(value):
    """NaN or infinity would crash the processor's features and segmentation."""
    message = refused(identities(), activity(amount_eur=[120.5, value]))
    assert "activity.amount_eur: 1 value(s) not finite (NaN or infinity)" in message


@pytest.mark.parametrize("value", [1e15, -3.5e20])
def test_amount_beyond_the_contract_limit_refused(value):
    """Amounts at or beyond AMOUNT_LIMIT_EUR: the processor's exact cent sums need a bound."""
    message = refused(identities(), activity(amount_eur=[120.5, value]))
    assert "activity.amount_eur: 1 value(s) not below 1e+15 in magnitude" in message


def test_customer_id_and_order_id_leaks_refused():
    message = refused(identities(), activity(group_category=["C-0001", "Wine"]))
    assert "activity.group_category: 1 value(s) equal an input customer_id" in message
    message = refused(identities(), activity(channel=["boutique", "O-78"]))
    assert "activity.channel: 1 value(s) equal an input order_id" in message


def test_binary_equal_to_raw_customer_id_refused():
    leaked = identities(maison_ref=[b"C-0001\x00" + b"x" * 9, b"\x02" * 16])
    assert len(leaked["maison_ref"][0]) == 16
    # 16 bytes but not a 16-character id: no identifier hit, the check still passes
    check(leaked, activity())
    sixteen = pl.DataFrame({"customer_id": ["0123456789abcdef"]})
    with DuckDBEngine() as engine:
        engine.register("crm_customers", sixteen)
        engine.register("ids", identities(maison_ref=[b"0123456789abcdef", b"\x02" * 16]))
        engine.register("act", activity())
        with pytest.raises(PrivacyCheckError, match=r"identities\.maison_ref: 1 value"):
            check_export_payload(
                engine,
                {"identities": "ids", "activity": "act"},
                identifier_sources={"customer_id": IDS["customer_id"]},
            )


def test_binary_of_wrong_length_refused():
    message = refused(identities(email_token=[b"short", None]), activity())
    assert "identities.email_token: 1 value(s) not exactly 16 bytes" in message


def test_schema_allow_list_is_exact():
    assert "extra_col" in refused(identities(), activity().with_columns(extra_col=pl.lit("x")))
    assert "tables not in the allow-list: customers" in refused(
        identities(), activity(), customers=pl.DataFrame({"customer_id": ["a"]})
    )
    assert "activity.orders: type BIGINT, expected INTEGER" in refused(
        identities(), activity().with_columns(pl.col("orders").cast(pl.Int64))
    )
    renamed = activity().rename({"maison_ref": "customer_ref"})
    assert "differ from the allow-list" in refused(identities(), renamed)


def test_exact_dates_and_foreign_vocabulary_refused():
    message = refused(identities(), activity(month=[date(2026, 8, 14), date(2026, 9, 1)]))
    assert "activity.month: 1 exact date(s) instead of a month" in message
    message = refused(identities(), activity(channel=["boutique", "telephone"]))
    assert "outside the allowed vocabulary" in message


def test_null_maison_ref_refused():
    assert "identities.maison_ref: 1 null" in refused(
        identities(maison_ref=[REF, None]), activity()
    )


@pytest.mark.parametrize(
    "text",
    ["Champagne brut", "Other Watches & Jewelry", "2026-09-01", "2026-09-01 10:15:00",
     "Cognac & Spirits", "Ready-to-Wear", "2026-09", "Vintage 2015, 75 cl"],
)  # fmt: skip
def test_no_false_positive_on_categories_and_dates(text):
    assert not looks_identifying(text)
    check(identities(), activity(group_category=[text, "Wine"]))


def test_files_checked_the_same_way(tmp_path):
    files = {}
    for name, frame in {"identities": identities(), "activity": activity()}.items():
        files[name] = tmp_path / f"{name}.parquet"
        frame.write_parquet(files[name])
    with DuckDBEngine() as engine:
        check_export_files(engine, files)
        activity(group_category=["a@b.com", "Wine"]).write_parquet(files["activity"])
        with pytest.raises(PrivacyCheckError, match="look like an email"):
            check_export_files(engine, files)
    assert set(EXPORT_SCHEMA) == {"identities", "activity"}
