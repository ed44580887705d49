"""The stages that run where the rows are (`Engine.map_frames`): on either engine they give
exactly what the same Polars functions give on one frame in memory (DESIGN §8).

The Spark half runs under `pytest -m spark`, with pyspark and Java installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_generalize import LABELS, POLICY, SECTOR_COLUMNS, fake_features
from test_segment import planted

from crossgroup.engine import DuckDBEngine
from crossgroup.group.bands import VALUE_TIER_QUANTILES, value_cut_positions
from crossgroup.group.generalize import generalize, generalize_table
from crossgroup.group.order_statistics import order_statistics
from crossgroup.group.segment import SegmentModel, fit_on_sample, segment_table

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


@pytest.fixture(scope="module", params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request, tmp_path_factory):
    if request.param == "duckdb":
        with DuckDBEngine() as duck:
            yield duck
        return
    pytest.importorskip("pyspark")
    pytest.importorskip("sqlglot")
    from crossgroup.engine_spark import SparkEngine

    with SparkEngine(tmp_path_factory.mktemp("work"), master="local[2]") as spark:
        yield spark


def _registered(engine, name: str, frame: pl.DataFrame) -> str:
    engine.drop(name)
    return engine.register(name, frame)


def test_map_frames_gives_each_key_whole_to_one_call(engine):
    rng = np.random.default_rng(3)
    rows = (
        pl.DataFrame({"key": rng.integers(0, 40, 2_000), "value": rng.integers(-50, 50, 2_000)})
        .with_row_index("line")
        .cast({"line": pl.Int64})
    )
    _registered(engine, "map_in", rows)

    def per_key(piece: pl.DataFrame) -> pl.DataFrame:
        # a key split over two calls would give two rows, each with a partial count
        return piece.group_by("key").agg(
            pl.len().cast(pl.Int64).alias("lines"), pl.col("value").sum().alias("total")
        )

    engine.map_frames("map_out", "map_in", per_key, partition_by="key")
    got = engine.to_polars("SELECT * FROM map_out ORDER BY key")
    assert got.equals(per_key(rows).sort("key"))
    engine.map_frames("map_empty", "map_out", lambda f: f.filter(pl.col("lines") < 0))
    empty = engine.to_polars("map_empty")
    assert empty.is_empty() and empty.schema == got.schema
    engine.drop("map_in", "map_out", "map_empty")
    assert not engine.table_exists("map_out")


@pytest.mark.parametrize("offset", [1, 1_000])  # ids 1..n as resolution gives, or any others
def test_segment_table_fits_and_predicts_as_in_memory(engine, offset):
    """The sample the engine sends is the one an in-memory fit draws: same model, same
    segment for every person, whatever the engine."""
    features, _truth = planted(n_per=150)
    features = features.with_columns(pl.col("person_id").cast(pl.Int64) + (offset - 1))
    config = {"min_segments": 3, "max_segments": 5, "sample_size": 400, "random_state": 4}
    expected = SegmentModel(**config).fit(features)
    _registered(engine, "stage_features", features)
    model = SegmentModel(**config)
    fit_on_sample(engine, "stage_features", model)
    table = segment_table(engine, "stage_features", model, name="stage_segments")
    got = engine.to_polars(f"SELECT * FROM {table} ORDER BY person_id")
    assert model.labels_ == expected.labels_ and model.quality_ == expected.quality_
    assert got.get_column("person_id").equals(features.get_column("person_id"))
    assert np.array_equal(got.get_column("segment").to_numpy(), expected.predict(features))
    engine.drop("stage_features", table)


@pytest.mark.parametrize("persons", [6_000, 7])  # many generalized; every person withheld
def test_generalize_table_releases_what_generalize_releases(engine, persons):
    """Counts per combination on the driver, bands and the outcome where the rows are: the
    released persons, their values and the accounting are those of the in-memory path."""
    features, segments = fake_features(persons, seed=5)
    expected = generalize(
        features, segments, policy=POLICY, labels=LABELS, sector_columns=SECTOR_COLUMNS
    )
    _registered(engine, "stage_features", features)
    _registered(
        engine,
        "stage_segments",
        features.select("person_id", pl.Series("segment", segments, dtype=pl.Int32)),
    )
    got = generalize_table(
        engine,
        "stage_features",
        "stage_segments",
        policy=POLICY,
        labels=LABELS,
        sector_columns=SECTOR_COLUMNS,
        name="stage_released",
    )
    assert expected.persons_generalized > 0 or expected.persons_suppressed == persons
    assert got.released is None  # the persons stay in the engine table
    released = engine.to_polars("SELECT * FROM stage_released ORDER BY person_id")
    assert released.equals(expected.released)
    assert got.loss.equals(expected.loss)
    assert got.summary() == expected.summary()
    engine.drop("stage_features", "stage_segments", "stage_released")


def _spends(shape: str) -> np.ndarray:
    """Spends shaped as a batch can make them (in cents; zero without activity, negative
    after returns), or as the edge cases of a selection by buckets are."""
    rng = np.random.default_rng(11)
    if shape == "lognormal":
        return (rng.lognormal(7, 1.5, 5_000) * 100).round() / 100
    if shape == "zero and negative":
        nets = (rng.lognormal(5, 2, 3_000) * 100).round() / 100
        return np.where(rng.random(3_000) < 0.4, 0.0, nets * rng.choice([-1, 1, 1, 1], 3_000))
    if shape == "heavy ties":
        return rng.integers(-2, 4, 3_000).astype(float)
    if shape == "one giant bucket":  # 95 % distinct within 1 %: split, never sorted whole
        return np.concatenate([1_000 + rng.permutation(4_750) / 1_000, rng.random(250) * 1e5])
    if shape == "all equal":
        return np.full(500, 120.5)
    if shape == "cut at a bucket's first value":  # position 40 of 100 is the first 5.0
        return rng.permutation(np.concatenate([np.full(40, 1.0), np.full(60, 5.0)]))
    return rng.lognormal(7, 1.5, int(shape.split()[0])).round(2)  # "0 persons", ...


@pytest.mark.parametrize(
    "shape",
    ["lognormal", "zero and negative", "heavy ties", "one giant bucket", "all equal",
     "cut at a bucket's first value", "0 persons", "1 persons", "2 persons"],
)  # fmt: skip
def test_value_cuts_are_the_nearest_quantiles_on_either_engine(engine, shape):
    """The cuts from a histogram of spend are the values Polars' quantile gives the in-memory
    path, to the bit, with ranges of at most 100 spends sorted to find them."""
    spends = _spends(shape)
    _registered(engine, "stage_spends", pl.DataFrame({"total_spend_eur": spends}))
    got = order_statistics(
        engine, "stage_spends", "total_spend_eur", value_cut_positions, sort_limit=100
    )
    column = pl.Series(spends, dtype=pl.Float64)
    expected = [column.quantile(q, interpolation="nearest") for q in VALUE_TIER_QUANTILES]
    assert got == (expected if len(spends) else [])
    if shape == "cut at a bucket's first value":
        assert got == [5.0, 5.0, 5.0]
        around = order_statistics(engine, "stage_spends", "total_spend_eur", lambda n: [39, 40])
        assert around == [1.0, 5.0]
    engine.drop("stage_spends")


class _Recording:
    """An engine that records every frame the stages bring to the driver."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.fetched: list[pl.DataFrame] = []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._engine.close()

    def to_polars(self, sql_or_table, params=None):
        frame = self._engine.to_polars(sql_or_table, params)
        self.fetched.append(frame)
        return frame


