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


def test_a_pipeline_may_retune_the_spark_engine_but_not_replace_its_guarantees():
    """A setting the engine makes is the pipeline's to change only when it is a tuning."""
    from crossgroup.engine_spark import _passed_through
    from crossgroup.errors import InputError

    own = {"spark.sql.shuffle.partitions": "8", "spark.driver.extraJavaOptions": "-Dquiet"}
    tuned = {"spark.sql.shuffle.partitions": "400", "spark.executor.memory": "8g"}
    assert _passed_through(tuned, own) == tuned
    with pytest.raises(InputError) as refused:
        _passed_through({"spark.driver.extraJavaOptions": "-X", "spark.ui.port": "4040"}, own)
    assert str(refused.value) == (
        "[engine.spark] spark.driver.extraJavaOptions cannot be set: the Spark engine sets it "
        "itself; [engine.spark] spark.ui.port cannot be set: the web UI shows query plans and "
        "their rows to whoever reaches it"
    )


def test_the_spark_engine_refuses_a_pinned_setting_before_any_session_starts(tmp_path):
    """A caller that skips the pipeline (a notebook) meets the same refusal, exit code 2."""
    pytest.importorskip("pyspark")
    from crossgroup.engine_spark import SparkEngine
    from crossgroup.errors import InputError

    with pytest.raises(InputError, match=r"spark.eventLog.enabled cannot be set") as refused:
        SparkEngine(tmp_path, spark_settings={"spark.eventLog.enabled": "true"})
    assert refused.value.exit_code == 2


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
def test_pipeline_spark_settings_reach_the_session_beside_the_pinned_ones(tmp_path):
    pytest.importorskip("pyspark")
    from crossgroup.engine_spark import SparkEngine

    settings = {"spark.sql.shuffle.partitions": "3", "spark.sql.adaptive.enabled": "false"}
    with SparkEngine(tmp_path, master="local[1]", spark_settings=settings) as engine:
        conf = engine._spark.conf
        assert {key: conf.get(key) for key in settings} == settings
        assert conf.get("spark.eventLog.enabled") == "false"
        assert conf.get("spark.ui.enabled") == "false"
        assert engine.scalar("SELECT count(*) FROM range(10)") == 10


@pytest.mark.parametrize("variable", ["SPARK_LOCAL_DIRS", "SPARK_EXECUTOR_DIRS"])
def test_the_spark_engine_refuses_an_environment_that_moves_its_scratch(
    monkeypatch, tmp_path, variable
):
    """Spark prefers these variables to spark.local.dir, even in local mode: its shuffle and
    checkpointed tables would sit outside the private working directory."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from crossgroup.engine_spark import SparkEngine
    from crossgroup.errors import InputError

    if SparkSession.getActiveSession() is not None:
        pytest.skip("a running session is joined as it is")
    monkeypatch.setenv(variable, str(tmp_path / "elsewhere"))
    with pytest.raises(InputError, match=f"{variable} is set: Spark would keep its scratch"):
        SparkEngine(tmp_path / "work")
    assert not (tmp_path / "elsewhere").exists()


def test_an_engine_error_names_the_step_never_the_value():
    """A failing cast quotes the value in DuckDB's own message; the EngineError blanks it."""
    import polars as pl

    from crossgroup.engine import DuckDBEngine, EngineError, Step

    secret = "d33afe0c1b2a49d7"
    with DuckDBEngine() as engine:
        engine.register("values_in", pl.DataFrame({"v": [secret]}))
        with pytest.raises(EngineError) as refused:
            engine.run(Step("cast_values", "SELECT CAST(v AS INTEGER) AS n FROM values_in"))
    message = str(refused.value)
    assert "step 'cast_values' failed in DuckDB" in message
    assert secret not in message and "d33a" not in message.lower()
