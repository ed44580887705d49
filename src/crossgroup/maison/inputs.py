"""Read and validate the two maison inputs (DESIGN §4.1) as typed DuckDB views.

Only the contract's columns are ever selected, so names, birth dates or addresses in the CRM
extract are never read. Bad input is normal: every problem becomes one InputError naming the
file and the column, never a customer's value (a shifted CSV column could put emails where
dates belong, so unparseable values are counted, not shown).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from crossgroup.config import CHANNELS, FxTable
from crossgroup.engine import Engine, EngineError, Step
from crossgroup.errors import InputError
from crossgroup.io import scan_table, table_columns

# column -> kind; kinds say which stored types are accepted and how text is parsed.
CUSTOMER_COLUMNS = {
    "customer_id": "id",
    "email": "text",
    "phone": "text",
    "country": "text",
    "cross_group_consent": "bool",
    "consent_updated_at": "timestamp",
    "restricted": "bool",
}
OPTIONAL_CUSTOMER_COLUMNS = {"restricted"}  # absent: nobody is restricted
PURCHASE_COLUMNS = {
    "customer_id": "id",
    "order_id": "id",
    "purchased_at": "timestamp",
    "category": "text",
    "amount": "number",
    "currency": "text",
    "channel": "text",
}
_KIND_WORDS = {
    "id": "text",
    "text": "text",
    "bool": "true/false",
    "timestamp": "a date or timestamp",
    "number": "a number",
}
# A code-like label may be named in an error; anything else might be a customer's value.
_SAFE_LABEL = re.compile(r"^[A-Za-z][A-Za-z _-]{0,15}$")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def column_sql(column: str, kind: str, dtype: pl.DataType) -> tuple[str, bool] | None:
    """The SQL typing one input column, and whether it parses text; None if mistyped."""
    col = _q(column)
    if dtype == pl.Null and kind != "id":
        cast = {"text": "VARCHAR", "bool": "BOOLEAN", "timestamp": "TIMESTAMP", "number": "DOUBLE"}
        return f"CAST(NULL AS {cast[kind]})", False
    if kind in ("id", "text"):
        return (f"CAST({col} AS VARCHAR)", False) if _is_text(dtype) else None
    if kind == "bool":
        if dtype == pl.Boolean:
            return col, False
        return (f"TRY_CAST(trim({col}) AS BOOLEAN)", True) if _is_text(dtype) else None
    if kind == "timestamp":
        if isinstance(dtype, pl.Datetime | pl.Date):
            # tz-aware values become UTC wall time (the engine session runs in UTC)
            return f"CAST({col} AS TIMESTAMP)", False
        if _is_text(dtype):
            return f"CAST(TRY_CAST(trim({col}) AS TIMESTAMPTZ) AS TIMESTAMP)", True
        return None
    if kind == "number":
        if dtype.is_numeric():
            return f"CAST({col} AS DOUBLE)", False
        return (f"TRY_CAST(trim({col}) AS DOUBLE)", True) if _is_text(dtype) else None
    raise ValueError(kind)


def _source_sql(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        # every CSV field is text here; each column is typed (and checked) by column_sql
        return f"read_csv({_lit(path)}, all_varchar = true, header = true, delim = ',')"
    return f"read_parquet({_lit(path)})"


def typed_view_step(
    name: str, path: Path, label: str, columns: dict[str, str], optional: set[str]
) -> Step:
    """A view selecting only the contract's columns, typed, with a `_bad_<col>` parse flag."""
    schema = table_columns(scan_table(path, label=label), path, label=label)
    missing = [c for c in columns if c not in schema and c not in optional]
    if missing:
        raise InputError(f"{label} file {path}: missing required column(s) {', '.join(missing)}")
    selects = []
    for column, kind in columns.items():
        if column not in schema:
            selects.append(f"CAST(NULL AS BOOLEAN) AS {_q(column)}")
            continue
        typed = column_sql(column, kind, schema[column])
        if typed is None:
            raise InputError(
                f"{label} file {path}: column {column} is {schema[column]}, "
                f"expected {_KIND_WORDS[kind]}"
            )
        expr, parses = typed
        selects.append(f"{expr} AS {_q(column)}")
        if parses:
            selects.append(
                f"({_q(column)} IS NOT NULL AND {expr} IS NULL) AS {_q('_bad_' + column)}"
            )
    return Step(name, f"SELECT {', '.join(selects)} FROM {_source_sql(path)}")


def _create_view(engine: Engine, step: Step) -> None:
    engine.execute(step.name, f"CREATE OR REPLACE VIEW {step.name} AS {step.sql}")


def _unreadable(path: Path, label: str, e: EngineError) -> InputError:
    # DuckDB puts any offending CSV line on later lines of its message: keep the first only
    detail = str(e).split(":", 2)[-1].strip().splitlines()[0]
    return InputError(f"{label} file {path} cannot be read: {detail}")


def _bad_columns(engine: Engine, view: str) -> list[str]:
    cols = engine.to_polars(f"SELECT * FROM {view} LIMIT 0").columns
    return [c.removeprefix("_bad_") for c in cols if c.startswith("_bad_")]


