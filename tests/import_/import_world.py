"""A maison CRM and return packages sealed by the real processor keys, for import tests."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from return_payload import GLOSSARY, make_aggregates, make_segments

MAISON = "aurelle"
OTHER = "kessler"
N_CUSTOMERS = 300
N_RETURNED = 260  # customers of the CRM present in the return
N_DELETED = 7  # refs whose customer was deleted from the CRM since export


@dataclass
class ImportWorld:
    keydir: Path
    customers: Path
    expected: pl.DataFrame  # customer_id -> the segment and value_tier sealed for it
    tmp: Path

    def seal_return(
        self,
        recipient: str = MAISON,
        name: str = "r",
        batch_id: str = "2026-10",
        as_of: date = date(2026, 10, 31),
    ) -> Path:
        """Seal a fresh return package (new package id) from the processor to `recipient`."""
        from crossgroup.crypto.keys import load_party
        from crossgroup.crypto.package import seal_package
        from crossgroup.crypto.tokens import maison_refs

        processor = load_party(self.keydir / "processor")
        maison = load_party(self.keydir / recipient)
        deleted = pl.Series("customer_id", [f"GONE-{i}" for i in range(N_DELETED)])
        ids = pl.concat([self.expected["customer_id"], deleted])
        segments = make_segments(ids.len(), seed=11).with_columns(
            maison_ref=maison_refs(maison.local_secret, ids)
        )
        # the expected mapping is defined by the rows we seal, then the file is shuffled
        self.expected = (
            segments.head(N_RETURNED)
            .select("segment", "value_tier")
            .with_columns(customer_id=self.expected["customer_id"])
        )
        segments = segments.sample(fraction=1.0, shuffle=True, seed=3)
        folder = self.tmp / f"tables-{name}"
        folder.mkdir(exist_ok=True)
        tables = {
            "segments": segments,
            "aggregates": make_aggregates(segments),
            "glossary": GLOSSARY,
        }
        paths = {}
        for table, frame in tables.items():
            paths[table] = folder / f"{table}.parquet"
            frame.write_parquet(paths[table])
        path, _ = seal_package(
            self.tmp / f"returns-{name}",
            kind="return",
            sender=processor,
            recipient=recipient,
            tables=paths,
            batch_id=batch_id,
            as_of=as_of,
            matching_key_id=processor.registry.matching_key_id,
            summary={"rows": segments.height},
        )
        return path
