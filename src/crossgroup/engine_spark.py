"""The Spark implementation of the engine adapter (`engine.Engine`'s few hooks), DESIGN §8.

Stages stay SQL builders written once, in DuckDB's dialect; this adapter transpiles each
statement to Spark SQL with sqlglot (as Splink does) and runs it in a local or remote Spark
session. A step is materialized as Parquet in the working folder and read back, so a later
step neither recomputes its lineage nor plans from an estimate of its size: the optimizer
multiplies the estimates of a join's inputs, and over the rounds of an iterative stage (the
connected components of `resolve`) those grow without bound. Frames cross as Arrow. Those
tables, Spark's scratch and its warehouse live in the engine's working folder, which the
caller removes whatever happens: plaintext never leaves it.

Stages written as Polars functions (sector nets, feature shares, segment prediction, bands)
run on the executors through `map_frames` (`mapInArrow`); only samples, models and counts
come to the driver before the release step (docs/scaling.md). Optional: `pip install
crossgroup[spark]` (pyspark, sqlglot) and Java 17; only the processor's stages run here
(`crossgroup process --engine spark`, and `crossgroup evaluate --engine spark`, which scores
them on synthetic data).
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from crossgroup.engine import (
    EngineError,
    FrameFunction,
    FrameFunctionError,
    Step,
    apply_frame_function,
    failure_detail,
    mapped_schema,
)
from crossgroup.errors import InputError

# The engine's own settings a pipeline's [engine.spark] may replace: tunings, not guarantees.
TUNABLE = frozenset({"spark.sql.shuffle.partitions", "spark.sql.sources.fileCompressionFactor"})


def _passed_through(spark_settings: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """A pipeline's Spark settings, checked again here for callers that skip the config: one
    config.SPARK_PINNED names, or one the engine makes that is not TUNABLE, is refused."""
    from crossgroup.config import spark_setting_problem

    problems = []
    for key, value in spark_settings.items():
        problem = spark_setting_problem(key, value)
        if problem is None and key in own and key not in TUNABLE:
            problem = f"[engine.spark] {key} cannot be set: the Spark engine sets it itself"
        if problem:
            problems.append(problem)
    if problems:
        raise InputError("; ".join(problems))
    return dict(spark_settings)


def _transpile(sql: str) -> str:
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    except SqlglotError as e:
        raise EngineError(f"a step could not be written in Spark SQL: {e}") from None


def _partition_mapper(fn: FrameFunction, schema: Any):
    """The function Spark runs per partition: the partition's Arrow batches as one Polars
    frame, `fn` over it, the result cast to the declared schema (nothing for an empty one)."""

    def mapper(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        pieces = [b for b in batches if b.num_rows]
        if not pieces:
            return
        frame = pl.from_arrow(pa.Table.from_batches(pieces))
        yield from apply_frame_function(fn, frame).to_arrow().cast(schema).to_batches()

    return mapper


class SparkEngine:
    """A Spark session whose scratch space (local dirs, warehouse) is inside `workdir`."""

    def __init__(
        self,
        workdir: Path,
        *,
        master: str = "local[*]",
        spark_settings: Mapping[str, str] | None = None,
    ) -> None:
        # frames cross as Arrow, never through pandas, whose version PySpark warns about
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        try:
            from pyspark import SparkContext
            from pyspark.sql import SparkSession
        except ImportError:
            raise InputError(
                "the Spark engine needs pyspark: pip install 'crossgroup[spark]'"
            ) from None
        # PySpark logs a failing query's whole message (which can quote a row's value) to
        # stderr; the failure still reaches the caller, as an EngineError
        from pyspark.logger import PySparkLogger

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            PySparkLogger.getLogger(name).disabled = True
        self._scratch = Path(workdir) / "spark"
        self._scratch.mkdir(parents=True, exist_ok=True)
        log_config = Path(__file__).with_name("spark-log4j2.properties")
        # the JVM's temporary folder, and zstd-jni's (else the JDK's, fixed at its first use:
        # in a JVM an earlier engine started, that engine's folder, since removed)
        temp = dict.fromkeys(("java.io.tmpdir", "ZstdTempFolder"), str(self._scratch / "tmp"))
        settings = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.eventLog.enabled": "false",
            "spark.local.dir": str(self._scratch / "local"),
            "spark.sql.warehouse.dir": str(self._scratch / "warehouse"),
            # the Parquet of each step, written through Hadoop, readable by this user only
            "spark.hadoop.fs.permissions.umask-mode": "077",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.ansi.enabled": "true",  # overflow and bad casts fail, as in DuckDB
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.shuffle.partitions": "8",
            # steps are read back from Parquet, where repeated labels take a few bytes
            # for thousands of rows: sized as they are on disk, a table of bands 20 times
            # larger in memory would be broadcast and overflow the driver; adaptive
            # execution still broadcasts what its real shuffle sizes show to be small
            "spark.sql.sources.fileCompressionFactor": "20",
            # the driver JVM this starts keeps its temporary files (Spark's, native libraries')
            # in `workdir`, not /tmp, and logs nothing, since a log line can quote a row;
            # executors on a cluster follow the cluster's own settings
            "spark.driver.extraJavaOptions": shlex.join(
                [
                    *(f"-D{key}={value}" for key, value in temp.items()),
                    f"-Dlog4j2.configurationFile={log_config}",
                    "-XX:-UsePerfData",  # no hsperfdata file in /tmp
                ]
            ),
        }
        (self._scratch / "tmp").mkdir(exist_ok=True)
        if master.startswith("local"):
            # PySpark starts the Python workers that run `map_frames` with $PYSPARK_PYTHON
            # (else `python3`): locally, this interpreter, which has crossgroup; on a
            # cluster, the executors' Python must have crossgroup installed
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # a session already running in this process (a notebook's, a test's) is joined, and
        # left running at close; its static settings (master, local dirs) are kept
        self._owns_session = SparkSession.getActiveSession() is None
        # Spark prefers these to spark.local.dir: its scratch would leave the private folder
        moved = [v for v in ("SPARK_LOCAL_DIRS", "SPARK_EXECUTOR_DIRS") if os.environ.get(v)]
        if moved and self._owns_session:
            raise InputError(
                f"{moved[0]} is set: Spark would keep its scratch there, outside the private "
                "working directory; unset it for the Spark engine"
            )
        if self._owns_session and SparkContext._jvm and not SparkContext._active_spark_context:
            # a JVM left by an earlier session of this process keeps that session's temporary
            # folder and local root, since removed (and made again on use): both moved here,
            # through Spark's own reset of its local root (pyspark is pinned)
            jvm = SparkContext._jvm
            for key, value in temp.items():
                jvm.java.lang.System.setProperty(key, value)
            getattr(getattr(jvm, "org.apache.spark.util.Utils$"), "MODULE$").clearLocalRootDirs()
        # a classic session whatever SPARK_API_MODE says (Spark Connect: docs/scaling.md);
        # the pipeline's [engine.spark] settings go over the engine's tunings only
        builder = SparkSession.builder.master(master).appName("crossgroup")
        builder = builder.config("spark.api.mode", "classic")
        passed = _passed_through(spark_settings or {}, settings)
        for key, value in {**settings, **passed}.items():
            builder = builder.config(key, value)
        try:
            self._spark = builder.getOrCreate()
        except Exception as e:  # no Java, or a master that cannot be reached
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"the Spark engine could not start: {first}") from None
        self._spark.sparkContext.setLogLevel("ERROR")
        self._views: set[str] = set()
        self._serial = itertools.count()
        self._folders: dict[str, list[Path]] = {}  # a materialized step's Parquet folders

    def close(self) -> None:
        for name in list(self._views):
            self.drop(name)
        if self._owns_session:
            self._spark.stop()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _step(self, label: str) -> Iterator[None]:
        """Re-raise a Spark failure (analysis, or a job that fails) naming the step only."""
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        try:
            yield
        except (PySparkException, Py4JJavaError) as e:  # a failing job, or one aborted
            # a frame function's failure, as `_partition_mapper` words it, else Spark's line
            ours = re.search(r"FrameFunctionError: (.+)$", str(e), re.MULTILINE)
            detail = failure_detail(FrameFunctionError(ours.group(1)) if ours else e)
            raise EngineError(f"step {label!r} failed in Spark: {detail}") from None

    def _sql(self, sql: str, params: list[Any] | None = None) -> Any:
        """`?` placeholders are bound by Spark, as by DuckDB."""
        return self._spark.sql(_transpile(sql), args=params or None)

    def _name(self, frame: Any, name: str) -> str:
        frame.createOrReplaceTempView(name)
        self._views.add(name)
        return name

    def _materialize(self, frame: Any, name: str) -> str:
        """Write `frame` as Parquet and name what is read back: later steps read the rows,
        not the plan that made them, and are planned from the files' real size. A name run
        again gets a new folder (a view on the old one may still read it)."""
        folder = self._scratch / "tables" / f"{name}-{next(self._serial)}"
        with self._step(name):
            frame.write.parquet(str(folder))
            table = self._spark.read.parquet(str(folder))
        self._folders.setdefault(name, []).append(folder)
        return self._name(table, name)

    def run(self, step: Step, params: list[Any] | None = None) -> str:
        """Materialize a step as a table of its own."""
        with self._step(step.name):
            frame = self._sql(step.sql, params)
        return self._materialize(frame, step.name)

    def run_all(self, steps: list[Step]) -> str:
        for step in steps:
            self.run(step)
        return steps[-1].name

    def execute(self, label: str, sql: str, params: list[Any] | None = None) -> None:
        """A statement whose result is not read: a view is kept as a temporary view, a
        dropped table or view is forgotten, anything else runs as written."""
        import sqlglot
        from sqlglot import exp

        statement = sqlglot.parse_one(sql, read="duckdb")
        if isinstance(statement, exp.Drop):
            self.drop(statement.this.name)
            return
        with self._step(label):
            if isinstance(statement, exp.Create) and statement.kind in ("VIEW", "TABLE"):
                query = statement.expression.sql(dialect="duckdb")
                self._name(self._sql(query), statement.this.name)
            else:
                self._sql(sql, params).collect()

    def register(self, name: str, frame: pl.DataFrame | Any) -> str:
        """Expose a Polars or Arrow frame as a view named `name`."""
        table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
        return self._name(self._spark.createDataFrame(table), name)

    def unregister(self, name: str) -> None:
        self.drop(name)

    def drop(self, *tables: str) -> None:
        """Forget each table, and delete the Parquet of a materialized one (as DuckDB frees
        a dropped table's memory)."""
        for table in tables:
            self._spark.catalog.dropTempView(table)
            self._views.discard(table)
            for folder in self._folders.pop(table, ()):
                shutil.rmtree(folder, ignore_errors=True)

    def view_parquet(self, name: str, paths: list[Path] | Path) -> str:
        files = [paths] if isinstance(paths, Path | str) else list(paths)
        return self._name(self._spark.read.parquet(*map(str, files)), name)

    def to_polars(self, sql_or_table: str, params: list[Any] | None = None) -> pl.DataFrame:
        sql = sql_or_table if " " in sql_or_table.strip() else f"SELECT * FROM {sql_or_table}"
        with self._step("query"):
            return pl.from_arrow(self._sql(sql, params).toArrow())

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        rows = self.to_polars(sql, params).rows()
        return rows[0][0] if rows else None

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    def copy_to_parquet(self, sql_or_table: str, path: Path, *, label: str = "write") -> None:
        """Write a query's result to one Parquet file (zstd): Spark writes a folder of one
        part, which is moved to `path`."""
        sql = sql_or_table if " " in sql_or_table.strip() else f"SELECT * FROM {sql_or_table}"
        folder = self._scratch / "out" / Path(path).name
        with self._step(label):
            writer = self._sql(sql).coalesce(1).write.mode("overwrite")
            writer.option("compression", "zstd").parquet(str(folder))
        (part,) = folder.glob("part-*.parquet")
        shutil.move(part, path)
        shutil.rmtree(folder, ignore_errors=True)

    def table_exists(self, name: str) -> bool:
        return name in self._views

    def map_frames(
        self,
        name: str,
        source: str,
        fn: FrameFunction,
        *,
        partition_by: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> str:
        """`fn` on the executors, once per partition of `source` (`mapInArrow`): with
        `partition_by`, every row of a key is in the same partition. Only `fn` and what it
        holds (a fitted model, cut points) travel from the driver; no row comes back to it.
        """
        from pyspark.sql.pandas.types import from_arrow_schema

        columns = mapped_schema(self, source, fn, schema)
        arrow_schema = pl.DataFrame(schema=columns).to_arrow().schema
        frame = self._spark.table(source)
        if partition_by is not None:
            partitions = int(self._spark.conf.get("spark.sql.shuffle.partitions"))
            frame = frame.repartition(partitions, partition_by)
        mapped = frame.mapInArrow(
            _partition_mapper(fn, arrow_schema), from_arrow_schema(arrow_schema)
        )
        return self._materialize(mapped, name)
