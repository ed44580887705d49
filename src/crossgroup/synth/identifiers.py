"""Random-looking but collision-free identifiers, and the messy ways a CRM stores them.

Uniqueness comes from keyed permutations (a small Feistel network with cycle walking) of the
global person index, so ids stay unique across chunks without any shared counter: customer
ids within a maison, order ids within a maison, email local parts and phone numbers across
persons. Rendering (case, spacing, phone formats) is vectorized with Polars expressions.
"""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

from crossgroup.synth.pools import PhonePool, Template

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def derive_key(seed: int, purpose: str) -> int:
    """A 64-bit permutation key for one purpose, derived from the run seed."""
    ss = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(ss.generate_state(1, np.uint64)[0])


def _mix(z: np.ndarray) -> np.ndarray:
    # splitmix64 finalizer: a cheap, well-spread round function.
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _feistel(x: np.ndarray, half_bits: int, key: int, rounds: int = 4) -> np.ndarray:
    mask = np.uint64((1 << half_bits) - 1)
    shift = np.uint64(half_bits)
    left, right = x >> shift, x & mask
    keys = np.random.SeedSequence(key).generate_state(rounds, np.uint64)
    for k in keys:
        left, right = right, left ^ (_mix(right ^ k) & mask)
    return (left << shift) | right


def permute(x: np.ndarray, domain: int, key: int) -> np.ndarray:
    """A keyed bijection of [0, domain) applied to `x` (cycle-walking Feistel network)."""
    if domain < 2:
        return np.zeros(len(x), np.int64)
    half_bits = max(1, ((domain - 1).bit_length() + 1) // 2)
    y = _feistel(np.asarray(x, np.uint64) % np.uint64(domain), half_bits, key)
    outside = y >= np.uint64(domain)
    while outside.any():  # walk the cycle until back inside the domain
        y[outside] = _feistel(y[outside], half_bits, key)
        outside = y >= np.uint64(domain)
    return y.astype(np.int64)


def digits(values: np.ndarray, width: int) -> pl.Series:
    """Non-negative integers as zero-padded decimal strings."""
    return pl.Series(values, dtype=pl.Int64).cast(pl.String).str.zfill(width)


# Customer id styles: (prefix kind, digits, grouping). Each maison gets one by its position.
ID_STYLES = ("prefix10", "numeric12", "grouped10", "letter9")


def customer_ids(maison_id: str, style: str, person_ids: np.ndarray, key: int) -> pl.Series:
    """Maison-specific customer ids: unique within the maison, unrelated across maisons."""
    code = maison_id[:3].upper()
    if style == "numeric12":
        return digits(permute(person_ids, 10**12, key), 12)
    if style == "letter9":
        return ("C" + digits(permute(person_ids, 10**9, key), 9)).rename("")
    d = digits(permute(person_ids, 10**10, key), 10)
    if style == "grouped10":
        frame = pl.DataFrame({"d": d})
        return frame.select(
            pl.concat_str(
                pl.lit(code[:2] + "-"),
                pl.col("d").str.slice(0, 4),
                pl.lit("-"),
                pl.col("d").str.slice(4, 4),
                pl.lit("-"),
                pl.col("d").str.slice(8, 2),
            )
        ).to_series()
    return (code + d).rename("")


def order_ids(maison_id: str, person_ids: np.ndarray, seq: np.ndarray, key: int) -> pl.Series:
    """Order numbers unique within a maison: a permutation of (person, order sequence)."""
    order_key = np.asarray(person_ids, np.int64) * 4096 + np.asarray(seq, np.int64)
    return (maison_id[0].upper() + digits(permute(order_key, 10**12, key), 12)).rename("")


EMAIL_VARIANTS = (
    # (share, how the CRM stored it)
    (0.46, "lower"),
    (0.20, "capitalized"),
    (0.08, "upper"),
    (0.07, "leading space"),
    (0.12, "trailing space"),
    (0.07, "capitalized trailing space"),
)


def email_variant_expr(col: str, variant: str) -> pl.Expr:
    e = pl.col(col)
    cap = e.str.slice(0, 1).str.to_uppercase() + e.str.slice(1)
    return {
        "lower": e,
        "capitalized": cap,
        "upper": e.str.to_uppercase(),
        "leading space": " " + e,
        "trailing space": e + " ",
        "capitalized trailing space": cap + "  ",
    }[variant]


def render_emails(emails: pl.Series, variant: np.ndarray) -> pl.Series:
    """Apply one storage variant (index into EMAIL_VARIANTS) per value."""
    frame = pl.DataFrame({"e": emails, "v": pl.Series(variant, dtype=pl.Int8)})
    expr = pl.lit(None, pl.String)
    for i, (_, name) in reversed(list(enumerate(EMAIL_VARIANTS))):
        expr = pl.when(pl.col("v") == i).then(email_variant_expr("e", name)).otherwise(expr)
    return frame.select(expr.alias("email")).to_series()


PHONE_FORMATS = (
    # (share, format name in PhonePool.templates); missing formats fall back to E.164
    (0.20, "e164"),
    (0.24, "international_spaces"),
    (0.10, "international_dashes"),
    (0.06, "idd"),
    (0.30, "national"),
    (0.10, "national_compact"),
)


def template_expr(col: str, template: Template) -> pl.Expr:
    parts = [
        pl.lit(p) if isinstance(p, str) else pl.col(col).str.slice(p[0], p[1]) for p in template
    ]
    return pl.concat_str(parts)


def phone_numbers(pool: PhonePool, person_ids: np.ndarray, key: int) -> pl.Series:
    """One national number per person: unique while the persons fit the region's pool."""
    v = permute(person_ids, pool.capacity, key)
    scale = 10**pool.suffix_digits
    nsn = pool.prefixes[v // scale] * scale + v % scale
    return digits(nsn, pool.nsn_length)


def render_phones(pool: PhonePool, nsn: pl.Series, fmt: np.ndarray) -> pl.Series:
    """Format national numbers of one region, each in its format (index into PHONE_FORMATS)."""
    frame = pl.DataFrame({"n": nsn, "f": pl.Series(fmt, dtype=pl.Int8)})
    expr = template_expr("n", pool.templates["e164"])
    for i, (_, name) in enumerate(PHONE_FORMATS):
        if name != "e164" and name in pool.templates:
            then = template_expr("n", pool.templates[name])
            expr = pl.when(pl.col("f") == i).then(then).otherwise(expr)
    return frame.select(expr.alias("phone")).to_series()
