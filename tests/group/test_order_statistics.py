"""Exact order statistics from a histogram (`group/order_statistics.py`): the value at each
position is the one a full sort gives, whatever the buckets; the engine half on both
engines is in `test_engine_stages.py`."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgroup.engine import DuckDBEngine
from crossgroup.errors import InputError
from crossgroup.group import order_statistics as stats
from crossgroup.group.order_statistics import (
    ValueRange,
    order_statistics,
    range_holding,
    value_ranges,
)


@pytest.fixture(scope="module")
def duck():
    with DuckDBEngine() as engine:
        yield engine


def _column(engine, values) -> str:
    engine.drop("order_values")
    return engine.register("order_values", pl.DataFrame({"v": values}, schema={"v": pl.Float64}))


def _every_position(n: int) -> range:
    return range(n)


def histogram(*buckets: tuple[float, float, int]) -> pl.DataFrame:
    return pl.DataFrame(buckets, schema=["low", "high", "n"], orient="row")


def test_ranges_follow_the_values_and_count_what_lies_before():
    got = value_ranges(histogram((5.0, 6.0, 2), (-1.0, 0.0, 3), (1.0, 1.0, 4)), before=10)
    assert got == [
        ValueRange(-1.0, 0.0, 3, 10),
        ValueRange(1.0, 1.0, 4, 13),
        ValueRange(5.0, 6.0, 2, 17),
    ]


def test_buckets_that_overlap_or_touch_are_one_range():
    """A bucket function rounded the wrong way at an edge gives overlapping buckets: merged,
    the counts stay exact."""
    got = value_ranges(histogram((1.0, 3.0, 2), (2.0, 2.5, 1), (3.0, 4.0, 5), (7.0, 8.0, 1)))
    assert got == [ValueRange(1.0, 4.0, 8, 0), ValueRange(7.0, 8.0, 1, 8)]


def test_a_position_is_in_the_range_that_starts_at_or_before_it():
    """The first position of a range belongs to it, not to the range before (off by one)."""
    ranges = value_ranges(histogram((0.0, 1.0, 3), (2.0, 2.0, 2), (3.0, 9.0, 4)))
    lows = [range_holding(ranges, p).low for p in range(9)]
    assert lows == [0.0] * 3 + [2.0] * 2 + [3.0] * 4
    for outside in (-1, 9):
        with pytest.raises(ValueError):
            range_holding(ranges, outside)


cents = st.integers(-(10**9), 10**11).map(lambda c: c / 100)
few_cents = st.sampled_from([-250.0, 0.0, 0.01, 0.02, 99.99, 100.0, 100.01, 1e9])


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.one_of(cents, few_cents), max_size=60),
    sort_limit=st.sampled_from([1, 3, 100_000]),
)
def test_every_position_is_the_sorted_value(duck, values, sort_limit):
    """Spends in cents (negative, zero, heavy ties), split down to ranges of `sort_limit`."""
    _column(duck, values)
    got = order_statistics(duck, "order_values", "v", _every_position, sort_limit=sort_limit)
    assert got == sorted(values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False), max_size=40))
def test_any_double_is_found_to_the_bit(duck, values):
    """Infinities, subnormals and ranges whose width overflows a double: no split narrows
    those, and they are sorted whole."""
    _column(duck, values)
    got = order_statistics(duck, "order_values", "v", _every_position, sort_limit=1)
    assert got == sorted(values)
    # -0.0 and 0.0 tie: any of them is a right answer, otherwise the bits agree
    assert [np.float64(v).tobytes() for v in got if v] == [
        np.float64(v).tobytes() for v in sorted(values) if v
    ]


def test_a_bucket_function_out_of_order_costs_a_wider_range_not_a_wrong_value(duck, monkeypatch):
    values = np.random.default_rng(8).normal(0, 100, 3_000).round(2)
    monkeypatch.setattr(stats, "log_bucket", lambda column: f"floor({column} * 7) % 5")
    _column(duck, values)
    got = order_statistics(duck, "order_values", "v", _every_position, sort_limit=50)
    assert got == sorted(values.tolist())


class _Picks:
    """An engine that records how many values each ordered pick sorts."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.sorted_values: list[int] = []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def scalar(self, sql, params=None):
        table = sql.split(" FROM ")[1].split()[0]
        between = f"SELECT count(*) FROM {table} WHERE v BETWEEN ? AND ?"
        self.sorted_values.append(self._engine.scalar(between, params))
        return self._engine.scalar(sql, params)


def test_no_pick_sorts_more_than_the_limit_when_most_values_share_a_bucket(duck):
    """90 % of the values within 1 % of each other (one log bucket) and distinct: splits,
    not a sort of the bucket, find the positions."""
    rng = np.random.default_rng(2)
    values = np.concatenate(
        [1_000 + rng.permutation(18_000) / 1_000, rng.lognormal(5, 2, 2_000).round(2)]
    )
    _column(duck, values)
    picks = _Picks(duck)
    positions = [0, 1_000, 9_000, 17_999, 18_000, 19_999]
    got = order_statistics(picks, "order_values", "v", lambda n: positions, sort_limit=200)
    assert got == np.sort(values)[positions].tolist()
    assert picks.sorted_values and max(picks.sorted_values) <= 200


def test_no_values_or_only_nulls_give_no_positions_and_nan_is_refused(duck):
    asked = []
    _column(duck, [None, None])
    assert order_statistics(duck, "order_values", "v", asked.append) == []
    assert asked == []  # positions among 0 values are never asked for
    _column(duck, [1.0, None, 0.5])
    assert order_statistics(duck, "order_values", "v", _every_position) == [0.5, 1.0]
    _column(duck, [1.0, float("nan")])
    with pytest.raises(InputError, match=r"order_values\.v holds NaN"):
        order_statistics(duck, "order_values", "v", _every_position)
