"""Normalization and tokens: frozen vectors (the published spec) and hypothesis properties."""

from __future__ import annotations

import json
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crossgroup.contracts import REF_BYTES
from crossgroup.crypto.keys import MatchingKey, matching_key_id
from crossgroup.crypto.tokens import (
    _EMAIL_SHAPE,
    WHITE_SPACE,
    email_token_key,
    hmac_tokens,
    maison_ref_key,
    maison_refs,
    normalize_email,
    normalize_emails,
    normalize_phones,
    phone_token_key,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "tokens_v1.json").read_text("utf-8")
)
SECRET = bytes.fromhex(VECTORS["matching_secret"])
MATCHING = MatchingKey(SECRET, matching_key_id(SECRET), VECTORS["epoch"])


def _hex(series: pl.Series) -> list[str | None]:
    return [None if v is None else v.hex() for v in series.to_list()]


def test_vectors_record_their_source():
    assert "docs/normalization.md" in VECTORS["source"]


def test_derived_keys_match_vectors():
    assert email_token_key(MATCHING).hex() == VECTORS["keys"]["email"]
    assert phone_token_key(MATCHING).hex() == VECTORS["keys"]["phone"]
    local = bytes.fromhex(VECTORS["local_secret"])
    assert maison_ref_key(local).hex() == VECTORS["keys"]["maison_ref"]


def test_email_vectors():
    raw = pl.Series([v["raw"] for v in VECTORS["emails"]])
    normalized = normalize_emails(raw)
    assert normalized.to_list() == [v["normalized"] for v in VECTORS["emails"]]
    tokens = hmac_tokens(email_token_key(MATCHING), normalized)
    assert tokens.dtype == pl.Binary
    assert _hex(tokens) == [v["token"] for v in VECTORS["emails"]]


def test_phone_vectors():
    phones = pl.Series([v["raw"] for v in VECTORS["phones"]])
    countries = pl.Series([v["country"] for v in VECTORS["phones"]], dtype=pl.String)
    normalized = normalize_phones(phones, countries)
    assert normalized.to_list() == [v["normalized"] for v in VECTORS["phones"]]
    tokens = hmac_tokens(phone_token_key(MATCHING), normalized)
    assert _hex(tokens) == [v["token"] for v in VECTORS["phones"]]


def test_maison_ref_vectors():
    local = bytes.fromhex(VECTORS["local_secret"])
    ids = pl.Series([v["customer_id"] for v in VECTORS["maison_refs"]])
    assert _hex(maison_refs(local, ids)) == [v["maison_ref"] for v in VECTORS["maison_refs"]]


def test_hmac_tokens_keeps_nulls_order_and_hashes_distinct_values_once(monkeypatch):
    from crossgroup.crypto import _primitives

    calls = []
    real = _primitives.hmac_sha256_values

    def spy(key, values, out_len):
        values = list(values)
        calls.append(len(values))
        return real(key, values, out_len=out_len)

    monkeypatch.setattr(_primitives, "hmac_sha256_values", spy)
    values = pl.Series("email", ["b@x.com", None, "a@x.com", "b@x.com", None])
    tokens = hmac_tokens(b"k" * 32, values)
    assert calls == [2]
    assert tokens.name == "email" and tokens.len() == 5
    assert tokens[1] is None and tokens[4] is None
    assert tokens[0] == tokens[3] != tokens[2]
    assert all(len(t) == REF_BYTES for t in tokens.drop_nulls())


@pytest.mark.parametrize("unique", [True, False])
def test_tokens_are_the_same_from_the_compiled_kernel_and_the_hashlib_loop(monkeypatch, unique):
    """Batches of millions take the kernel through Arrow buffers, smaller ones the hashlib
    loop over Python bytes: one column of tokens either way, nulls and repeats included."""
    from crossgroup.crypto import _primitives

    values = pl.Series("v", ["a@x.com", None, "é@x.fr", "", "b@x.com" * 20])
    if not unique:
        values = pl.concat([values, values])
    loop = hmac_tokens(b"k" * 32, values)
    monkeypatch.setattr(_primitives, "_KERNEL_MIN_VALUES", 0)
    assert _primitives.kernel_pays(1)
    assert hmac_tokens(b"k" * 32, values).equals(loop)
    assert loop.null_count() == values.null_count()


