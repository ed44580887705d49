"""One small synthetic world (3,000 persons in 3 chunks), generated once for the synth tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from crossgroup.config import MaisonConfig, demo_maisons
from crossgroup.synth.writer import SynthSummary, write_world

PERSONS = 3_000
SEED = 11
AS_OF = date(2026, 9, 30)


@dataclass
class World:
    root: Path
    maisons: list[MaisonConfig]
    summary: SynthSummary
    customers: pl.DataFrame  # all maisons, with a `maison` column
    purchases: pl.DataFrame  # all maisons, with a `maison` column
    truth: pl.DataFrame


def _read_all(root: Path, name: str, maisons: list[MaisonConfig]) -> pl.DataFrame:
    return pl.concat(
        [
            pl.read_parquet(root / m.id / f"{name}.parquet").with_columns(maison=pl.lit(m.id))
            for m in maisons
        ]
    )


@pytest.fixture(scope="session")
def synth_world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("synth") / "world"
    maisons = demo_maisons()
    summary = write_world(
        root, maisons, persons=PERSONS, seed=SEED, as_of=AS_OF, chunk_persons=1_000
    )
    return World(
        root,
        maisons,
        summary,
        _read_all(root, "customers", maisons),
        _read_all(root, "purchases", maisons),
        pl.read_parquet(root / "truth.parquet"),
    )
