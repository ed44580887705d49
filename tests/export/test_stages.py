"""Pure export stages on their own: window bounds, placeholder guard, typed input views."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from crossgroup.engine import DuckDBEngine
from crossgroup.errors import InputError
from crossgroup.maison.export_identities import guard_placeholders
from crossgroup.maison.export_rules import consent_snapshot, window_start
from crossgroup.maison.inputs import CUSTOMER_COLUMNS, load_customers, typed_view_step


@pytest.mark.parametrize(
    ("as_of", "start"),
    [
        (date(2028, 2, 29), date(2025, 2, 28)),
        (date(2026, 9, 30), date(2023, 9, 30)),
        (date(2027, 2, 28), date(2024, 2, 28)),
        (date(2027, 3, 1), date(2024, 3, 1)),
    ],
)
def test_window_start_is_three_calendar_years_back(as_of, start):
    assert window_start(as_of) == start


def test_consent_snapshot_is_end_of_as_of_day_utc():
    snap = consent_snapshot(date(2026, 9, 30))
    assert snap.tzinfo is UTC
    assert snap < datetime(2026, 10, 1, tzinfo=UTC)
    assert snap > datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC)


def test_placeholder_guard_drops_values_shared_beyond_the_limit():
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
            # 4 customers share one email (limit 3): a placeholder; 3 share a phone: kept
            "email_norm": ["no@x.fr"] * 4 + ["e@x.fr", None, None],
            "phone_norm": [None, None, None, "+33612345678", "+33612345678", "+33612345678", None],
        }
    )
    guarded, counts = guard_placeholders(frame, placeholder_max_customers=3)
    assert counts == {"email_values": 1, "phone_values": 0}
    assert guarded["email_norm"].to_list() == [None] * 4 + ["e@x.fr", None, None]
    assert guarded["phone_norm"].to_list() == frame["phone_norm"].to_list()
    assert guarded["email_norm_placeholder"].to_list() == [True] * 4 + [False] * 3
    # nulls are never a shared value
    assert not guarded["phone_norm_placeholder"].any()
    _, tight = guard_placeholders(frame, placeholder_max_customers=2)
    assert tight == {"email_values": 1, "phone_values": 1}


def test_typed_view_selects_only_contract_columns(tmp_path):
    path = tmp_path / "c.parquet"
    pl.DataFrame(
        {
            "customer_id": ["a"],
            "first_name": ["Camille"],
            "birth_date": [date(1980, 1, 1)],
            "email": ["a@b.fr"],
            "phone": [None],
            "country": ["FR"],
            "cross_group_consent": [True],
            "consent_updated_at": [datetime(2024, 1, 1)],
        }
    ).write_parquet(path)
    step = typed_view_step("customers_in", path, "customers", CUSTOMER_COLUMNS, {"restricted"})
    assert "first_name" not in step.sql and "birth_date" not in step.sql
    assert "restricted" in step.sql  # absent optional column: typed null, nobody restricted


def test_csv_text_is_typed_and_bad_values_counted_not_shown(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(
        "customer_id,email,phone,country,cross_group_consent,consent_updated_at\n"
        "a,a@b.fr,,FR,true,2024-01-01 10:00:00\n"
        "b,b@b.fr,,FR,false,2024-01-02T10:00:00+02:00\n"
        "c,c@b.fr,,FR,yes,secret@leak.example\n"
    )
    with DuckDBEngine() as engine, pytest.raises(InputError) as info:
        load_customers(engine, path)
    message = str(info.value)
    assert "consent_updated_at has 1 value(s) that cannot be parsed" in message
    assert "leak" not in message
    path.write_text(path.read_text().replace("secret@leak.example", ""))
    with DuckDBEngine() as engine:
        engine.execute("tz", "SET TimeZone = 'UTC'")
        assert load_customers(engine, path) == 3
        rows = engine.to_polars("SELECT * FROM customers ORDER BY customer_id")
    assert rows["cross_group_consent"].to_list() == [True, False, True]
    # an offset timestamp is read as UTC wall time
    assert rows["consent_updated_at"][1] == datetime(2024, 1, 2, 8, 0)
    assert rows["restricted"].null_count() == 3
