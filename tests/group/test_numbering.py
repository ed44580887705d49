"""Dense numbering by buckets gives the numbers of the unpartitioned window it replaces."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crossgroup.engine import DuckDBEngine
from crossgroup.group.numbering import dense_numbers

WINDOW = "SELECT DISTINCT {keys}, dense_rank() OVER (ORDER BY {keys}) AS number FROM keyed"


def refs(n: int, seed: int) -> pl.DataFrame:
    """Maisons and 16-byte refs with repeats (a record exported twice), in random order."""
    rng = np.random.default_rng(seed)
    pool = [bytes(rng.integers(0, 256, 16, dtype=np.uint8)) for _ in range(n // 2)]
    pool += [b"\x00" * 16, b"\xff" * 16, b"\x0f" + b"\x00" * 15]  # bucket edges
    return pl.DataFrame(
        {
            "maison": rng.choice(["aurelle", "kessler", "vautrin", "aure"], n),
            "maison_ref": [pool[i] for i in rng.integers(0, len(pool), n)],
        },
        schema={"maison": pl.String, "maison_ref": pl.Binary},
    )


def number(engine, frame, keys, buckets) -> tuple[pl.DataFrame, pl.DataFrame]:
    engine.register("keyed", frame)
    expected = engine.to_polars(WINDOW.format(keys=", ".join(keys)))
    got = engine.to_polars(dense_numbers(engine, "numbered", "keyed", keys, keys, buckets))
    assert not engine.table_exists("numbered_offsets")
    engine.drop("numbered")
    engine.unregister("keyed")
    return got.unique().sort(keys), expected.sort(keys).cast(got.schema)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refs_numbered_by_bucket_equal_the_window(seed):
    frame = refs(3000, seed)
    with DuckDBEngine() as engine:
        got, expected = number(
            engine, frame, ["maison", "maison_ref"], ["maison", "substr(hex(maison_ref), 1, 3)"]
        )
    assert got.equals(expected)
    assert sorted(got["number"]) == list(range(1, got.height + 1))


@pytest.mark.parametrize("width", [1, 7, 65536])
def test_integer_labels_numbered_by_bucket_equal_the_window(width):
    labels = pl.DataFrame({"label": np.random.default_rng(4).integers(0, 5000, 4000)})
    with DuckDBEngine() as engine:
        got, expected = number(engine, labels, ["label"], [f"label // {width}"])
    assert got.equals(expected)


def test_a_bucket_that_grows_against_the_key_would_be_caught():
    """The property the buckets must hold, shown failing: a descending bucket misnumbers."""
    labels = pl.DataFrame({"label": np.arange(100)})
    with DuckDBEngine() as engine:
        got, expected = number(engine, labels, ["label"], ["-(label // 10)"])
    assert not got.equals(expected)


def test_no_keys_gives_no_numbers():
    with DuckDBEngine() as engine:
        got, _ = number(engine, pl.DataFrame({"label": []}, schema={"label": pl.Int64}),
                        ["label"], ["label // 8"])  # fmt: skip
    assert got.height == 0
