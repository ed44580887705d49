"""The engine adapter: the one interface through which stages run SQL (STYLE.md habit 2).

Stages are SQL builders: pure functions that return a `Step` (the SQL, in DuckDB's dialect,
and the name of the table it produces) and never execute it. An `Engine` runs steps,
registers frames and reads results; `DuckDBEngine` here is the embedded default, and
`engine_spark.SparkEngine` runs the same steps on Spark (DESIGN §8). An engine failure is
re-raised naming the step, never the data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl

from crossgroup.errors import InputError


class EngineError(InputError):
    """A SQL step failed inside the engine (exit code 2).

    Stages run on inputs that passed the contract checks, so a failing step almost always
    means input the contract did not foresee; the message names the step, never the data.
    """


@dataclass(frozen=True)
class Step:
    """One stage of a pipeline: `CREATE TABLE {name} AS {sql}`."""

    name: str
    sql: str


def failure_detail(error: BaseException) -> str:
    """The first line of an engine's error with every quoted literal blanked: a failing cast
    or comparison quotes the value (a ref, a token), and no value may reach a message."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return _QUOTED.sub(lambda m: m.group(1) + "…" + m.group(1), first)


_QUOTED = re.compile(r"""(['"`])(?:(?!\1).)*\1""")


class FrameFunctionError(RuntimeError):
    """A frame function failed; its message names the error type, never a row's value."""


def apply_frame_function(fn: FrameFunction, frame: pl.DataFrame) -> pl.DataFrame:
    """`fn(frame)`, any failure re-raised as a FrameFunctionError: the product's own
    InputError keeps its message (which names no value), a library's error keeps its type
    only, since its message may quote the row it failed on. Both engines call this."""
    try:
        return fn(frame)
    except InputError as e:
        raise FrameFunctionError(f"{type(e).__name__}: {e}") from None
    except Exception as e:
        raise FrameFunctionError(f"{type(e).__name__} in a frame function") from None


