"""The data contracts, stated once: what crosses between parties and what an analyst gets.

DESIGN §4.3 (export), §4.4 (return) and §4.5 (analyst file). Every schema, allow-list, SQL
column list and identifier size elsewhere is derived from the tables below, so a column
cannot be added to what leaves a party without changing this page (and the register, the
export and release checks and the import all follow it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

# maison_ref, email_token and phone_token: HMAC-SHA256 truncated to 128 bits (DESIGN §2).
REF_BYTES = 16
# Every amount a package carries is a finite EUR figure below this in magnitude (an activity
# cell's net spend; world output is about 1e14 EUR a year). The export refuses anything else
# and the processor checks it again, so the processor's sums of whole cents stay exact.
AMOUNT_LIMIT_EUR = 1e15
# Purchases exported: (as-of - WINDOW_YEARS years, as-of] (DESIGN §5.2).
WINDOW_YEARS = 3

# DuckDB's name for each Polars type used in a contract (the export checks read DuckDB).
_SQL_TYPES = {
    pl.Binary: "BLOB",
    pl.Date: "DATE",
    pl.String: "VARCHAR",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: type[pl.DataType]
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    """One table of a contract: its columns in order, with types and nullability."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def schema(self) -> dict[str, type[pl.DataType]]:
        """The Polars schema, for building or casting frames."""
        return {c.name: c.dtype for c in self.columns}

    @property
    def sql_types(self) -> dict[str, str]:
        """Column -> DuckDB type name, for checking files read by the engine."""
        return {c.name: _SQL_TYPES[c.dtype] for c in self.columns}

    @property
    def not_null(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.nullable)

    def sql_list(self, alias: str | None = None) -> str:
        """`a.x, a.y, ...`: the columns in contract order, for a SELECT list."""
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + n for n in self.names)


def _binary(name: str, nullable: bool = True) -> Column:
    return Column(name, pl.Binary, nullable)


def _text(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, pl.String) for n in names)


def _tables(*tables: Table) -> Mapping[str, Table]:
    return {t.name: t for t in tables}


# ---------------------------------------------------------------- export (maison -> processor)

IDENTIFIER_COLUMNS = (_binary("maison_ref", False), _binary("email_token"), _binary("phone_token"))
EXPORT: Mapping[str, Table] = _tables(
    Table("identities", IDENTIFIER_COLUMNS),
    Table(
        "activity",
        (
            _binary("maison_ref", False),
            Column("month", pl.Date, False),
            *_text("group_category", "channel"),
            Column("orders", pl.Int32),
            Column("amount_eur", pl.Float64),
        ),
    ),
)
# An erasure package (maison -> processor) names the identifiers of withdrawn customers.
ERASURE: Mapping[str, Table] = _tables(Table("erased", IDENTIFIER_COLUMNS))

# ---------------------------------------------------------------- return (processor -> maison)

# The generalized attributes of a returned person, in contract order (all banded text).
RETURNED_ATTRIBUTES = (
    "value_tier",
    "breadth",
    "recency_band",
    "frequency_band",
    "channel_preference",
    "lead_sector",
    "second_sector",
)
_SEGMENT_ATTRIBUTES = (
    Column("segment", pl.Int32),
    Column("segment_label", pl.String),
    *_text(*RETURNED_ATTRIBUTES),
    Column("generalized", pl.String),  # which attributes were coarsened or withheld
)
# Aggregate tables keyed by a released sector name, and the cell column the name sits in: the
# sector-naming rule (no name that stands for a single maison) applies to them as to
# lead_sector and second_sector.
OTHER_SECTOR_TABLE = "other_sector_spend"
AFFINITY_TABLES = ("sector_affinity", "segment_sector_affinity")
SECTOR_KEYS = {
    "sector_affinity": "row_key",
    "segment_sector_affinity": "col_key",  # row_key: the segment label
    OTHER_SECTOR_TABLE: "row_key",
}
# One aggregate cell: the shape of every aggregate table, returned or kept as a report.
CELLS = Table(
    "aggregates",
    (
        *_text("table", "scope", "row_key", "col_key"),
        Column("persons", pl.Int64),
        Column("share", pl.Float64),
        Column("suppressed", pl.Boolean),
        Column("note", pl.String),
        # half-width of the 95 % interval of a noisy count (DP mode's group-wide cells,
        # privacy/noise.py); null for an exact count
        Column("margin", pl.Float64),
    ),
)
RETURN: Mapping[str, Table] = _tables(
    Table("segments", (_binary("maison_ref", False), *_SEGMENT_ATTRIBUTES)),
    CELLS,
    Table("glossary", (Column("segment", pl.Int32), *_text("segment_label", "description"))),
)

# ---------------------------------------------------------------- analyst file (after import)

ANALYST_SEGMENTS = Table(
    "segments", (Column("customer_id", pl.String, False), *_SEGMENT_ATTRIBUTES)
)

# What changed since the previous import (issue 15): one cell per (kind, from, to), computed by
# the maison from its previous and new segments files. `kind` is one of CHANGE_KINDS; a
# transition has both segments (the same one for a customer who stayed), `new` only `to_`, and
# `no_longer_returned` only `from_`. A null segment on a side the kind has is a customer whose
# segment was not released. `customers` is null when the cell is suppressed (`note` says why).
CHANGE_KINDS = ("transition", "new", "no_longer_returned")
ANALYST_CHANGES = Table(
    "changes",
    (
        Column("kind", pl.String, False),
        Column("from_segment", pl.Int32),
        Column("from_label", pl.String),
        Column("to_segment", pl.Int32),
        Column("to_label", pl.String),
        Column("customers", pl.Int64),
        Column("suppressed", pl.Boolean, False),
        Column("note", pl.String),
    ),
)