def test_gmail_rules_are_opt_in():
    raw = pl.Series(["J.Dupont+promo@googlemail.com"])
    assert normalize_emails(raw).to_list() == ["j.dupont+promo@googlemail.com"]
    assert normalize_emails(raw, provider_rules=True).to_list() == ["jdupont@gmail.com"]


# ---------------------------------------------------------------- properties

_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
_domain = st.from_regex(r"[a-z0-9]{1,12}(\.[a-z0-9]{1,8})?\.[a-z]{2,6}", fullmatch=True)
emails = st.builds(lambda a, b: f"{a}@{b}", _local, _domain)
spaces = st.sampled_from(["", " ", "\t", "\u00a0", "  \n", "\u3000"])


# email-shaped inputs as a CRM holds them (docs/normalization.md §3): dotted local parts,
# plus-tags, any letter case, surrounding white space; provider domains included
_atom = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,9}", fullmatch=True)
_shaped_local = st.builds(
    lambda atoms, tag: ".".join(atoms) + (f"+{tag}" if tag else ""),
    st.lists(_atom, min_size=1, max_size=3),
    st.one_of(st.none(), _atom),
)
_shaped_domain = st.one_of(
    _domain, st.sampled_from(["gmail.com", "googlemail.com", "example.org", "maison.co.uk"])
)
_trim = st.sampled_from(["", " ", "\t", "\u00a0", "  \n", "\u3000", "\u2009"])


@st.composite
def email_variants(draw) -> tuple[str, str]:
    """(canonical lower-case address, the same address as typed: case flips, white space)."""
    canonical = f"{draw(_shaped_local)}@{draw(_shaped_domain)}"
    flips = draw(st.lists(st.booleans(), min_size=len(canonical), max_size=len(canonical)))
    typed = "".join(c.upper() if f else c for c, f in zip(canonical, flips, strict=True))
    return canonical, draw(_trim) + typed + draw(_trim)


@settings(max_examples=120, deadline=None)
@given(email_variants(), st.booleans())
def test_email_normalization_is_idempotent(variant, provider_rules):
    canonical, typed = variant
    once = normalize_email(typed, provider_rules=provider_rules)
    assert once is not None, typed  # every generated input is email-shaped
    if not provider_rules:
        assert once == canonical
    assert normalize_email(once, provider_rules=provider_rules) == once


_EMAILISH = st.text(alphabet=st.sampled_from('aZ09.-_+@@ \t\x00\x7f"(),:;<>[]\\é'), max_size=70)


def _by_the_unicode_expression(values: list[str]) -> list[str | None]:
    series = pl.Series(values, dtype=pl.String)
    s = series.str.normalize("NFKC").str.strip_chars(WHITE_SPACE).str.to_lowercase()
    unicode_rule = s.str.contains(_EMAIL_SHAPE) & (s.str.len_chars() <= 254)
    unicode_rule &= ~s.str.contains(r"^\.|\.\.|\.@")
    return [v if ok else None for v, ok in zip(s.to_list(), unicode_rule.to_list(), strict=True)]


def _ascii_edges() -> list[str]:
    """Every ASCII character in each part of an address, and every length limit's edges."""
    chars = [chr(c) for c in range(128)]
    values = [f"a{c}b@example.com" for c in chars] + [f"{c}@x.io" for c in chars]
    values += [f"ab@ex{c}mple.com" for c in chars] + [f"ab@example.c{c}m" for c in chars]
    values += ["a" * n + "@example.com" for n in range(62, 67)]
    values += ["ab@" + "a" * n + ".com" for n in range(60, 66)]
    values += ["ab@x." + "a" * n for n in (1, 2, 3, 62, 63, 64, 65)]
    values += ["ab@-x.com", "ab@x-.com", "ab@x-y.com", ".a@x.com", "a.@x.com", "a..b@x.com"]
    return values


def test_ascii_email_fast_path_decides_every_edge_as_the_unicode_expression():
    """The ASCII-only shape expression is a speed-up, never a different rule."""
    values = _ascii_edges()
    assert normalize_emails(pl.Series(values)).to_list() == _by_the_unicode_expression(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_EMAILISH, st.text(max_size=30)), max_size=30))
def test_email_fast_path_on_mixed_text_decides_as_the_unicode_expression(values):
    assert normalize_emails(pl.Series(values, dtype=pl.String)).to_list() == (
        _by_the_unicode_expression(values)
    )


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=40))
def test_email_normalization_of_any_text_is_idempotent(text):
    once = normalize_email(text)
    assert once is None or normalize_email(once) == once


