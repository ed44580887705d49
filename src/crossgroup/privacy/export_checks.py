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

from crossgroup.contracts import EXPORT, REF_BYTES
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


def _value_problems(
    engine: Engine,
    tables: Mapping[str, str],
    allowed_values: Mapping[str, Collection[str]],
) -> list[str]:
    problems = []
    for table, relation in tables.items():
        for column, dtype in EXPORT_SCHEMA[table].items():
            col, where = _q(column), f"{table}.{column}"
            checks: dict[str, str] = {}
            if (table, column) in NOT_NULL:
                checks["null value(s)"] = f"{col} IS NULL"
            if dtype == "BLOB":
                checks[f"value(s) not exactly {REF_BYTES} bytes"] = (
                    f"{col} IS NOT NULL AND octet_length({col}) <> {REF_BYTES}"
                )
                checks["value(s) read as text, not as a keyed pseudonym"] = (
                    f"regexp_full_match(CAST({col} AS VARCHAR), {_sql_str(BINARY_TEXT)})"
                )
            elif dtype == "VARCHAR":
                checks["value(s) look like an email"] = (
                    f"regexp_matches({col}, {_sql_str(EMAIL_SHAPED)})"
                )
                checks["value(s) look like a phone number"] = (
                    f"regexp_matches(regexp_replace({col}, {_sql_str(ISO_DATE_TIME)}, ' ', 'g'),"
                    f" {_sql_str(PHONE_SHAPED)})"
                )
                if where in allowed_values:
                    listed = ", ".join(_sql_str(v) for v in sorted(allowed_values[where]))
                    checks["value(s) outside the allowed vocabulary"] = (
                        f"{col} IS NOT NULL AND {col} NOT IN ({listed})"
                    )
            elif dtype == "DATE":
                checks["exact date(s) instead of a month"] = f"day({col}) <> 1"
            elif dtype == "DOUBLE":
                checks["value(s) not finite (NaN or infinity)"] = f"NOT isfinite({col})"
            if not checks:
                continue
            sql = ", ".join(f"count(*) FILTER ({cond})" for cond in checks.values())
            counts = engine.to_polars(f"SELECT {sql} FROM {relation}").row(0)
            problems += [
                f"{where}: {n} {what}" for what, n in zip(checks, counts, strict=True) if n
            ]
    return problems


def _identifier_problems(
    engine: Engine, tables: Mapping[str, str], identifier_sources: Mapping[str, str]
) -> list[str]:
    """Anti-join every text and binary payload column against the input identifiers.

    The payload's distinct values are gathered first (a few category and channel names,
    the pseudonyms), so each identifier source is scanned once per type and never hashed
    whole: ten million order ids probe a small table instead of building a large one.
    """
    if not identifier_sources:
        return []
    parts = {"VARCHAR": [], "BLOB": []}
    for table, relation in tables.items():
        for column, dtype in EXPORT_SCHEMA[table].items():
            if dtype in parts:
                parts[dtype].append(
                    f"SELECT DISTINCT {_sql_str(f'{table}.{column}')} AS location, "
                    f"{_q(column)} AS value FROM {relation} WHERE {_q(column)} IS NOT NULL"
                )
    probes = {
        "VARCHAR": "p.value = s.value",
        # only an identifier of exactly 16 bytes can equal a pseudonym
        "BLOB": f"strlen(s.value) = {REF_BYTES} AND p.value = encode(s.value)",
    }
    problems = []
    try:
        for dtype, selects in parts.items():
            engine.execute(
                "identifier check",
                f"CREATE OR REPLACE TEMP TABLE _payload_{dtype.lower()} AS "
                + " UNION ALL ".join(selects),
            )
            for label, sql in identifier_sources.items():
                hits = engine.to_polars(
                    f"SELECT p.location, count(DISTINCT p.value) AS n "
                    f"FROM (SELECT CAST(value AS VARCHAR) AS value FROM ({sql})) s "
                    f"JOIN _payload_{dtype.lower()} p ON {probes[dtype]} "
                    f"GROUP BY p.location ORDER BY p.location"
                )
                problems += [
                    f"{where}: {n} value(s) equal an input {label}" for where, n in hits.iter_rows()
                ]
    finally:
        for dtype in parts:
            engine.execute("identifier check", f"DROP TABLE IF EXISTS _payload_{dtype.lower()}")
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
        problems += _value_problems(engine, tables, allowed_values or {})
        problems += _identifier_problems(engine, tables, identifier_sources or {})
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
