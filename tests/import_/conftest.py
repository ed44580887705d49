"""Import fixtures: real keys, a CRM extract and return packages sealed by the processor."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from import_world import MAISON, N_CUSTOMERS, N_RETURNED, OTHER, ImportWorld


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    from crossgroup.crypto.keys import init_keys

    keydir = tmp_path_factory.mktemp("keys") / "keys"
    init_keys(keydir, [MAISON, OTHER])
    return keydir


@pytest.fixture
def world(keydir, tmp_path) -> ImportWorld:
    ids = [f"AU-{i:06d}" for i in range(N_CUSTOMERS)]
    crm = pl.DataFrame(
        {
            "customer_id": ids,
            "first_name": ["Synthetic"] * N_CUSTOMERS,
            "country": ["FR"] * N_CUSTOMERS,
        }
    )
    customers = tmp_path / "customers.parquet"
    crm.sample(fraction=1.0, shuffle=True, seed=5).write_parquet(customers)
    expected = pl.DataFrame({"customer_id": ids[:N_RETURNED]})
    return ImportWorld(keydir, customers, expected, tmp_path)
