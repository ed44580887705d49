"""The DuckDB adapter runs SQL-builder steps and names the failing step, never the data."""

from pathlib import Path

import polars as pl
import pytest

from crossgroup.engine import DuckDBEngine, EngineError, Step


def test_steps_materialize_and_results_come_back_as_polars(tmp_path: Path):
    with DuckDBEngine(tmp_path, memory_limit="256MB", threads=1) as engine:
        engine.register("purchases", pl.DataFrame({"amount": [10.0, -2.5, 7.5]}))
        engine.run(Step("positive", "SELECT amount FROM purchases WHERE amount > ?"), [0])
        assert engine.count("positive") == 2
        assert engine.scalar("SELECT sum(amount) FROM positive") == 17.5
        out = tmp_path / "positive.parquet"
        engine.copy_to_parquet("positive", out)
        assert pl.read_parquet(out)["amount"].sort().to_list() == [7.5, 10.0]
        engine.view_parquet("again", out)
        assert engine.table_exists("positive")
        assert engine.to_polars("again").height == 2


def test_engine_error_names_the_step_and_hides_parameters(tmp_path: Path):
    with DuckDBEngine(tmp_path) as engine, pytest.raises(EngineError) as e:
        engine.run(
            Step("broken_step", "SELECT no_such_column FROM range(3) WHERE ? = 1"),
            ["customer-value-42"],
        )
    assert "broken_step" in str(e.value)
    assert "customer-value-42" not in str(e.value)


def test_spill_directory_lives_in_the_working_folder(tmp_path: Path):
    with DuckDBEngine(tmp_path) as engine:
        spill = engine.scalar("SELECT current_setting('temp_directory')")
    assert str(spill).startswith(str(tmp_path))


def test_both_adapters_implement_the_engine_interface_alike():
    """Every hook a stage may call exists on DuckDB and Spark with the same parameters."""
    import inspect

    from crossgroup.engine import DuckDBEngine, Engine
    from crossgroup.engine_spark import SparkEngine

    hooks = [n for n, v in vars(Engine).items() if callable(v) and not n.startswith("_")]
    assert {"run", "register", "to_polars", "copy_to_parquet", "table_exists"} <= set(hooks)
    for hook in hooks:
        expected = list(inspect.signature(getattr(Engine, hook)).parameters)
        for adapter in (DuckDBEngine, SparkEngine):
            assert list(inspect.signature(getattr(adapter, hook)).parameters) == expected, (
                adapter.__name__,
                hook,
            )


def test_the_spark_engine_without_pyspark_is_one_clear_input_error(monkeypatch, tmp_path):
    """`--engine spark` on a machine without the extra: exit 2 and how to install it."""
    import sys

    from crossgroup.engine_spark import SparkEngine
    from crossgroup.errors import InputError

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # as if pyspark were missing
    with pytest.raises(InputError, match=r"pip install 'crossgroup\[spark\]'") as refused:
        SparkEngine(tmp_path)
    assert refused.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []  # nothing made before the refusal
