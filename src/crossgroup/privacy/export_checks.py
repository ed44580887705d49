"""The last gate before an export package is sealed (DESIGN §4.3, §5.3).

The payload must match the allow-list exactly (tables, columns, types), carry no value shaped
like an email or a phone number, no pseudonym of the wrong size, no exact date, no number that
is NaN or infinite (the processor's features and segmentation cannot take one), no
pseudonym that reads as text (`BINARY_TEXT`) and no value equal to an input customer_id or
order_id. Any failure refuses the whole export
(PrivacyCheckError, exit 3); the message names table, column and check, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path

from crossgroup.contracts import AMOUNT_LIMIT_EUR, EXPORT, REF_BYTES
from crossgroup.engine import Engine
from crossgroup.errors import PrivacyCheckError

# Exact DuckDB types of every column allowed to leave a maison, in order (contracts.EXPORT).
EXPORT_SCHEMA: dict[str, dict[str, str]] = {name: t.sql_types for name, t in EXPORT.items()}
NOT_NULL = {(name, column) for name, t in EXPORT.items() for column in t.not_null}

# RE2 and Python `re` agree on these. An email is anything with a non-space on both sides
# of an '@' (group categories never hold one). A phone is 7+ digits with usual separators,
# looked for after ISO dates and times are blanked, so "2026-09-01" is not a phone.
EMAIL_SHAPED = r"[^\s@]@[^\s@]"
PHONE_SHAPED = r"\+?\d(?:[\s().\/-]{0,2}\d){6,}"
ISO_DATE_TIME = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
# A pseudonym is 16 bytes of keyed HMAC output; 16 bytes of an identifier are text. Matched
# on DuckDB's BLOB-to-VARCHAR rendering, where bytes outside printable ASCII, and the
# backslash, read as `\xNN`: a value is text when it is at least 6 characters of one case of
# the identifier alphabet (letters, digits, space and . @ _ + ' ( ) -), then only NUL padding.
# So "jane.doe@example", "+33612345678" + NULs and "CUST-000123" + NULs are refused. Random
# bytes match with probability about 2 x (43/256)^16, under 1e-12: a keyed pseudonym is never
# refused in practice (a broader rule, such as 90% printable, would refuse about one HMAC
# output in 280,000, that is some customer of every large maison, at every export). Mixed-case
# text ("Jane.Doe@Example") is not matched by this rule.
BINARY_TEXT = r"(?:[a-z0-9 .@_+'()-]{6,}|[A-Z0-9 .@_+'()-]{6,})(?:\\x00)*"


def looks_identifying(text: str) -> bool:
    """True when a string looks like an email or a phone number (same rules as the check)."""
    if re.search(EMAIL_SHAPED, text):
        return True
    return re.search(PHONE_SHAPED, re.sub(ISO_DATE_TIME, " ", text)) is not None


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema_problems(engine: Engine, tables: Mapping[str, str]) -> list[str]:
    problems = []
    if set(tables) != set(EXPORT_SCHEMA):
        extra = sorted(set(tables) - set(EXPORT_SCHEMA))
        absent = sorted(set(EXPORT_SCHEMA) - set(tables))
        if extra:
            problems.append(f"tables not in the allow-list: {', '.join(extra)}")
        if absent:
            problems.append(f"missing tables: {', '.join(absent)}")
    for table, relation in tables.items():
        expected = EXPORT_SCHEMA.get(table)
        if expected is None:
            continue
        described = engine.to_polars(f"DESCRIBE SELECT * FROM {relation}")
        actual = dict(zip(described["column_name"], described["column_type"], strict=True))
        if list(actual) != list(expected):
            problems.append(
                f"{table}: columns {', '.join(actual)} differ from the allow-list "
                f"{', '.join(expected)}"
            )
            continue
        for column, dtype in expected.items():
            if actual[column] != dtype:
                problems.append(f"{table}.{column}: type {actual[column]}, expected {dtype}")
    return problems


# The payload's text and binary values, distinct per column with their row counts: the value
# checks and the identifier probes read this small table instead of the payload rows.
_VALUES = "_payload_values"
_BY_VALUE = {"VARCHAR": "text_value", "BLOB": "binary_value"}  # type -> column of _VALUES


def _column_checks(
    dtype: str, value: str, *, not_null: bool, vocabulary: Collection[str] | None
) -> dict[str, str]:
    """What a bad value of one column is called -> the SQL condition on `value` that finds it."""
    checks: dict[str, str] = {}
    if not_null:
        checks["null value(s)"] = f"{value} IS NULL"
    if dtype == "BLOB":
        checks[f"value(s) not exactly {REF_BYTES} bytes"] = (
            f"{value} IS NOT NULL AND octet_length({value}) <> {REF_BYTES}"
        )
        checks["value(s) read as text, not as a keyed pseudonym"] = (
            f"regexp_full_match(CAST({value} AS VARCHAR), {_sql_str(BINARY_TEXT)})"
        )
    elif dtype == "VARCHAR":
        checks["value(s) look like an email"] = f"regexp_matches({value}, {_sql_str(EMAIL_SHAPED)})"
        checks["value(s) look like a phone number"] = (
            f"regexp_matches(regexp_replace({value}, {_sql_str(ISO_DATE_TIME)}, ' ', 'g'),"
            f" {_sql_str(PHONE_SHAPED)})"
        )
        if vocabulary is not None:
            listed = ", ".join(_sql_str(v) for v in sorted(vocabulary))
            checks["value(s) outside the allowed vocabulary"] = (
                f"{value} IS NOT NULL AND {value} NOT IN ({listed})"
            )
    elif dtype == "DATE":
        checks["exact date(s) instead of a month"] = f"day({value}) <> 1"
    elif dtype == "DOUBLE":
        checks["value(s) not finite (NaN or infinity)"] = f"NOT isfinite({value})"
        checks[f"value(s) not below {AMOUNT_LIMIT_EUR:.0e} in magnitude"] = (
            f"isfinite({value}) AND abs({value}) >= {AMOUNT_LIMIT_EUR}"
        )
    return checks


def _payload_values_sql(tables: Mapping[str, str]) -> str:
    """location ("table.column"), text_value or binary_value (the other one NULL), rows: one
    row per distinct value of each text and binary column."""
    parts = []
    for table, relation in tables.items():
        for column, dtype in EXPORT_SCHEMA[table].items():
            if dtype in _BY_VALUE:
                col, text = _q(column), dtype == "VARCHAR"
                parts.append(
                    f"SELECT {_sql_str(f'{table}.{column}')} AS location, "
                    f"{col if text else 'CAST(NULL AS VARCHAR)'} AS text_value, "
                    f"{'CAST(NULL AS BLOB)' if text else col} AS binary_value, count(*) AS rows "
                    f"FROM {relation} GROUP BY {col}"
                )
    return " UNION ALL ".join(parts)


def _value_problems(
    engine: Engine,
    tables: Mapping[str, str],
    allowed_values: Mapping[str, Collection[str]],
) -> list[str]:
    """Every column's checks, counted in rows. Text and binary columns are checked on their
    distinct values (one query over `_VALUES`, grouped by column), so each regular expression
    runs once per distinct value; the other columns on the payload rows, one query per table."""
    checks: list[tuple[str, str, str, str]] = []  # (source, where, what, condition), in order
    for table, relation in tables.items():
        for column, dtype in EXPORT_SCHEMA[table].items():
            where, by_value = f"{table}.{column}", dtype in _BY_VALUE
            value = _BY_VALUE.get(dtype, _q(column))
            found = _column_checks(
                dtype,
                value,
                not_null=(table, column) in NOT_NULL,
                vocabulary=allowed_values.get(where),
            )
            source = _VALUES if by_value else relation
            checks += [(source, where, what, cond) for what, cond in found.items()]
    counts: dict[tuple[str, str], int] = {}  # (where, condition) -> rows
    for source in dict.fromkeys(check[0] for check in checks):
        conditions = list(dict.fromkeys(cond for src, _, _, cond in checks if src == source))
        if source == _VALUES:
            sums = ", ".join(f"sum(rows) FILTER ({cond})" for cond in conditions)
            grouped = engine.to_polars(f"SELECT location, {sums} FROM {_VALUES} GROUP BY location")
            for location, *ns in grouped.iter_rows():
                counts |= {(location, c): n or 0 for c, n in zip(conditions, ns, strict=True)}
        else:
            where = {cond: w for src, w, _, cond in checks if src == source}
            sql = ", ".join(f"count(*) FILTER ({cond})" for cond in conditions)
            row = engine.to_polars(f"SELECT {sql} FROM {source}").row(0)
            counts |= {(where[c], c): n for c, n in zip(conditions, row, strict=True)}
    return [
        f"{where}: {n} {what}"
        for _, where, what, cond in checks
        if (n := counts.get((where, cond), 0))
    ]


def _identifier_problems(engine: Engine, identifier_sources: Mapping[str, str]) -> list[str]:
    """Join the payload's distinct text and binary values to the input identifiers.

    The small `_VALUES` table is the build side, so ten million order ids probe it instead
    of being hashed whole; one probe for text values and one for pseudonyms, where only an
    identifier of exactly REF_BYTES bytes can match (the others are set aside unhashed).
    """
    if not identifier_sources:
        return []
    sources = " UNION ALL ".join(
        f"SELECT {rank} AS rank, {_sql_str(label)} AS label, CAST(value AS VARCHAR) AS value "
        f"FROM ({sql})"
        for rank, (label, sql) in enumerate(identifier_sources.items())
    )
    probes = {  # payload column -> how an identifier matches it
        "text_value": "p.text_value = s.value",
        "binary_value": f"strlen(s.value) = {REF_BYTES} AND p.binary_value = encode(s.value)",
    }
    problems = []
    for column, match in probes.items():
        hits = engine.to_polars(
            f"SELECT s.rank, s.label, p.location, count(DISTINCT p.{column}) AS n "
            f"FROM ({sources}) s JOIN {_VALUES} p ON {match} "
            "GROUP BY ALL ORDER BY s.rank, p.location"
        )
        problems += [
            f"{where}: {n} value(s) equal an input {label}"
            for _, label, where, n in hits.iter_rows()
        ]
    return problems


def check_export_payload(
    engine: Engine,
    tables: Mapping[str, str],
    *,
    identifier_sources: Mapping[str, str] | None = None,
    allowed_values: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Refuse the export unless every check passes.

    `tables` maps payload table names to engine relations; `identifier_sources` maps a label
    (e.g. "customer_id") to SQL selecting the input identifiers as a column named `value`;
    `allowed_values` maps "table.column" to its vocabulary.
    Example: check_export_payload(engine, {"identities": "ids", "activity": "act"},
    identifier_sources={"customer_id": "SELECT customer_id AS value FROM customers"})
    """
    problems = _schema_problems(engine, tables)
    if not problems:  # value checks assume the allow-listed columns exist
        engine.execute("payload values", f"CREATE OR REPLACE TEMP TABLE {_VALUES} AS "
                       + _payload_values_sql(tables))  # fmt: skip
        try:
            problems += _value_problems(engine, tables, allowed_values or {})
            problems += _identifier_problems(engine, identifier_sources or {})
        finally:
            engine.execute("payload values", f"DROP TABLE IF EXISTS {_VALUES}")
    if problems:
        raise PrivacyCheckError("export privacy check failed: " + "; ".join(problems))


def check_export_files(
    engine: Engine,
    files: Mapping[str, Path],
    *,
    identifier_sources: Mapping[str, str] | None = None,
    allowed_values: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Run `check_export_payload` on the Parquet files about to be sealed."""
    views = {}
    for table, path in files.items():
        view = f"_payload_{re.sub(r'[^a-z0-9_]', '_', table.lower())}"
        engine.view_parquet(view, Path(path))
        views[table] = view
    check_export_payload(
        engine, views, identifier_sources=identifier_sources, allowed_values=allowed_values
    )