@settings(max_examples=60, deadline=None)
@given(emails, spaces, spaces, st.lists(st.booleans(), min_size=60, max_size=60))
def test_email_variants_give_one_token(email, before, after, upper):
    variant = "".join(c.upper() if u else c for c, u in zip(email, upper, strict=False))
    variant = before + variant + email[len(upper) :].upper() + after
    key = email_token_key(MATCHING)
    tokens = hmac_tokens(key, normalize_emails(pl.Series([email, variant])))
    assert tokens[0] is not None and tokens[0] == tokens[1]


def _metropolitan_mobile(digits: str) -> bool:
    parsed = phonenumbers.parse(digits, "FR")
    return parsed.country_code == 33 and phonenumbers.is_valid_number(parsed)


# Valid French mobiles (06 90 and 06 39 are overseas ranges with their own country codes).
_national_fr = st.from_regex(r"06[0-9]{8}", fullmatch=True).filter(_metropolitan_mobile)


def _format_fr(digits: str, style: int) -> str:
    pairs = [digits[i : i + 2] for i in range(0, 10, 2)]
    return [
        digits,
        " ".join(pairs),
        ".".join(pairs),
        "+33 " + digits[1] + " " + " ".join(pairs[1:]),
        "+33 (0)" + digits[1:],
        "0033" + digits[1:],
    ][style]


@settings(max_examples=40, deadline=None)
@given(_national_fr, st.integers(0, 5), st.integers(0, 5))
def test_phone_format_variants_give_one_token(digits, s1, s2):
    phones = pl.Series([_format_fr(digits, s1), _format_fr(digits, s2)])
    normalized = normalize_phones(phones, pl.Series(["FR", "fr"]))
    assert normalized[0] is not None and normalized[0] == normalized[1]
    assert normalized[0] == "+33" + digits[1:]


@settings(max_examples=30, deadline=None)
@given(emails, _national_fr)
def test_email_and_phone_never_share_a_token(email, digits):
    phone = normalize_phones(pl.Series([digits]), pl.Series(["FR"]))
    # Even the same string under both types must give different tokens (separate keys).
    same = pl.Series([email])
    e_tok = hmac_tokens(email_token_key(MATCHING), same)[0]
    p_tok = hmac_tokens(phone_token_key(MATCHING), same)[0]
    assert e_tok != p_tok
    assert hmac_tokens(phone_token_key(MATCHING), phone)[0] != e_tok


@settings(max_examples=30, deadline=None)
@given(emails, st.binary(min_size=32, max_size=32))
def test_a_different_secret_gives_unrelated_tokens(email, other_secret):
    assume(other_secret != SECRET)
    other = MatchingKey(other_secret, matching_key_id(other_secret), 1)
    values = normalize_emails(pl.Series([email]))
    a = hmac_tokens(email_token_key(MATCHING), values)[0]
    b = hmac_tokens(email_token_key(other), values)[0]
    assert a != b
    # Unrelated: about half the bits differ, never a shared prefix-style relation.
    diff = bin(int.from_bytes(a) ^ int.from_bytes(b)).count("1")
    assert 20 <= diff <= 108


def test_epochs_derive_different_keys_from_one_secret():
    later = MatchingKey(SECRET, MATCHING.key_id, 2)
    assert email_token_key(later) != email_token_key(MATCHING)


@pytest.mark.parametrize("bad", ["", "x", "a@b", "@example.com", "a@.com", "a@b..com"])
def test_not_email_shaped_gets_no_token(bad):
    assert normalize_email(bad) is None


def test_suppression_ledger_key_follows_the_documented_label():
    """docs/erasure-and-retention.md: HKDF-SHA256(suppression key, zero salt, info =
    'crossgroup/v1/suppression/<kind>/<maison>'), computed here with `cryptography` directly,
    so a changed label (which would make erased customers link again) fails."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from crossgroup.crypto.tokens import suppression_ledger_key

    secret = bytes(range(32))
    for kind in ("ref", "email", "phone"):
        info = f"crossgroup/v1/suppression/{kind}/aurelle".encode()
        expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)
        assert suppression_ledger_key(secret, kind, "aurelle") == expected
    assert suppression_ledger_key(secret, "ref", "aurelle") != suppression_ledger_key(
        secret, "ref", "kessler"
    )
