"""Hardware ceilings the flow's stages are compared with, measured in the same run.

- tokenization: `bench_tokens.py` in a child (the batch HMAC kernel, a plain hmac.digest
  loop and `openssl speed -hmac sha256`, one core);
- packages: raw in-memory AES-256-GCM (cryptography AESGCM over 1 MiB chunks) vs the
  export's seal step and the processor's verify + decrypt;
- resolution: DuckDB's bare scan of the plaintext export Parquet (count(*) + sum over all
  activity files, and a scan of all identities) vs the processor's resolve stage.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from _harness import ROOT, crossgroup_cmd, measure

MIB = 1024**2


def tokenization(values: int, phones: int) -> dict:
    """bench_tokens at `values` distinct emails, run as a child; its JSON result."""
    run = measure(
        [
            sys.executable,
            str(ROOT / "benchmarks/bench_tokens.py"),
            "--n",
            str(values),
            "--phones",
            str(phones),
            "--repeat",
            "1",
        ],
        label="bench_tokens",
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(run.wall_s, 2)
    return result


def aes_gcm(mib: int) -> dict:
    """Raw AES-256-GCM MiB/s over `mib` 1 MiB chunks, in memory, one thread (best of 3)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    chunk = os.urandom(MIB)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(mib):
            aead.encrypt(i.to_bytes(12, "big"), chunk, None)
        best = min(best, time.perf_counter() - started)
    return {"mib": mib, "encrypt_mib_per_s": round(mib / best, 1)}


def open_packages(packages: dict[str, Path], processor_keys: Path, out: Path) -> dict[str, Path]:
    """Decrypt each export package with `crossgroup open` (not timed).

    The process run has accepted these packages, so open refuses them as replays under the
    processor's own ledger: an auditor's copy of the key directory without it opens them.
    """
    from crossgroup.crypto.ledger import LEDGER

    auditor = out.parent / "auditor-keys"
    shutil.copytree(processor_keys, auditor)
    (auditor / LEDGER).unlink(missing_ok=True)
    opened = {}
    for maison, package in packages.items():
        folder = out / maison
        measure(
            crossgroup_cmd("open", "--package", package, "--keys", auditor, "--out", folder),
            label="open",
        )
        opened[maison] = folder
    return opened


def duckdb_scan(opened: dict[str, Path], threads: int = 2) -> dict:
    """Best-of-3 seconds of DuckDB scanning the export tables as the processor reads them."""
    from crossgroup.engine import DuckDBEngine

    def files(table: str) -> str:
        return "[" + ", ".join(f"'{p / f'{table}.parquet'}'" for p in opened.values()) + "]"

    queries = {
        "activity": f"SELECT count(*), sum(amount_eur) FROM read_parquet({files('activity')})",
        "identities": (
            "SELECT count(*), count(DISTINCT email_token), count(DISTINCT phone_token) "
            f"FROM read_parquet({files('identities')})"
        ),
    }
    out: dict = {}
    with DuckDBEngine(memory_limit="4GB", threads=threads) as engine:
        for name, sql in queries.items():
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                engine.to_polars(sql)
                best = min(best, time.perf_counter() - started)
            out[f"{name}_scan_s"] = round(best, 4)
        out["activity_rows"] = int(
            engine.scalar(f"SELECT count(*) FROM read_parquet({files('activity')})")
        )
        out["identity_rows"] = int(
            engine.scalar(f"SELECT count(*) FROM read_parquet({files('identities')})")
        )
    out["activity_rows_per_s"] = round(out["activity_rows"] / max(out["activity_scan_s"], 1e-9))
    return out


def measure_all(
    packages: dict[str, Path],
    processor_keys: Path,
    work: Path,
    *,
    token_values: int,
    token_phones: int,
) -> dict:
    """Every ceiling of this module; package MiB sets the AES-GCM volume (at least 64 MiB)."""
    package_mib = sum(p.stat().st_size for p in packages.values()) / MIB
    opened = open_packages(packages, processor_keys, work / "opened")
    return {
        "tokenization": tokenization(token_values, token_phones),
        "aes_gcm": aes_gcm(max(64, min(1024, round(package_mib)))),
        "duckdb_scan": duckdb_scan(opened),
    }


if __name__ == "__main__":  # a quick look: python benchmarks/_ceilings.py
    sys.path.insert(0, str(Path(__file__).parent))
    print(json.dumps({"aes_gcm": aes_gcm(64)}, indent=2))
