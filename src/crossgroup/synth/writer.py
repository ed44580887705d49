"""Run the generator chunk by chunk and stream every maison's tables to Parquet.

Memory stays flat in the number of persons: each chunk of persons is generated, appended as
row groups to one ParquetWriter per output file, and dropped. Chunk i draws from
SeedSequence(seed).spawn(n_chunks)[i], so its content depends only on the seed, the chunk
size and its index; files are written in chunk order, so a re-run is byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from crossgroup.config import FxTable, MaisonConfig, Taxonomy, load_fx, load_taxonomy
from crossgroup.errors import InputError
from crossgroup.synth import world
from crossgroup.synth.customers import CUSTOMER_COLUMNS, generate_customers
from crossgroup.synth.maisons import maison_toml, plan_maisons
from crossgroup.synth.persons import generate_persons
from crossgroup.synth.purchases import PURCHASE_COLUMNS, generate_purchases

CUSTOMERS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("country", pa.string()),
        ("cross_group_consent", pa.bool_()),
        ("consent_updated_at", pa.timestamp("us")),
        ("restricted", pa.bool_()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("birth_date", pa.date32()),
        ("address", pa.string()),
    ]
)
PURCHASES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("order_id", pa.string()),
        ("purchased_at", pa.timestamp("us")),
        ("category", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("currency", pa.string()),
        ("channel", pa.string()),
    ]
)
assert tuple(CUSTOMERS_SCHEMA.names) == CUSTOMER_COLUMNS
assert tuple(PURCHASES_SCHEMA.names) == PURCHASE_COLUMNS
TRUTH_SCHEMA = pa.schema(
    [
        ("maison", pa.string()),
        ("customer_id", pa.string()),
        ("person_id", pa.int64()),
        ("archetype", pa.string()),
    ]
)


@dataclass
class MaisonCounts:
    customers: int = 0
    purchase_lines: int = 0


@dataclass
class SynthSummary:
    persons: int
    chunks: int
    maisons: dict[str, MaisonCounts] = field(default_factory=dict)

    @property
    def customers(self) -> int:
        return sum(c.customers for c in self.maisons.values())

    @property
    def purchase_lines(self) -> int:
        return sum(c.purchase_lines for c in self.maisons.values())


def _writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    return pq.ParquetWriter(path, schema, compression="zstd")


def _write(writer: pq.ParquetWriter, frame: pl.DataFrame, schema: pa.Schema) -> None:
    writer.write_table(frame.select(schema.names).to_arrow().cast(schema))


def check_arguments(*, persons: int, seed: int, chunk_persons: int) -> None:
    """Refuse arguments the generator cannot honour, before anything is written."""
    if not 1 <= persons <= world.MAX_PERSONS:
        raise InputError(f"--persons must be between 1 and {world.MAX_PERSONS:,}")
    if seed < 0:
        raise InputError("--seed must be a non-negative integer")
    if chunk_persons < 1:
        raise InputError("--chunk-persons must be a positive number of persons")


def write_world(
    out: Path,
    configs: list[MaisonConfig],
    *,
    persons: int = world.DEFAULT_PERSONS,
    seed: int = world.DEFAULT_SEED,
    as_of: date = world.DEFAULT_AS_OF,
    chunk_persons: int = world.CHUNK_PERSONS,
    taxonomy: Taxonomy | None = None,
    fx: FxTable | None = None,
    on_chunk: Callable[[int, int, SynthSummary], None] | None = None,
) -> SynthSummary:
    """Write DIR/<maison>/{customers,purchases}.parquet, maison.toml and DIR/truth.parquet.

    `on_chunk(done, total, summary)` is called after every chunk (for progress display).
    Example: write_world(Path("synthetic"), demo_maisons(), persons=10_000, seed=7)
    """
    if not configs:
        raise InputError("--maisons must be at least 1")
    check_arguments(persons=persons, seed=seed, chunk_persons=chunk_persons)
    taxonomy = taxonomy or load_taxonomy()
    fx = fx or load_fx()
    missing = sorted({c.currency for c in world.COUNTRIES} - set(fx.eur_per_unit))
    if missing:
        raise InputError(f"fx.toml has no rate for synthetic currencies: {', '.join(missing)}")
    plans = plan_maisons(configs, taxonomy, seed)
    n_chunks = -(-persons // chunk_persons)
    chunk_seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    summary = SynthSummary(persons, n_chunks, {p.id: MaisonCounts() for p in plans})

    for p in plans:
        (out / p.id).mkdir(parents=True, exist_ok=True)
        (out / p.id / "maison.toml").write_text(maison_toml(p.config), encoding="utf-8")
    customer_writers = [_writer(out / p.id / "customers.parquet", CUSTOMERS_SCHEMA) for p in plans]
    purchase_writers = [_writer(out / p.id / "purchases.parquet", PURCHASES_SCHEMA) for p in plans]
    truth_writer = _writer(out / "truth.parquet", TRUTH_SCHEMA)
    try:
        for i, chunk_seed in enumerate(chunk_seeds):
            person_rng, customer_rng, purchase_rng, order_rng = (
                np.random.default_rng(s) for s in chunk_seed.spawn(4)
            )
            first = i * chunk_persons
            n = min(chunk_persons, persons - first)
            chunk = generate_persons(person_rng, first, n, persons, plans, seed, as_of)
            customers = generate_customers(customer_rng, chunk, plans, as_of)
            purchases = generate_purchases(purchase_rng, customers, chunk, plans, as_of, fx)
            for p in plans:
                mine = customers.filter(pl.col("_maison") == p.index)
                # Shuffle within the chunk so row order says nothing across maisons.
                mine = mine[order_rng.permutation(mine.height)]
                lines = purchases.filter(pl.col("_maison") == p.index)
                _write(customer_writers[p.index], mine, CUSTOMERS_SCHEMA)
                _write(purchase_writers[p.index], lines, PURCHASES_SCHEMA)
                truth = mine.select(
                    pl.lit(p.id).alias("maison"), "customer_id", "person_id", "archetype"
                )
                _write(truth_writer, truth, TRUTH_SCHEMA)
                counts = summary.maisons[p.id]
                counts.customers += mine.height
                counts.purchase_lines += lines.height
            if on_chunk:
                on_chunk(i + 1, n_chunks, summary)
    finally:
        for w in (*customer_writers, *purchase_writers, truth_writer):
            w.close()
    return summary
