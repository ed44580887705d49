"""The Spark adapter against the DuckDB one: the same SQL steps give the same tables (issue 14).

Run with `pytest -m spark` where pyspark and Java are installed (`pip install
'crossgroup[spark]'`); one local Spark session serves the module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from identity_rows import identities

from crossgroup.engine import DuckDBEngine, EngineError, Step
from crossgroup.group.resolve import match_figures, resolve_persons

pytestmark = [
    pytest.mark.spark,
    # frames cross as Arrow, never through pandas, whose version PySpark warns about
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]
pytest.importorskip("pyspark")
pytest.importorskip("sqlglot")

from crossgroup.engine_spark import SparkEngine  # noqa: E402


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    with SparkEngine(work, master="local[2]") as engine:
        yield engine
    assert list(work.iterdir()) == []  # Spark's scratch and checkpoints go with the engine


def test_a_failing_step_is_an_engine_error_naming_the_step(spark):
    frame = pl.DataFrame({"k": [1]})
    with DuckDBEngine() as duck:
        for engine in (duck, spark):
            engine.register("failing_in", frame)
            with pytest.raises(EngineError, match="step 'no_such_column' failed in"):
                engine.run(Step("no_such_column", "SELECT missing FROM failing_in"))
            engine.unregister("failing_in")


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.schema == b.schema and a.sort(a.columns).equals(b.sort(b.columns))


def _random_rows(seed: int, n: int = 600) -> list[tuple[str, str, str | None, str | None]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        maison = ["aurelle", "kessler", "vautrin"][i % 3]
        email = f"e{rng.integers(0, n // 2)}" if rng.random() < 0.7 else None
        phone = f"p{rng.integers(0, n // 2)}" if rng.random() < 0.5 else None
        rows.append((maison, f"r{i}", email, phone))
    # a placeholder phone in one maison and a chain that gathers too many records of one
    rows += [("vautrin", f"shop{i}", None, "shop") for i in range(5)]
    rows += [("aurelle", f"c{i}", f"c{i}", f"c{i + 1}") for i in range(6)]
    return rows


def test_steps_frames_and_parquet_round_trip_alike(spark, tmp_path):
    frame = pl.DataFrame(
        {"k": [3, 1, 2, 2], "v": [b"\x00\xff", b"a", None, b"b"], "s": ["x", "y", "z", None]},
        schema={"k": pl.Int64, "v": pl.Binary, "s": pl.String},
    )
    step = Step(
        "parity_step",
        "SELECT k, count(*)::BIGINT AS n, min(v) AS v, count(*) FILTER (WHERE s IS NULL) "
        "AS no_s, dense_rank() OVER (ORDER BY k) AS r FROM parity_in GROUP BY k",
    )
    results = []
    with DuckDBEngine() as duck:
        for engine, out in ((duck, tmp_path / "duck.parquet"), (spark, tmp_path / "spark.parquet")):
            engine.register("parity_in", frame)
            engine.run(step)
            assert engine.table_exists("parity_step") and engine.count("parity_step") == 3
            assert engine.scalar("SELECT max(n) FROM parity_step") == 2
            engine.copy_to_parquet("parity_step", out)
            engine.view_parquet("parity_back", out)
            results.append((engine.to_polars("parity_step"), engine.to_polars("parity_back")))
            engine.drop("parity_step")
            engine.unregister("parity_in")
            assert not engine.table_exists("parity_step")
    (duck_step, duck_back), (spark_step, spark_back) = results
    assert _same(duck_step, spark_step.cast(duck_step.schema))
    assert _same(duck_back, spark_back.cast(duck_back.schema))


@pytest.mark.parametrize("seed", [7, 11])
def test_resolution_gives_the_same_persons_and_figures_on_both_engines(spark, seed):
    """Connected components in SQL: person ids (dense, by smallest record), the placeholder
    guard, the split of an over-gathered component and every match figure agree."""
    frame = identities(_random_rows(seed))
    outcomes = []
    with DuckDBEngine() as duck:
        for engine in (duck, spark):
            engine.register("identities", frame)
            table = resolve_persons(engine, "identities", max_records_per_token=3)
            persons = engine.to_polars(table).select(
                "maison", "maison_ref", pl.col("person_id").cast(pl.Int64)
            )
            outcomes.append((persons, match_figures(engine, table, k_aggregate=5)))
            engine.drop(table)
            engine.unregister("identities")
    (duck_persons, duck_figures), (spark_persons, spark_figures) = outcomes
    assert _same(duck_persons, spark_persons)
    assert duck_figures == spark_figures
    assert duck_figures["ignored_tokens"] >= 1 and duck_figures["split_components"] >= 1


def test_bucketed_numbers_on_spark_equal_the_window_in_duckdb(spark):
    """Spark's HEX, SUBSTRING and DIV bucket as DuckDB's do: the same dense numbers."""
    from test_numbering import number, refs

    frame = refs(2000, 9)
    keys, buckets = ["maison", "maison_ref"], ["maison", "substr(hex(maison_ref), 1, 3)"]
    with DuckDBEngine() as duck:
        _, expected = number(duck, frame, keys, buckets)
    got, _ = number(spark, frame, keys, buckets)
    assert got.equals(expected)


def test_a_long_chain_is_one_component_on_spark_in_logarithmic_rounds(spark):
    """Each round is planned from its real size: with estimates carried over, Spark's grew
    with every round until the driver ran out of memory on a chain of 100 records."""
    from test_resolve import chain_edges, components_of_edges

    got = components_of_edges(spark, chain_edges(200, "ascending"), 200, max_rounds=16)
    assert got["label"].unique().to_list() == [0] and got.height == 200
    size = spark._spark.table("components")._jdf.queryExecution().optimizedPlan().stats()
    assert int(size.sizeInBytes()) < 10**6  # files of a few KB, not an estimate
    spark.drop("edges", "nodes", "components")


def test_person_features_are_the_same_on_both_engines(spark):
    """The SQL sums (integer cents, distinct months, channel and season nets, category nets)
    and the Polars shares over them agree to the last bit."""
    from datetime import date
    from pathlib import Path

    from crossgroup.config import load_taxonomy
    from crossgroup.group.features import person_features

    taxonomy = load_taxonomy(Path(__file__).resolve().parents[2] / "pipelines" / "taxonomy.toml")
    categories = ["Fine Jewelry", "Watches", "Fragrance", "Skincare", "Wine"]
    refs = [identities([("aurelle", f"a{i}", None, None)])["maison_ref"][0] for i in range(7)]
    nodes = pl.DataFrame(
        {"maison": ["aurelle"] * 7, "maison_ref": refs, "person_id": [i // 2 + 1 for i in range(7)]}
    )
    acts = pl.DataFrame(
        {
            "maison_ref": [refs[i % 7] for i in range(300)],
            "month": [date(2024 + i % 3, 1 + i % 12, 1) for i in range(300)],
            "group_category": [categories[i % 5] for i in range(300)],
            "channel": [("online", "boutique", "other")[i % 3] for i in range(300)],
            "orders": pl.Series([1 + i % 2 for i in range(300)], dtype=pl.Int32),
            "amount_eur": [round((i * 37.17) % 500 - 100, 2) for i in range(300)],
            "maison": ["aurelle"] * 300,
        }
    )
    features = []
    with DuckDBEngine() as duck:
        for engine in (duck, spark):
            engine.register("nodes", nodes)
            engine.register("acts", acts)
            features.append(
                person_features(engine, "nodes", "acts", as_of=date(2026, 6, 30), taxonomy=taxonomy)
            )
            engine.unregister("nodes")
            engine.unregister("acts")
    assert features[0].height == 4 and features[0].equals(features[1])


def test_a_batch_returns_the_same_tables_on_both_engines(spark, tmp_path):
    """`crossgroup process --engine spark` against the default: every maison's decrypted
    return (segments, aggregates, glossary), the group reports and the audit counts agree."""
    import dataclasses
    import json
    import shutil

    from process_batch import build_batch, open_returns

    from crossgroup.config import load_group
    from crossgroup.crypto.keys import load_party
    from crossgroup.group.pipeline import process_batch

    batch = build_batch(tmp_path / "batch")
    pristine = tmp_path / "pristine"
    shutil.copytree(batch.keys / "processor", pristine / "processor")
    shutil.copytree(batch.inbox, pristine / "inbox")
    group = load_group(batch.pipeline)
    outcomes = []
    for engine in ("duckdb", "spark"):
        keys, inbox = tmp_path / engine / "processor", tmp_path / engine / "inbox"
        shutil.copytree(pristine / "processor", keys)
        shutil.copytree(pristine / "inbox", inbox)
        out = tmp_path / engine / "out"
        process_batch(
            inbox, load_party(keys), out, group=dataclasses.replace(group, engine=engine),
            work_parent=tmp_path / engine,
        )  # fmt: skip
        entry = json.loads((out / "audit.jsonl").read_text().splitlines()[-1])
        reports = {p.name: pl.read_parquet(p) for p in (out / "reports").glob("*.parquet")}
        returns = open_returns(batch, out, tmp_path / engine)
        outcomes.append((returns, reports, entry["counts"], entry["settings"]["engine"]))
    (duck, duck_reports, duck_counts, e1), (spark_, spark_reports, spark_counts, e2) = outcomes
    assert (e1, e2) == ("duckdb", "spark")
    assert duck_counts == spark_counts and duck_counts["persons"] > 0
    assert duck_reports.keys() == spark_reports.keys()
    for name, frame in duck_reports.items():
        assert frame.equals(spark_reports[name]), name
    for maison, tables in duck.items():
        for name, frame in tables.items():
            assert frame.equals(spark_[maison][name]), (maison, name)
    # the private working folders are gone, whatever the engine left in them
    assert not list((tmp_path / "spark").glob("crossgroup-process-*"))


def test_dp_mode_counts_the_same_persons_on_both_engines(spark, tmp_path, monkeypatch):
    """DP mode on Spark (DESIGN §5.10, §5.11): the exact counts the noise is added to (each
    person's own bands, from the engine) are the same on both engines, and so are the keys,
    the margin, the exact own cells and the spend; only the noise itself differs, drawn anew."""
    import dataclasses
    import json
    import shutil

    from process_batch import build_batch, open_returns

    from crossgroup.config import load_group
    from crossgroup.crypto.keys import load_party
    from crossgroup.group import release
    from crossgroup.group.pipeline import process_batch

    seen = []
    real = release.noisy_group_cells

    def observed(counted, *args):
        seen.append(counted.sort(pl.all()))
        return real(counted, *args)

    monkeypatch.setattr(release, "noisy_group_cells", observed)
    batch = build_batch(tmp_path / "batch", n_persons=1500)
    group = dataclasses.replace(load_group(batch.pipeline), group_figures="dp")
    outcomes = []
    for engine in ("duckdb", "spark"):
        keys, inbox = tmp_path / engine / "processor", tmp_path / engine / "inbox"
        shutil.copytree(batch.keys / "processor", keys)
        shutil.copytree(batch.inbox, inbox)
        out = tmp_path / engine / "out"
        process_batch(
            inbox, load_party(keys), out, group=dataclasses.replace(group, engine=engine),
            work_parent=tmp_path / engine,
        )  # fmt: skip
        ledger = [json.loads(x) for x in (keys / "privacy-budget.jsonl").read_text().splitlines()]
        outcomes.append((open_returns(batch, out, tmp_path / engine), ledger))
    assert len(seen) == 2 and seen[0].height and seen[0].equals(seen[1])
    (duck, duck_ledger), (spark_, spark_ledger) = outcomes
    keys = ["recipient", "epsilon", "delta", "noise_scale"]
    assert [{k: r[k] for k in keys} for r in duck_ledger] == [
        {k: r[k] for k in keys} for r in spark_ledger
    ]
    for maison, tables in duck.items():
        a, b = tables["aggregates"], spark_[maison]["aggregates"]
        # exact own cells; other_sector_spend is noisy (spend at the other maisons)
        spend = pl.col("table").is_in(["other_sector_spend"]) | pl.col("row_key").is_in(
            ["other_sector_spend"]
        )
        own = (pl.col("scope") == "maison") & ~spend
        assert a.filter(own).equals(b.filter(own)), maison
        shape = ["table", "scope", "row_key", "col_key", "margin"]
        cells = (pl.col("table") != "suppression") & (pl.col("scope") == "group")
        assert a.filter(cells).select(shape).equals(b.filter(cells).select(shape))
        assert tables["segments"].equals(spark_[maison]["segments"])