def _unparseable(path: Path, label: str, counts: dict[str, int]) -> None:
    for column, n in counts.items():
        if n:
            raise InputError(
                f"{label} file {path}: column {column} has {n} value(s) that cannot be parsed "
                f"as {_KIND_WORDS[CUSTOMER_COLUMNS.get(column) or PURCHASE_COLUMNS[column]]}"
            )


def _safe(label: str | None) -> str:
    return repr(label) if label is not None and _SAFE_LABEL.match(label) else "a non-code value"


def load_customers(engine: Engine, path: Path) -> int:
    """Create table `customers` (typed, contract columns only) and return its row count."""
    try:
        return _load_customers(engine, path)
    except EngineError as e:
        raise _unreadable(path, "customers", e) from None


def _load_customers(engine: Engine, path: Path) -> int:
    step = typed_view_step(
        "customers_in", path, "customers", CUSTOMER_COLUMNS, OPTIONAL_CUSTOMER_COLUMNS
    )
    _create_view(engine, step)
    bad = _bad_columns(engine, "customers_in")
    bad_sql = "".join(f", count(*) FILTER ({_q('_bad_' + c)})" for c in bad)
    row = engine.to_polars(
        "SELECT count(*), count(*) FILTER (customer_id IS NULL), "
        f"count(customer_id) - count(DISTINCT customer_id){bad_sql} FROM customers_in"
    ).row(0)
    n, null_ids, dup_ids = row[:3]
    if n == 0:
        raise InputError(f"customers file {path} has no rows")
    if null_ids:
        raise InputError(f"customers file {path}: {null_ids} row(s) have no customer_id")
    if dup_ids:
        raise InputError(f"customers file {path}: {dup_ids} duplicate customer_id value(s)")
    _unparseable(path, "customers", dict(zip(bad, row[3:], strict=True)))
    cols = ", ".join(_q(c) for c in CUSTOMER_COLUMNS)
    engine.run(Step("customers", f"SELECT {cols} FROM customers_in"))
    return int(n)


def load_purchases(engine: Engine, path: Path, fx: FxTable) -> int:
    """Create view `purchases` (typed, re-scanned per pass) after checking every row."""
    try:
        return _load_purchases(engine, path, fx)
    except EngineError as e:
        raise _unreadable(path, "purchases", e) from None


def _load_purchases(engine: Engine, path: Path, fx: FxTable) -> int:
    step = typed_view_step("purchases_in", path, "purchases", PURCHASE_COLUMNS, set())
    _create_view(engine, step)
    bad = _bad_columns(engine, "purchases_in")
    bad_sql = "".join(f", count(*) FILTER ({_q('_bad_' + c)}) AS {_q(c)}" for c in bad)
    required = ("customer_id", "order_id", "purchased_at", "amount")
    # count(*) - count(col), not a filter on IS NULL: the engine answers it from the file's
    # statistics when they show no null, without reading the column (the two ids, mostly)
    null_sql = "".join(f", count(*) - count({_q(c)}) AS {_q('null_' + c)}" for c in required)
    # one pass: per (currency, channel) the row count and every problem count
    cells = engine.to_polars(
        "SELECT currency, lower(trim(channel)) AS channel, count(*) AS n"
        f"{null_sql}{bad_sql}, count(*) FILTER (NOT isfinite(amount)) AS not_finite_amount "
        "FROM purchases_in GROUP BY ALL"
    )
    n = int(cells["n"].sum()) if cells.height else 0
    if n == 0:
        raise InputError(f"purchases file {path} has no rows")
    _unparseable(path, "purchases", {c: int(cells[c].sum()) for c in bad})
    for c in required:
        if nulls := int(cells[f"null_{c}"].sum()):
            raise InputError(f"purchases file {path}: {nulls} row(s) have no {c}")
    if not_finite := int(cells["not_finite_amount"].sum()):
        # NaN or +-infinity ("NaN", "inf" in a CSV, or a float column) would reach the payload
        raise InputError(
            f"purchases file {path}: column amount has {not_finite} value(s) that are not "
            "finite numbers (NaN or infinity)"
        )
    for currency in cells["currency"].unique().sort(nulls_last=True):
        if currency is None:
            raise InputError(f"purchases file {path}: some rows have no currency")
        if currency not in fx.eur_per_unit:
            raise InputError(
                f"purchases file {path}: unknown currency {_safe(currency)} "
                "(not in the fx table; add its EUR rate to pipelines/fx.toml)"
            )
    for channel in cells["channel"].unique().sort(nulls_last=True):
        if channel not in CHANNELS:
            raise InputError(
                f"purchases file {path}: unknown channel {_safe(channel)} "
                f"(expected one of {', '.join(CHANNELS)})"
            )
    cols = ", ".join(
        "lower(trim(channel)) AS channel" if c == "channel" else _q(c) for c in PURCHASE_COLUMNS
    )
    _create_view(engine, Step("purchases", f"SELECT {cols} FROM purchases_in"))
    return n
