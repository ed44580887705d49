"""Exact order statistics of an engine column without sorting the column in one place.

`ORDER BY v LIMIT 1 OFFSET p` is exact but, on Spark, sends the p + 1 smallest values (up to
90 % of the persons for the top value-tier cut) through one task. Here a histogram finds
where each position lies instead: the values are counted per bucket where the rows are, only
the buckets (a few thousand rows: count, lowest and highest value) come to the driver, and
the value is then read among the few rows of the one bucket that holds it. The answer is the
value `ORDER BY` would give, to the bit, on either engine.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from crossgroup.engine import Engine
from crossgroup.errors import InputError

# Buckets per unit of ln(1 + |v|): each bucket spans about 3 % of its values, so spends from
# one cent to 1e15 EUR (contracts.AMOUNT_LIMIT_EUR) take at most 2 x 1,106 buckets.
LOG_BUCKETS_PER_E = 32
# Linear buckets a range is split into when it holds more than `sort_limit` values.
LINEAR_BUCKETS = 2048
# The most values one task sorts to read a position (what `ORDER BY ... OFFSET` costs then).
SORT_LIMIT = 100_000
# Splits of one range before its values are sorted whatever their number. Each split narrows
# a range 2048-fold: three take a log bucket of spends below 2.7e9 EUR to a single cent, four
# take any bucket to a few adjacent doubles, so only ties among those are left to sort.
MAX_SPLITS = 4


@dataclass(frozen=True)
class ValueRange:
    """`count` values, all in [low, high], with `before` values of the column below low."""

    low: float
    high: float
    count: int
    before: int


def log_bucket(column: str) -> str:
    """A bucket of `column` on a log scale, signed, without a logarithm of 0 or less:
    monotone in the value up to the logarithm's rounding, which `value_ranges` tolerates."""
    return (
        f"floor(CASE WHEN {column} < 0 THEN -ln(1 - {column}) ELSE ln(1 + {column}) END"
        f" * {LOG_BUCKETS_PER_E})"
    )


def histogram_sql(table: str, column: str, bucket: str, *, within: bool = False) -> str:
    """Count, lowest and highest non-null value of `column` per `bucket` (an SQL expression
    of the column); with `within`, over the values between two parameters only."""
    where = f"{column} BETWEEN ? AND ?" if within else f"{column} IS NOT NULL"
    return (
        f"SELECT {bucket} AS bucket, count(*) AS n, min({column}) AS low, max({column}) AS high "
        f"FROM {table} WHERE {where} GROUP BY bucket"
    )


def split_sql(table: str, column: str) -> str:
    """`histogram_sql` over one range in `LINEAR_BUCKETS` equal buckets; parameters: low,
    the buckets per unit of value, low, high."""
    bucket = f"floor(({column} - ?) * ?)"
    return histogram_sql(table, column, bucket, within=True)


def pick_sql(table: str, column: str, offset: int) -> str:
    """The value at `offset` among the values between two parameters, in ascending order."""
    return (
        f"SELECT {column} FROM {table} WHERE {column} BETWEEN ? AND ? "
        f"ORDER BY {column} LIMIT 1 OFFSET {int(offset)}"
    )


def value_ranges(histogram: pl.DataFrame, before: int = 0) -> list[ValueRange]:
    """Disjoint ranges of values in ascending order, from a histogram's buckets (`n`, `low`,
    `high`) whose values all lie above `before` others.

    Buckets whose ranges overlap are merged: a bucket function that is not exactly monotone
    (a logarithm rounded the other way at a bucket's edge) costs a wider range, never a
    wrong count. Every value of a merged range is in one of its buckets, so the values
    between its low and high are exactly its `count`.
    """
    ranges: list[ValueRange] = []
    for low, high, count in histogram.sort("low").select("low", "high", "n").iter_rows():
        if ranges and low <= ranges[-1].high:
            last = ranges[-1]
            ranges[-1] = ValueRange(last.low, max(last.high, high), last.count + count, last.before)
        else:
            start = ranges[-1].before + ranges[-1].count if ranges else before
            ranges.append(ValueRange(low, high, count, start))
    return ranges


def range_holding(ranges: Sequence[ValueRange], position: int) -> ValueRange:
    """The range whose values hold `position` (0-based, in ascending order of the column)."""
    index = bisect.bisect_right([r.before for r in ranges], position) - 1
    found = ranges[index] if index >= 0 else None
    if found is None or not found.before <= position < found.before + found.count:
        raise ValueError(f"position {position} is outside the ranges")
    return found


def order_statistics(
    engine: Engine,
    table: str,
    column: str,
    positions: Callable[[int], Sequence[int]],
    *,
    sort_limit: int = SORT_LIMIT,
) -> list[float]:
    """The values of `column` at `positions(n)` (0-based, ascending) among its n non-null
    values, exactly as `ORDER BY column LIMIT 1 OFFSET position` gives them; [] when n is 0.

    One pass counts the values per log-scale bucket; a position whose bucket holds one
    distinct value is answered from the histogram; one in a bucket of at most `sort_limit`
    values is read by sorting that bucket's values only. A larger bucket (most values within
    3 % of each other) is split into linear buckets, one more pass over the column each, up
    to `MAX_SPLITS` times. Only a range that splitting cannot narrow (ties among a few
    adjacent doubles, an infinite end: never spends in cents) is then sorted whole in one
    task, which is what `ORDER BY` costs for the whole column.
    """
    histogram = engine.to_polars(histogram_sql(table, column, log_bucket(column)))
    ranges = value_ranges(histogram)
    if any(math.isnan(r.low) or math.isnan(r.high) for r in ranges):
        raise InputError(f"{table}.{column} holds NaN, which has no place in an order")
    n = ranges[-1].before + ranges[-1].count if ranges else 0
    splits: dict[ValueRange, list[ValueRange]] = {}  # positions in one range share its passes
    values = []
    for position in positions(n) if n else ():
        found = range_holding(ranges, position)
        for _ in range(MAX_SPLITS):
            if found.low == found.high or found.count <= sort_limit:
                break
            if found not in splits:
                scale = LINEAR_BUCKETS / (found.high - found.low)
                params = [found.low, scale, found.low, found.high]
                splits[found] = value_ranges(
                    engine.to_polars(split_sql(table, column), params), found.before
                )
            if len(splits[found]) == 1:  # no narrower: an infinite end, or an overflowing width
                break
            found = range_holding(splits[found], position)
        if found.low == found.high:
            values.append(found.low)
        else:
            sql = pick_sql(table, column, position - found.before)
            values.append(engine.scalar(sql, [found.low, found.high]))
    return values