def test_the_driver_gets_persons_only_as_the_fit_sample_and_refs_one_maison_at_a_time(
    tmp_path, monkeypatch
):
    """DESIGN §8: whatever the engine, the stages bring no person-level table to the driver
    beyond the model's fit sample, and no maison's refs together with another's."""
    import dataclasses

    from process_batch import build_batch

    from crossgroup.config import load_group
    from crossgroup.crypto.keys import load_party
    from crossgroup.group import pipeline

    batch = build_batch(tmp_path / "batch", n_persons=500)
    sample = 60
    group = dataclasses.replace(load_group(batch.pipeline), sample_size=sample)
    engines: list[_Recording] = []

    def recording(work, group):
        engines.append(_Recording(DuckDBEngine(work)))
        return engines[-1]

    monkeypatch.setattr(pipeline, "open_engine", recording)
    result = pipeline.process_batch(
        batch.inbox, load_party(batch.keys / "processor"), tmp_path / "out", group=group,
        work_parent=tmp_path,
    )  # fmt: skip
    persons = result.counts["persons"]
    assert persons > 4 * sample
    (engine,) = engines
    with_persons = [f.height for f in engine.fetched if "person_id" in f.columns]
    assert with_persons and max(with_persons) <= sample
    # only the refs of one maison per frame: its return rows, or its own export's refs
    with_refs = [f for f in engine.fetched if "maison_ref" in f.columns]
    nodes = {
        m: set(pl.read_parquet(t["identities"]).get_column("maison_ref"))
        for m, t in batch.tables.items()
    }
    for frame in with_refs:
        refs = set(frame.get_column("maison_ref"))
        assert sum(bool(refs & own) for own in nodes.values()) == 1
    assert len(with_refs) == 2 * len(nodes)  # each maison's return and its export's refs


def test_a_failing_frame_function_names_the_step_and_never_the_value(engine):
    """A library's error can quote the row it failed on: the engine error keeps its type
    only; the product's own InputError (which names no value) keeps its message."""
    from crossgroup.errors import InputError

    _registered(engine, "fail_in", pl.DataFrame({"v": ["secret-ref-5150"]}))

    def quoting(frame: pl.DataFrame) -> pl.DataFrame:
        raise ValueError(f"bad value {frame.get_column('v')[0]}")

    def ours(frame: pl.DataFrame) -> pl.DataFrame:
        raise InputError("activity holds values outside the taxonomy (1 person(s))")

    with pytest.raises(InputError) as failed:
        engine.map_frames("fail_out", "fail_in", quoting, schema={"v": pl.String})
    assert "fail_out" in str(failed.value) and "ValueError" in str(failed.value)
    assert "secret" not in str(failed.value) and "5150" not in str(failed.value)
    with pytest.raises(InputError, match=r"outside the taxonomy \(1 person\(s\)\)"):
        engine.map_frames("fail_out", "fail_in", ours, schema={"v": pl.String})
    engine.drop("fail_in")
