"""Dense numbers for distinct keys, in key order, without one task seeing every key.

`dense_rank() OVER (ORDER BY key)` has no partition: every row is sorted in one place (one
thread in DuckDB, one task on one Spark executor, whatever the cluster). Here each key also
gets a bucket, a coarse prefix of the key that never decreases as the key grows. Buckets are
counted (a table of a few thousand rows), each bucket's offset is the count of the buckets
before it, and keys are numbered within their own bucket, all buckets at once. The numbers
are the same as the unpartitioned window's, on every engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from crossgroup.engine import Engine, Step


def dense_number_steps(
    name: str,
    source: str,
    columns: Sequence[str],
    keys: Sequence[str],
    buckets: Sequence[str],
    *,
    number: str = "number",
    start: int = 1,
) -> list[Step]:
    """Steps making `name(<columns>, <number>)`: every row of `source`, numbered by the dense
    rank of its key from `start` up, in ascending key order (equal keys, equal numbers).
    Keys are never null (the callers' are contract columns).

    `buckets` are SQL expressions over the keys, ordered as the keys are: a smaller key never
    has a larger bucket (a leading key column itself, a prefix of one, an integer key
    divided by a width).
    """
    bucket_columns = [f"bucket_{i}" for i in range(len(buckets))]
    bucket_list = ", ".join(bucket_columns)
    named = ", ".join(f"{b} AS {c}" for b, c in zip(buckets, bucket_columns, strict=True))
    bucketed = f"(SELECT *, {named} FROM {source})"
    offsets = Step(
        f"{name}_offsets",
        f"""
        SELECT {bucket_list},
               coalesce(sum(keys) OVER (ORDER BY {bucket_list}
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                   AS before
        FROM (SELECT {bucket_list}, count(*) AS keys
              FROM (SELECT DISTINCT {", ".join(keys)}, {bucket_list} FROM {bucketed})
              GROUP BY {bucket_list})
        """,
    )
    numbered = Step(
        name,
        f"""
        SELECT {", ".join(columns)},
               (before + {int(start) - 1} + dense_rank() OVER (PARTITION BY {bucket_list}
                                            ORDER BY {", ".join(keys)}))::BIGINT AS {number}
        FROM {bucketed} JOIN {offsets.name} USING ({bucket_list})
        """,
    )
    return [offsets, numbered]


def dense_numbers(
    engine: Engine,
    name: str,
    source: str,
    columns: Sequence[str],
    keys: Sequence[str],
    buckets: Sequence[str],
    *,
    number: str = "number",
    start: int = 1,
) -> str:
    """Run `dense_number_steps`, keeping `name` only."""
    offsets, numbered = dense_number_steps(
        name, source, columns, keys, buckets, number=number, start=start
    )
    engine.run_all([offsets, numbered])
    engine.drop(offsets.name)
    return name
