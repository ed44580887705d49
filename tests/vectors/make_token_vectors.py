"""Regenerate tokens_v1.json: run only when the published spec (docs/normalization.md) changes.

Keys and tokens are computed here with the standard library and `cryptography` HKDF only,
independently of crossgroup's batch HMAC; normalized values come from crossgroup's
normalizers and were checked by hand against the spec. The test in tests/crypto compares the
library against this frozen file, so any change to the rules fails loudly.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crossgroup.crypto.tokens import normalize_email, normalize_phone

MATCHING_SECRET = bytes(range(32))  # test secret: 000102...1f
LOCAL_SECRET = bytes(range(32, 64))  # test secret: 202122...3f
EPOCH = 1

EMAILS = [
    "jean.dupont@example.com",
    "  Jean.Dupont@Example.COM ",
    "JEAN.DUPONT@EXAMPLE.COM\t",
    "\u00a0jean.dupont@example.com\u3000",
    "ｊｅａｎ．ｄｕｐｏｎｔ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    "Jean.Dupont+news@gmail.com",
    "Élodie.Müller@Exemple.fr",
    "E\u0301lodie.mu\u0308ller@exemple.fr",
    "o'brien@example.ie",
    # U+A7CB (Unicode 16.0) and U+A7CE (17.0): lower-cased as the pinned Polars does
    # (Unicode 17.0, docs/normalization.md §3); Python 3.11 (Unicode 14.0) leaves both as is.
    "\ua7cb\ua7ce.test@example.com",
    "not-an-email",
    "two@@example.com",
    "dot.@example.com",
    "a..b@example.com",
    "user@localhost",
    "user@example.c",
    "user name@example.com",
    "",
]
PHONES = [
    ("06 12 34 56 78", "FR"),
    ("+33 6 12 34 56 78", "FR"),
    ("+33 (0)6 12 34 56 78", None),
    ("0033612345678", "FR"),
    ("06.12.34.56.78", "fr"),
    ("+33612345678", "DE"),
    ("(212) 555-0123", "US"),
    ("+1 212-555-0123", None),
    ("020 7946 0018", "GB"),
    ("+44 20 7946 0018", None),
    ("+39 06 6982 1234", None),
    ("０６ １２ ３４ ５６ ７８", "FR"),
    ("06 12 34 56 78", None),
    ("12345", "FR"),
    ("+33 1", None),
    ("call me", "FR"),
    ("", "FR"),
]


def _key(secret: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode()).derive(secret)


def main() -> None:
    k_email = _key(MATCHING_SECRET, f"crossgroup/v1/token/email/epoch/{EPOCH}")
    k_phone = _key(MATCHING_SECRET, f"crossgroup/v1/token/phone/epoch/{EPOCH}")
    k_ref = _key(LOCAL_SECRET, "crossgroup/v1/maison-ref")

    def token(key: bytes, value: str | None) -> str | None:
        return None if value is None else hmac.digest(key, value.encode(), "sha256")[:16].hex()

    doc = {
        "source": "crossgroup normalization and token spec v1 (docs/normalization.md); tokens "
        "computed by tests/vectors/make_token_vectors.py with hmac.digest and cryptography "
        "HKDF, independently of the batch kernel",
        "matching_secret": MATCHING_SECRET.hex(),
        "epoch": EPOCH,
        "local_secret": LOCAL_SECRET.hex(),
        "keys": {"email": k_email.hex(), "phone": k_phone.hex(), "maison_ref": k_ref.hex()},
        "emails": [
            {"raw": raw, "normalized": (n := normalize_email(raw)), "token": token(k_email, n)}
            for raw in EMAILS
        ],
        "phones": [
            {
                "raw": raw,
                "country": c,
                "normalized": (n := normalize_phone(raw, c)),
                "token": token(k_phone, n),
            }
            for raw, c in PHONES
        ],
        "maison_refs": [
            {"customer_id": cid, "maison_ref": token(k_ref, cid)}
            for cid in ["C000001", "C000002", "crm-42", "Ünïcode-ID"]
        ],
    }
    out = Path(__file__).with_name("tokens_v1.json")
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
