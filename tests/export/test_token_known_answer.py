"""Known answer from synthetic customers to the tokens of a real export package.

A tiny CRM with emails and phones written in several formats is exported by the real export
and opened as the processor would; every identities row must carry exactly the maison_ref
and tokens computed here with `hmac` and RFC 5869 HKDF from docs/normalization.md, from the
key bytes in the maison's key files and normalized values written out by hand. Nothing of
crossgroup computes an expected value (only `load_party` reads the key files), so an unkeyed
hash, a wrong HKDF label, swapped email and phone keys or a normalization change all fail.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # leak_scan: the test-side spec

from leak_scan import email_key, hmac16, phone_key, ref_key

AS_OF = date(2026, 9, 30)
VECTORS = Path(__file__).parents[1] / "vectors" / "tokens_v1.json"

# customer_id -> (raw email, raw phone, country, normalized email, normalized phone), the
# normalized forms written by hand from docs/normalization.md §3 (NFKC, trim, lower-case,
# shape) and §4 (country as default region, E.164); None = no token
CRM = {
    "KA-1": ("  Jean.Dupont@Example.COM ", "06 12 34 56 78", "FR",
             "jean.dupont@example.com", "+33612345678"),
    "KA-2": ("MARIE.CURIE@EXAMPLE.ORG\t", "+33 (0)6 98 76 54 32", "FR",
             "marie.curie@example.org", "+33698765432"),
    # full-width letters: the same person's email as KA-1 once NFKC-normalized
    "KA-3": ("ｊｅａｎ．ｄｕｐｏｎｔ＠ｅｘａｍｐｌｅ．ｃｏｍ", "0033 6 11 22 33 44", " fr ",
             "jean.dupont@example.com", "+33611223344"),
    "KA-4": (None, "(212) 555-0123", "US", None, "+12125550123"),
    # a leading + ignores the (wrong) country; the national prefix 0 is dropped
    "KA-5": ("E\u0301lodie@Example.FR", "+44 07911 123456", "FR",
             "\u00e9lodie@example.fr", "+447911123456"),
    # not email-shaped, too few digits: no token at all
    "KA-6": ("a..b@example.com", "12", "FR", None, None),
    # a national number with no country to read it in: no phone token
    "KA-7": ("zoe@example.co.uk", "06 55 44 33 22", None, "zoe@example.co.uk", None),
}  # fmt: skip


def test_the_test_side_keys_are_the_published_vectors():
    """The HKDF and labels used below reproduce the frozen vectors' keys and a token."""
    v = json.loads(VECTORS.read_text(encoding="utf-8"))
    matching, local = bytes.fromhex(v["matching_secret"]), bytes.fromhex(v["local_secret"])
    assert email_key(matching, v["epoch"]).hex() == v["keys"]["email"]
    assert phone_key(matching, v["epoch"]).hex() == v["keys"]["phone"]
    assert ref_key(local).hex() == v["keys"]["maison_ref"]
    first = v["emails"][0]
    assert hmac16(email_key(matching, 1), first["normalized"]).hex() == first["token"]


def test_export_tokens_equal_hmac_of_the_hand_normalized_values(export_world, crm, keydir):
    from crossgroup.crypto.keys import load_party  # reads the key files; computes nothing

    customers = [
        crm.customer(cid, email=email, phone=phone, country=country)
        for cid, (email, phone, country, _, _) in CRM.items()
    ]
    purchases = [crm.purchase(cid, f"O-{cid}", date(2026, 5, 2)) for cid in CRM]
    out = export_world(customers, purchases, AS_OF)

    keys = load_party(keydir / "aurelle")
    k_ref = ref_key(keys.local_secret)
    k_email = email_key(keys.matching.secret, keys.matching.epoch)
    k_phone = phone_key(keys.matching.secret, keys.matching.epoch)
    expected = {
        (
            hmac16(k_ref, cid),
            None if email is None else hmac16(k_email, email),
            None if phone is None else hmac16(k_phone, phone),
        )
        for cid, (_, _, _, email, phone) in CRM.items()
    }
    rows = set(out.identities.select("maison_ref", "email_token", "phone_token").iter_rows())
    assert out.identities.height == len(CRM)
    assert rows == expected
    # what the hand-normalized values imply, visible in the package itself
    by_ref = {r[0]: r for r in rows}
    one, three = by_ref[hmac16(k_ref, "KA-1")], by_ref[hmac16(k_ref, "KA-3")]
    assert one[1] == three[1] and one[2] != three[2]  # same email, different phones
    assert all(len(t) == 16 for r in rows for t in r if t is not None)
    assert out.manifest.matching_key_id == keys.matching.key_id
