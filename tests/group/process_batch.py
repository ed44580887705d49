"""Real test batches for the processor: keys from `init_keys`, crafted export tables sealed
with `seal_package` to the processor, and a small pipeline file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from crossgroup.config import load_taxonomy

MAISONS = ["aurelle", "kessler", "vautrin"]
AS_OF = date(2026, 6, 30)


@dataclass
class BatchFiles:
    keys: Path  # KEYDIR (processor dir is keys / "processor")
    inbox: Path
    pipeline: Path
    tables: dict[str, dict[str, Path]]  # maison -> table -> plaintext parquet (test side only)


def _bytes16(rng: np.random.Generator, n: int) -> list[bytes]:
    raw = rng.bytes(16 * n)
    return [raw[i * 16 : (i + 1) * 16] for i in range(n)]


def craft_exports(
    maisons: list[str], *, n_persons: int = 600, seed: int = 1, as_of: date = AS_OF
) -> dict[str, dict[str, pl.DataFrame]]:
    """Identities and activity per maison, following the export contract; persons shared
    across maisons through a common email token."""
    rng = np.random.default_rng(seed)
    categories = list(load_taxonomy().category_sector())
    emails = _bytes16(rng, n_persons)
    favourite = rng.integers(0, len(categories), n_persons)
    out = {}
    for mi, maison in enumerate(maisons):
        # everyone shops at the first maison; fewer at the others: breadth 1..3
        present = np.flatnonzero(rng.random(n_persons) < (1.0 if mi == 0 else 0.35))
        refs = _bytes16(rng, len(present))
        identities = pl.DataFrame(
            {
                "maison_ref": refs,
                "email_token": [emails[p] for p in present],
                "phone_token": [None] * len(present),
            },
            schema={"maison_ref": pl.Binary, "email_token": pl.Binary, "phone_token": pl.Binary},
        )
        lines = rng.integers(1, 6, len(present))
        owner = np.repeat(np.arange(len(present)), lines)
        months_back = rng.integers(0, 36, owner.size)
        month = [
            date((as_of.year * 12 + as_of.month - 1 - b) // 12, (as_of.month - 1 - b) % 12 + 1, 1)
            for b in months_back
        ]
        cat = np.where(
            rng.random(owner.size) < 0.7,
            favourite[present][owner],
            rng.integers(0, len(categories), owner.size),
        )
        activity = pl.DataFrame(
            {
                "maison_ref": [refs[o] for o in owner],
                "month": month,
                "group_category": [categories[c] for c in cat],
                "channel": rng.choice(
                    ["boutique", "online", "other"], owner.size, p=[0.6, 0.35, 0.05]
                ),
                "orders": rng.integers(1, 4, owner.size).astype(np.int32),
                "amount_eur": np.round(rng.lognormal(6.5, 1.0, owner.size), 2),
            },
            schema_overrides={"orders": pl.Int32, "month": pl.Date},
        ).unique(["maison_ref", "month", "group_category", "channel"], keep="first")
        out[maison] = {"identities": identities, "activity": activity.sort(pl.all())}
    return out


def write_pipeline(path: Path, maisons: list[str], *, k: int = 5, k_aggregate: int = 20) -> Path:
    path.write_text(
        f"[batch]\nmaisons = {list(maisons)!r}\n"
        f"[privacy]\nk = {k}\nk_aggregate = {k_aggregate}\nmax_records_per_token = 3\n"
        "[segmentation]\nn_segments = 3\nmin_segments = 2\nmax_segments = 4\n"
        "sample_size = 5000\nrandom_state = 7\n"
        '[engine]\nmemory_limit = "1GB"\nthreads = 1\n'.replace("'", '"'),
        encoding="utf-8",
    )
    return path


def seal_exports(
    keys_dir: Path,
    inbox: Path,
    tables: dict[str, dict[str, Path]],
    *,
    as_of: date = AS_OF,
    batch_id: str = "2026-06",
) -> list[Path]:
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import seal_package

    inbox.mkdir(parents=True, exist_ok=True)
    sealed = []
    for maison, paths in tables.items():
        keys = load_party(keys_dir / maison)
        path, _ = seal_package(
            inbox,
            kind="export",
            sender=keys,
            recipient=keys.registry.processor_id,
            tables=paths,
            batch_id=batch_id,
            as_of=as_of,
            matching_key_id=keys.matching.key_id,
        )
        sealed.append(path)
    return sealed


def build_batch(root: Path, maisons: list[str] = MAISONS, **kw) -> BatchFiles:
    """Keys for every maison, their exports sealed into root/inbox, and a pipeline file."""
    from crossgroup.crypto.keys import init_keys

    keys = root / "keys"
    init_keys(keys, list(maisons))
    plain = root / "plain"
    tables: dict[str, dict[str, Path]] = {}
    for maison, frames in craft_exports(list(maisons), **kw).items():
        folder = plain / maison
        folder.mkdir(parents=True, exist_ok=True)
        tables[maison] = {}
        for name, frame in frames.items():
            tables[maison][name] = folder / f"{name}.parquet"
            frame.write_parquet(tables[maison][name])
    seal_exports(keys, root / "inbox", tables)
    return BatchFiles(keys, root / "inbox", write_pipeline(root / "group.toml", maisons), tables)


def secret_needles(tables: dict[str, dict[str, Path]]) -> set[bytes]:
    """Every token and ref of the inputs (16 raw bytes each), read from the plaintext tables:
    none may appear, in any encoding, in what the processor keeps (tests/leak_scan.py)."""
    needles: set[bytes] = set()
    for paths in tables.values():
        ident = pl.read_parquet(paths["identities"])
        for col in ("maison_ref", "email_token", "phone_token"):
            needles.update(ident.get_column(col).drop_nulls().to_list())
    return needles


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_returns(batch, out: Path, tmp: Path) -> dict[str, dict[str, pl.DataFrame]]:
    """Every maison's return package in `out`, opened with its own keys into `tmp`."""
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import open_package

    opened = {}
    for maison in MAISONS:
        (package,) = (out / "returns" / maison).glob("*.cgpkg")
        target = tmp / "opened" / maison
        target.mkdir(parents=True)
        result = open_package(package, load_party(batch.keys / maison), target, kind="return")
        opened[maison] = {n: pl.read_parquet(p) for n, p in result.tables.items()}
    return opened
