"""Normalization and keyed tokens: the published spec is docs/normalization.md.

A token is HMAC-SHA256 under a per-type key derived from the matching secret, truncated to
16 bytes. Email and phone keys come from distinct HKDF labels, so the two never collide and
no key serves two purposes. `maison_ref` uses a key derived from the maison's local secret.
Every function hashes each distinct value once and returns a Polars `Binary` column.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

import polars as pl

from crossgroup.contracts import REF_BYTES
from crossgroup.crypto import _primitives

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from crossgroup.crypto.keys import MatchingKey

SPEC_VERSION = "v1"

# Unicode White_Space (trimmed at both ends); spelled out so other tooling trims the same set.
WHITE_SPACE = "".join(
    map(chr, (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
              0x2028, 0x2029, 0x202F, 0x205F, 0x3000))
)  # fmt: skip

# local@domain: no whitespace, control or format characters, no quotes, brackets or commas
# in the local part; dot-separated letter/digit/hyphen labels and an alphabetic TLD.
_EMAIL_SHAPE = (
    r"^[^\s@\"(),:;<>\[\]\\\p{Cc}\p{Cf}]{1,64}"
    r"@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+\p{L}{2,63}$"
)
# The same expression for values that are ASCII before normalization (most of them): there
# \s, \p{Cc} and \p{Cf} are 0x00-0x20 and 0x7F, \p{L} is A-Z a-z and \p{N} is 0-9. The
# Unicode classes under bounded repeats cost about 30x more to match.
_EMAIL_SHAPE_ASCII = (
    r"^[^\x00-\x20\x7f@\"(),:;<>\[\]\\]{1,64}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_ASCII = r"^[\x00-\x7f]*$"
_EMAIL_MAX = 254
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def _labels(kind: str, epoch: int) -> bytes:
    return f"crossgroup/{SPEC_VERSION}/token/{kind}/epoch/{epoch}".encode()


# ---------------------------------------------------------------- keys


def email_token_key(matching: MatchingKey) -> bytes:
    """k_email = HKDF-SHA256(matching secret, info='crossgroup/v1/token/email/epoch/<n>')."""
    return _primitives.hkdf_sha256(matching.secret, info=_labels("email", matching.epoch))


def phone_token_key(matching: MatchingKey) -> bytes:
    """k_phone = HKDF-SHA256(matching secret, info='crossgroup/v1/token/phone/epoch/<n>')."""
    return _primitives.hkdf_sha256(matching.secret, info=_labels("phone", matching.epoch))


def maison_ref_key(local_secret: bytes) -> bytes:
    """k_ref = HKDF-SHA256(local secret, info='crossgroup/v1/maison-ref'): never the secret."""
    return _primitives.hkdf_sha256(
        local_secret, info=f"crossgroup/{SPEC_VERSION}/maison-ref".encode()
    )


def suppression_ledger_key(suppression_key: bytes, kind: str, maison: str) -> bytes:
    """The processor's HMAC key for one identifier kind of one maison's erasures:
    HKDF-SHA256(suppression key, info='crossgroup/v1/suppression/<kind>/<maison>')."""
    # a fixed label, not SPEC_VERSION: a new normalization spec must not silently change the
    # keys of an existing suppression ledger (erased customers would link again)
    info = f"crossgroup/v1/suppression/{kind}/{maison}".encode()
    return _primitives.hkdf_sha256(suppression_key, info=info)


# ---------------------------------------------------------------- email


def normalize_emails(values: pl.Series, *, provider_rules: bool = False) -> pl.Series:
    """NFKC, trim White_Space, lower-case; null when the result is not email-shaped.

    `provider_rules=True` (off by default) also folds Gmail addresses: drops dots and any
    `+tag` in the local part and maps googlemail.com to gmail.com.
    """
    # Columns, not expressions: the normalized value is read five times below, and eager
    # evaluation would redo its NFKC, trim and lower-casing for each read.
    frame = pl.DataFrame({"raw": values.cast(pl.String)}).with_columns(
        pl.col("raw").str.contains(_ASCII).alias("is_ascii")
    )
    # The ASCII expression decides ASCII values exactly: the costly Unicode steps only see
    # the values that need them (null elsewhere).
    s, is_ascii = pl.col("s"), pl.col("is_ascii")
    frame = frame.with_columns(
        _nfkc(pl.col("raw"), is_ascii).str.strip_chars(WHITE_SPACE).str.to_lowercase().alias("s")
    )
    shape = pl.coalesce(
        pl.when(is_ascii).then(s).str.contains(_EMAIL_SHAPE_ASCII),
        pl.when(~is_ascii).then(s).str.contains(_EMAIL_SHAPE),
    )
    shaped = shape & (s.str.len_chars() <= _EMAIL_MAX) & ~s.str.contains(r"^\.|\.\.|\.@")
    out = frame.select(pl.when(shaped).then(s).otherwise(None).alias(values.name)).to_series()
    if provider_rules:
        out = _gmail_fold(out)
    return out


def _nfkc(raw: pl.Expr, is_ascii: pl.Expr) -> pl.Expr:
    """NFKC, run on the non-ASCII values only: it leaves ASCII text unchanged, and most
    values are ASCII."""
    return pl.coalesce(pl.when(~is_ascii).then(raw).str.normalize("NFKC"), raw)


def _gmail_fold(s: pl.Series) -> pl.Series:
    local = s.str.extract(r"^(.*)@", 1)
    domain = s.str.extract(r"@(.*)$", 1)
    folded = local.str.replace(r"\+.*$", "").str.replace_all(".", "", literal=True)
    frame = pl.DataFrame({"v": s, "local": local, "domain": domain, "folded": folded})
    return frame.select(
        pl.when(pl.col("domain").is_in(_GMAIL_DOMAINS) & (pl.col("folded").str.len_chars() > 0))
        .then(pl.col("folded") + "@gmail.com")
        .otherwise(pl.col("v"))
        .alias(s.name)
    ).to_series()


def normalize_email(value: str | None, *, provider_rules: bool = False) -> str | None:
    """One email through exactly the same rules as `normalize_emails`."""
    if value is None:
        return None
    return normalize_emails(pl.Series([value], dtype=pl.String), provider_rules=provider_rules)[0]


# ---------------------------------------------------------------- phone

_PARALLEL_MIN = 20_000  # below this many distinct values a process pool costs more than it saves


def _e164(raw: str, region: str | None) -> str | None:
    import phonenumbers  # here, not at the top: commands that only hash ids never load it

    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _e164_chunk(pairs: list[tuple[str, str | None]]) -> list[str | None]:
    # Keep every compiled metadata pattern: values from many regions otherwise thrash `re`'s
    # 512-entry cache and cost ~5x more (phonenumbers' own switch; no result changes).
    import phonenumbers.re_util

    phonenumbers.re_util.enable_pattern_cache()
    return [_e164(raw, region) for raw, region in pairs]


def normalize_phone(value: str | None, country: str | None = None) -> str | None:
    """One phone number through the same rules as `normalize_phones`."""
    if value is None:
        return None
    return normalize_phones(pl.Series([value]), pl.Series([country], dtype=pl.String))[0]


def normalize_phones(
    phones: pl.Series, countries: pl.Series, *, workers: int | None = None
) -> pl.Series:
    """E.164 for each valid phone (country = default region for national formats), else null.

    Polars does the cheap part for every row: NFKC, trim, strip punctuation, reject values
    with too few or too many digits, and drop the region of `+` numbers (the spec parses
    them without one) so more rows share one distinct value. Each distinct (number, region)
    is then parsed and validated once: vectorized by `e164` from libphonenumber's metadata when it
    is written in digits and separators and its region has many, else with `phonenumbers`
    itself (over a process pool when there are many such values).
    """
    if len(phones) != len(countries):
        raise ValueError("phones and countries must have the same length")
    frame = pl.DataFrame(
        {"raw": phones.cast(pl.String), "region": countries.cast(pl.String)}
    ).with_columns(
        _nfkc(pl.col("raw"), pl.col("raw").str.contains(_ASCII))
        .str.strip_chars(WHITE_SPACE)
        .alias("raw"),
        pl.col("region").str.strip_chars(WHITE_SPACE).str.to_uppercase().alias("region"),
    )
    # a column, not an expression: it is read three times below, and a regex pass is costly
    compact = pl.col("raw").str.replace_all(r"[\s().\-/\u2010-\u2015]", "").alias("compact")
    plus = pl.col("compact").str.starts_with("+")
    digits = pl.col("raw").str.count_matches(r"\d")
    frame = frame.with_columns(compact).with_columns(
        pl.when(plus).then(pl.col("compact")).otherwise(pl.col("raw")).alias("key"),
        pl.when(plus)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("region"))
        .alias("key_region"),
        digits.is_between(3, 17).alias("plausible"),
    )
    distinct = (
        frame.filter(pl.col("plausible") & pl.col("key").is_not_null())
        .select("key", "key_region")
        .unique(maintain_order=True)
    )
    from crossgroup.crypto import e164

    numbers, decided = e164.e164(distinct["key"], distinct["key_region"])
    rest = distinct.filter(~decided)
    if rest.height:
        pairs = list(zip(rest["key"].to_list(), rest["key_region"].to_list(), strict=True))
        numbers = numbers.scatter((~decided).arg_true(), _parse_many(pairs, workers))
    lookup = distinct.with_columns(numbers.alias("e164"))
    joined = frame.select("key", "key_region").join(
        lookup, on=["key", "key_region"], how="left", nulls_equal=True, maintain_order="left"
    )
    return joined["e164"].alias(phones.name)


def _parse_many(pairs: list[tuple[str, str | None]], workers: int | None) -> list[str | None]:
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(pairs) < _PARALLEL_MIN:
        return _e164_chunk(pairs)
    size = -(-len(pairs) // (workers * 4))
    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [v for part in pool.map(_e164_chunk, chunks) for v in part]


# ---------------------------------------------------------------- tokens


class _ArrowCArray:
    """Hands Polars an Arrow array through the Arrow PyCapsule interface: its path for
    pyarrow objects imports pyarrow.compute, about 90 ms of every command's start-up."""

    def __init__(self, array: pa.Array) -> None:
        self.array = array

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple:
        return self.array.__arrow_c_array__(requested_schema)


