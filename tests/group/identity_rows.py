"""Crafted identity rows for resolution tests: labels in, the identities contract out."""

from __future__ import annotations

import hashlib

import polars as pl


def tok(label: str | None) -> bytes | None:
    return None if label is None else hashlib.sha256(label.encode()).digest()[:16]


def identities(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    """(maison, ref label, email label, phone label) -> the identities contract."""
    return pl.DataFrame(
        {
            "maison": [r[0] for r in rows],
            "maison_ref": [tok("ref:" + r[0] + r[1]) for r in rows],
            "email_token": [tok(r[2]) for r in rows],
            "phone_token": [tok(r[3]) for r in rows],
        },
        schema={
            "maison": pl.String,
            "maison_ref": pl.Binary,
            "email_token": pl.Binary,
            "phone_token": pl.Binary,
        },
    )