def _quote_path(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# A pure function from a piece of a table to a frame of the declared schema. `map_frames`
# applies it where the data lives (in this process for DuckDB, on Spark's executors), so
# stages written as Polars functions run over a batch that never comes to the driver.
FrameFunction = Callable[[pl.DataFrame], pl.DataFrame]


def mapped_schema(engine: Engine, source: str, fn: FrameFunction, schema) -> dict[str, Any]:
    """The columns `map_frames` promises: `schema` as given, else `fn` over no rows."""
    if schema is not None:
        return dict(schema)
    return dict(fn(engine.to_polars(f"SELECT * FROM {source} LIMIT 0")).schema)


class Engine(Protocol):
    """What a stage may ask of an engine; both adapters implement exactly this."""

    def run(self, step: Step, params: list[Any] | None = None) -> str: ...
    def run_all(self, steps: list[Step]) -> str: ...
    def execute(self, label: str, sql: str, params: list[Any] | None = None) -> None: ...
    def register(self, name: str, frame: pl.DataFrame | Any) -> str: ...
    def unregister(self, name: str) -> None: ...
    def drop(self, *tables: str) -> None: ...
    def view_parquet(self, name: str, paths: list[Path] | Path) -> str: ...
    def to_polars(self, sql_or_table: str, params: list[Any] | None = None) -> pl.DataFrame: ...
    def scalar(self, sql: str, params: list[Any] | None = None) -> Any: ...
    def count(self, table: str) -> int: ...
    def copy_to_parquet(self, sql_or_table: str, path: Path, *, label: str = "write") -> None: ...
    def table_exists(self, name: str) -> bool: ...
    def map_frames(
        self,
        name: str,
        source: str,
        fn: FrameFunction,
        *,
        partition_by: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> str: ...
    def close(self) -> None: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *exc: object) -> None: ...


class DuckDBEngine:
    """A DuckDB database with a memory limit and a spill directory inside a working folder."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        memory_limit: str = "4GB",
        threads: int = 2,
        debug: bool = False,
    ) -> None:
        self._con = duckdb.connect(":memory:")
        self.debug = debug
        self._con.execute(f"SET memory_limit = '{memory_limit}'")
        self._con.execute(f"SET threads = {int(threads)}")
        self._con.execute("SET preserve_insertion_order = false")
        if workdir is not None:
            spill = Path(workdir) / "spill"
            spill.mkdir(parents=True, exist_ok=True)
            self._con.execute(f"SET temp_directory = {_quote_path(spill)}")
        self._con.execute("SET enable_progress_bar = false")
        self._frames: dict[str, Any] = {}  # frames exposed with register or map_frames

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(
        self, label: str, sql: str, params: list[Any] | None = None
    ) -> duckdb.DuckDBPyRelation | None:
        try:
            return self._con.sql(sql, params=params or None)
        except duckdb.Error as e:
            raise EngineError(f"step {label!r} failed in DuckDB: {failure_detail(e)}") from None

    def run(self, step: Step, params: list[Any] | None = None) -> str:
        """Materialize a step as a table and return its name."""
        self._run(step.name, f"CREATE OR REPLACE TABLE {step.name} AS {step.sql}", params)
        if self.debug:
            print(f"-- {step.name}: {self.count(step.name)} rows")
        return step.name

    def run_all(self, steps: list[Step]) -> str:
        for step in steps:
            self.run(step)
        return steps[-1].name

    def execute(self, label: str, sql: str, params: list[Any] | None = None) -> None:
        """Run a statement that returns nothing of interest (COPY, DROP, SET)."""
        self._run(label, sql, params)

    def register(self, name: str, frame: pl.DataFrame | Any) -> str:
        """Expose a Polars or Arrow frame as a view named `name`."""
        self._con.register(name, frame)
        self._frames[name] = frame
        return name

    def unregister(self, name: str) -> None:
        """Forget a frame exposed with `register`, so the engine holds no reference to it."""
        self._con.unregister(name)
        self._frames.pop(name, None)

    def drop(self, *tables: str) -> None:
        """Drop tables no later step reads, so their memory goes to the next steps."""
        for table in tables:
            if table in self._frames:
                self.unregister(table)
            else:
                self._run(f"drop {table}", f"DROP TABLE IF EXISTS {table}")

    def map_frames(
        self,
        name: str,
        source: str,
        fn: FrameFunction,
        *,
        partition_by: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> str:
        """`fn` over the whole of `source` in this process (one piece holds every key, so
        `partition_by` needs nothing more), its result exposed as `name`. A frame made by an
        earlier map is read as it is, without a copy through the engine."""
        frame = self._frames.get(source)
        if not isinstance(frame, pl.DataFrame):
            frame = self.to_polars(source)
        try:
            result = apply_frame_function(fn, frame)
        except FrameFunctionError as e:
            raise EngineError(f"step {name!r} failed in DuckDB: {e}") from None
        if schema is not None and dict(result.schema) != dict(schema):
            raise EngineError(f"step {name!r} gave columns {dict(result.schema)}, not {schema}")
        return self.register(name, result)

    def view_parquet(self, name: str, paths: list[Path] | Path) -> str:
        """A view over one or more Parquet files (scanned out of core, never loaded whole)."""
        files = [paths] if isinstance(paths, Path | str) else list(paths)
        listing = ", ".join(_quote_path(p) for p in files)
        self._run(name, f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")
        return name

    def to_polars(self, sql_or_table: str, params: list[Any] | None = None) -> pl.DataFrame:
        sql = sql_or_table if " " in sql_or_table.strip() else f"SELECT * FROM {sql_or_table}"
        return self._run("query", sql, params).pl()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        rows = self._run("query", sql, params).fetchall()
        return rows[0][0] if rows else None

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    def copy_to_parquet(self, sql_or_table: str, path: Path, *, label: str = "write") -> None:
        """Write a query's result to one Parquet file (zstd), streaming from the engine."""
        source = sql_or_table if " " in sql_or_table.strip() else f"SELECT * FROM {sql_or_table}"
        self._run(
            label,
            f"COPY ({source}) TO {_quote_path(path)} (FORMAT parquet, COMPRESSION zstd)",
        )

    def table_exists(self, name: str) -> bool:
        return name in self._frames or bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            )
        )
