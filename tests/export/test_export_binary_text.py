"""The pre-seal check refuses pseudonym columns holding text instead of keyed HMAC output."""

from __future__ import annotations

import random
from datetime import date

import polars as pl
import pytest

from crossgroup.contracts import EXPORT
from crossgroup.engine import DuckDBEngine
from crossgroup.errors import PrivacyCheckError
from crossgroup.privacy.export_checks import check_export_payload

RNG = random.Random(5)
TOKENS = [RNG.randbytes(16) for _ in range(4)]


def identities(**cols) -> pl.DataFrame:
    base = {
        "maison_ref": TOKENS[:2],
        "email_token": [TOKENS[2], None],
        "phone_token": [TOKENS[3], None],
    }
    base.update(cols)
    return pl.DataFrame(base, schema={c: pl.Binary for c in base})


def activity(refs: list[bytes] | None = None) -> pl.DataFrame:
    refs = refs or TOKENS[:2]
    return pl.DataFrame(
        {
            "maison_ref": refs,
            "month": [date(2026, 8, 1)] * 2,
            "group_category": ["Champagne", "Wine"],
            "channel": ["boutique", "online"],
            "orders": [1, 2],
            "amount_eur": [120.5, 30.0],
        },
        schema=EXPORT["activity"].schema,
    )


def check(ids: pl.DataFrame, act: pl.DataFrame) -> None:
    with DuckDBEngine() as engine:
        engine.register("ids", ids)
        engine.register("act", act)
        check_export_payload(engine, {"identities": "ids", "activity": "act"})


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("email_token", b"jane.doe@example"),  # the first 16 bytes of an e-mail
        ("email_token", b"JANE.DOE@EXAMPLE"),
        ("phone_token", b"+33612345678\0\0\0\0"),  # E.164, NUL-padded
        ("phone_token", b"06 12 34 56 78  "),
        ("maison_ref", b"cust-000123\0\0\0\0\0"),
    ],
)
def test_text_in_a_pseudonym_column_is_refused_without_echoing_it(column, value):
    assert len(value) == 16
    ids = identities(**{column: [TOKENS[0] if column != "maison_ref" else TOKENS[1], value]})
    with pytest.raises(PrivacyCheckError) as info:
        check(ids, activity())
    message = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in message
    assert f"identities.{column}: 1 value(s) read as text, not as a keyed pseudonym" in message
    assert value.decode().strip("\0 ") not in message


def test_text_in_the_activity_ref_is_refused():
    with pytest.raises(PrivacyCheckError, match=r"activity\.maison_ref: 1 value\(s\) read as text"):
        check(identities(), activity([TOKENS[0], b"CUST-000123\0\0\0\0\0"]))


def test_random_pseudonyms_pass():
    """HMAC-like bytes, 20,000 of them (fixed seed), are never taken for text."""
    rng = random.Random(29)
    refs = [rng.randbytes(16) for _ in range(20_000)]
    ids = pl.DataFrame(
        {"maison_ref": refs, "email_token": refs[::-1], "phone_token": refs[1:] + refs[:1]},
        schema={c: pl.Binary for c in ("maison_ref", "email_token", "phone_token")},
    )
    check(ids, activity())