def _to_binary_series(name: str, digests: np.ndarray) -> pl.Series:
    """An (n, width) digest array as a Binary column, built from its buffers (no row loop)."""
    import numpy as np
    import pyarrow as pa

    n, width = digests.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int64)
    arr = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(digests))],
    )
    return pl.Series(name, _ArrowCArray(arr))


def _arrow_buffers(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and data of a null-free String/Binary column, viewed without copying."""
    import numpy as np
    import pyarrow as pa

    arr = values.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_large_string(arr.type):
        arr = arr.view(pa.large_binary())
    elif pa.types.is_string(arr.type):
        arr = arr.view(pa.binary())
    _, off_buf, data_buf = arr.buffers()
    width = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    offsets = np.frombuffer(off_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    )
    return offsets.astype(np.int64, copy=False), data


def hmac_tokens(key: bytes, values: pl.Series) -> pl.Series:
    """HMAC-SHA256(key, utf8(value))[:16] per row as Binary; null stays null.

    Each distinct value is hashed once (`_digest_series`); the result is joined back to the
    rows in order.
    """
    if len(key) < 16:
        raise ValueError("token key too short")
    if values.dtype not in (pl.String, pl.Binary):
        values = values.cast(pl.String)
    present = values.drop_nulls()
    if present.len() == 0:
        return pl.Series(values.name, [None] * values.len(), dtype=pl.Binary)
    if present.n_unique() == present.len():
        # Already distinct (the common case for one maison's ids): hash in row order and
        # put nulls back by position, which is cheaper than a join.
        tokens = _digest_series(key, present)
        if present.len() == values.len():
            return tokens.alias(values.name)
        mask = values.is_not_null()
        index = (mask.cast(pl.Int64).cum_sum() - 1).clip(lower_bound=0)
        return pl.select(
            pl.when(pl.lit(mask)).then(pl.lit(tokens.gather(index))).alias(values.name)
        ).to_series()
    distinct = present.unique()
    lookup = pl.DataFrame({"v": distinct, "t": _digest_series(key, distinct)})
    out = values.alias("v").to_frame().join(lookup, on="v", how="left", maintain_order="left")
    return out["t"].alias(values.name)


def _digest_series(key: bytes, distinct: pl.Series) -> pl.Series:
    """The tokens of null-free values in order. Batches of millions go to the compiled kernel
    through Arrow buffers; smaller ones to the hashlib loop over the values as bytes, which
    loads neither numpy nor pyarrow (about 0.1 s of a command's start-up)."""
    if _primitives.kernel_pays(distinct.len()):
        offsets, data = _arrow_buffers(distinct)
        digests = _primitives.hmac_sha256_batch(key, offsets, data, out_len=REF_BYTES)
        return _to_binary_series("t", digests)
    values = distinct.cast(pl.Binary).to_list()
    digests = _primitives.hmac_sha256_values(key, values, out_len=REF_BYTES)
    return pl.Series("t", digests, dtype=pl.Binary)


def maison_refs(local_secret: bytes, customer_ids: pl.Series) -> pl.Series:
    """maison_ref = HMAC-SHA256(k_ref, utf8(customer_id))[:16]; k_ref from the local secret."""
    return hmac_tokens(maison_ref_key(local_secret), customer_ids.cast(pl.String))


def email_tokens(matching: MatchingKey, emails: pl.Series, **options: bool) -> pl.Series:
    """Normalize then tokenize raw emails; invalid emails get a null token."""
    return hmac_tokens(email_token_key(matching), normalize_emails(emails, **options))


def phone_tokens(matching: MatchingKey, phones: pl.Series, countries: pl.Series) -> pl.Series:
    """Normalize then tokenize raw phones; unparseable or invalid numbers get a null token."""
    return hmac_tokens(phone_token_key(matching), normalize_phones(phones, countries))
