"""Vectorized E.164 for the common spellings, by libphonenumber's own rules and metadata.

`phonenumbers.parse` + `is_valid_number` cost about 25 µs per value in Python. For a value
made only of ASCII digits, separators (space, `(`, `)`, `.`, `-`, `/`, U+2010–U+2015) and at
most one leading `+`, libphonenumber's steps reduce to string operations on the digits that
Polars runs over a whole column, one region at a time:

1. a leading `+`: the country code is the first 1–3 digits that name one;
2. else, with a supported default region: its international prefix (when not followed by
   `0`) is stripped and the country code read as in 1; or the digits start with the
   region's own country code and are kept without it when that makes them fit the region
   better (libphonenumber's `_maybe_extract_country_code`, here in `_national`); or they
   are national;
3. the national prefix (and carrier code, or the region's transform rule) is stripped when
   what remains still has a possible length;
4. the number is valid when its national number matches the general pattern and the pattern
   of one number type of its region, with the lengths each allows; among regions sharing a
   country code, the region is chosen as libphonenumber does (leading digits, else type).

Every regular expression comes from the pinned `phonenumbers` metadata, so nothing here
encodes a numbering plan. Anything else (letters, extensions, `tel:` URIs, other scripts'
digits, more than one `+`), and any region or calling code with too few values to pay for
its expressions, is left undecided for the caller to parse with `phonenumbers`.
`tests/crypto/test_phone_differential.py` proves both paths give identical results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import phonenumbers
import polars as pl
from phonenumbers import phonenumberutil as pnu

# The shapes decided here; everything else goes to phonenumbers (see module docstring).
_SIMPLE = r"^\+?[0-9 ().\-/\u2010-\u2015]+$"
_MAX_INPUT = pnu._MAX_INPUT_STRING_LENGTH  # 250: longer input is refused by parse
_MIN_NSN = pnu._MIN_LENGTH_FOR_NSN  # 2
_MAX_NSN = pnu._MAX_LENGTH_FOR_NSN  # 17
_NON_GEO = pnu.REGION_CODE_FOR_NON_GEO_ENTITY  # "001"
_CALLING_CODES = {str(cc) for cc in pnu.COUNTRY_CODE_TO_REGION_CODE}
_MAIN_REGIONS = {cc: regions[0] for cc, regions in pnu.COUNTRY_CODE_TO_REGION_CODE.items()}
_EMPTY = pl.DataFrame(
    schema={"row": pl.UInt32, "cc": pl.Int32, "nsn": pl.String, "plan": pl.String}
)


@dataclass(frozen=True)
class _Desc:
    """One number description: a full-match pattern and the lengths it allows."""

    pattern: str
    lengths: tuple[int, ...]

    def matches(self, nsn: pl.Expr) -> pl.Expr:
        """`_is_number_matching_desc`: a possible length (when listed) and the pattern."""
        full = nsn.str.contains(f"^(?:{self.pattern})$")
        return nsn.str.len_chars().is_in(self.lengths) & full if self.lengths else full


@dataclass(frozen=True)
class _Plan:
    """What vectorized parsing needs from one region's (or calling code's) metadata."""

    country_code: int
    general: _Desc
    types: tuple[_Desc, ...]  # the number types, one alternation per set of lengths
    possible: tuple[int, ...]
    local_only: tuple[int, ...]
    international_prefix: str | None
    national_prefix: str | None
    prefix_groups: int
    transform: str | None  # in Polars replacement syntax
    leading_digits: str | None

    def fits(self, digits: pl.Expr) -> pl.Expr:
        """`_match_national_number` on the general description (the pattern alone)."""
        return digits.str.contains(f"^(?:{self.general.pattern})$")

    def accepts_length(self, digits: pl.Expr) -> pl.Expr:
        """`_test_number_length` is IS_POSSIBLE or TOO_LONG (parse keeps the stripped form)."""
        n = digits.str.len_chars()
        return ~n.is_in(self.local_only) & (n.is_in(self.possible) | (n > max(self.possible)))

    def too_long(self, digits: pl.Expr) -> pl.Expr:
        n = digits.str.len_chars()
        return ~n.is_in(self.local_only) & (n > max(self.possible))

    def valid(self, nsn: pl.Expr) -> pl.Expr:
        """`_number_type_helper(nsn) != UNKNOWN`: the general description and one type."""
        return self.general.matches(nsn) & pl.any_horizontal(d.matches(nsn) for d in self.types)

    def strip_national_prefix(self, digits: pl.Expr) -> pl.Expr:
        """`_maybe_strip_national_prefix_carrier_code`: the national number it returns."""
        if not self.national_prefix:
            return digits
        anchored = f"^(?:{self.national_prefix})"
        stripped = digits.str.replace(anchored, "")
        if self.transform is not None:
            untouched = digits.str.extract(anchored, self.prefix_groups).is_null()
            transformed = digits.str.replace(anchored, self.transform)
            stripped = pl.when(untouched).then(stripped).otherwise(transformed)
        keep = ~digits.str.contains(anchored) | (self.fits(digits) & ~self.fits(stripped))
        return pl.when(keep).then(digits).otherwise(stripped)


def _desc(desc) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _Desc(desc.national_number_pattern, tuple(desc.possible_length))


def _plan_of(metadata) -> _Plan:
    general = _desc(metadata.general_desc)
    kinds = ["premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager"]
    kinds += ["uan", "voicemail", "fixed_line"]
    if not metadata.same_mobile_and_fixed_line_pattern:
        kinds.append("mobile")
    # Types allowing the same lengths are matched as one alternation (one pass instead of one
    # per type): a full match of `p1|p2` is a full match of `p1` or of `p2`.
    by_lengths: dict[tuple[int, ...], list[str]] = {}
    for desc in (_desc(getattr(metadata, k)) for k in kinds):
        if desc is not None:
            by_lengths.setdefault(desc.lengths, []).append(f"(?:{desc.pattern})")
    types = tuple(_Desc("|".join(p), lengths) for lengths, p in by_lengths.items())
    prefix = metadata.national_prefix_for_parsing or None
    rule = metadata.national_prefix_transform_rule or None
    return _Plan(
        country_code=metadata.country_code,
        general=general,
        types=types,
        possible=tuple(metadata.general_desc.possible_length),
        local_only=tuple(metadata.general_desc.possible_length_local_only),
        international_prefix=metadata.international_prefix,
        national_prefix=prefix,
        prefix_groups=re.compile(prefix).groups if prefix else 0,
        transform=re.sub(r"\\(\d)", r"${\1}", rule) if rule else None,
        leading_digits=metadata.leading_digits,
    )


@cache
def _plan(region: str, country_code: int = 0) -> _Plan | None:
    """The plan of a region, or of a non-geographic calling code (region "001")."""
    if region == _NON_GEO:
        metadata = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
    else:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return None if metadata is None else _plan_of(metadata)


# ---------------------------------------------------------------- steps over frames
# Each step takes and returns frames with `row` (position in the input) and adds columns.

# A region's or calling code's expressions cost a few milliseconds to compile and run
# whatever its row count; phonenumbers parses about 40 values in a millisecond. Groups
# smaller than this are left undecided (for phonenumbers), so the fixed cost stays
# proportional to the data.
_GROUP_MIN = 256


def _set_aside(frame: pl.DataFrame, *by: str) -> tuple[pl.DataFrame, pl.Series]:
    """(rows of groups large enough to vectorize, row ids of the others)."""
    large = pl.len().over(*by) >= _GROUP_MIN
    return frame.filter(large), frame.filter(~large)["row"]


def _split_country_code(frame: pl.DataFrame, digits: str) -> pl.DataFrame:
    """`_extract_country_code`: the first 1–3 digits naming a calling code (0 if none)."""
    d = pl.col(digits)
    size = (
        pl.when(d.str.slice(0, 1).is_in(_CALLING_CODES))
        .then(1)
        .when(d.str.slice(0, 2).is_in(_CALLING_CODES))
        .then(2)
        .when(d.str.slice(0, 3).is_in(_CALLING_CODES))
        .then(3)
        .otherwise(0)
    )
    # a code never starts with 0 and none of "0", "00", "000" is one, so `size` is 0 there
    return frame.with_columns(size.alias("cc_len")).with_columns(
        pl.when(pl.col("cc_len") > 0)
        .then(d.str.slice(0, pl.col("cc_len")).cast(pl.Int32))
        .otherwise(0)
        .alias("cc"),
        d.str.slice(pl.col("cc_len")).alias("nsn"),
    )


def _international(frame: pl.DataFrame, digits: str) -> pl.DataFrame:
    """Rows whose calling code follows `+` or an international prefix: cc and national part.

    As in parse, 2 digits or fewer after the prefix, or no known code, is no number."""
    frame = frame.filter(pl.col(digits).str.len_chars() > _MIN_NSN)
    frame = _split_country_code(frame, digits).filter(pl.col("cc") > 0)
    return frame.select("row", "cc", "nsn")


def _national(frame: pl.DataFrame, region: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows without `+` under one default region: (international-prefixed, national).

    The national ones get `cc`, their national part and `plan` (the region whose metadata
    parse goes on with)."""
    plan = _plan(region)
    d = pl.col("digits")
    if plan.international_prefix:
        idd = f"^(?:{plan.international_prefix})"
        after = d.str.replace(idd, "")
        frame = frame.with_columns(
            (d.str.contains(idd) & ~after.str.starts_with("0")).alias("idd"),
            after.alias("after_idd"),
        )
    else:
        frame = frame.with_columns(idd=pl.lit(False), after_idd=d)
    dialled = frame.filter(pl.col("idd")).select("row", pl.col("after_idd").alias("digits"))
    national = frame.filter(~pl.col("idd"))

    own = str(plan.country_code)
    # columns, not expressions: each is read more than once below (eager, so not shared)
    without = pl.col("without")
    national = national.with_columns(
        plan.strip_national_prefix(d.str.slice(len(own))).alias("without")
    )
    own_code = d.str.starts_with(own) & ((~plan.fits(d) & plan.fits(without)) | plan.too_long(d))
    national = national.with_columns(own_code.alias("stripped"))
    stripped = pl.col("stripped")
    main = _MAIN_REGIONS[plan.country_code]
    national = national.select(
        "row",
        pl.lit(plan.country_code, pl.Int32).alias("cc"),
        pl.when(stripped).then(without).otherwise(d).alias("nsn"),
        pl.when(stripped).then(pl.lit(main)).otherwise(pl.lit(region)).alias("plan"),
    )
    return dialled, national


def _national_number(frame: pl.DataFrame) -> pl.DataFrame:
    """The national prefix stripped under each row's plan, when the rest has a possible length."""
    parts = []
    for (region, cc), part in frame.group_by("plan", "cc"):
        plan = _plan(region, cc)
        candidate = pl.col("candidate")  # a column: read twice below
        parts.append(
            part.with_columns(plan.strip_national_prefix(pl.col("nsn")).alias("candidate"))
            .with_columns(
                pl.when(plan.accepts_length(candidate))
                .then(candidate)
                .otherwise("nsn")
                .alias("nsn")
            )
            .drop("candidate")
        )
    return pl.concat(parts) if parts else frame


def _validate(frame: pl.DataFrame) -> pl.DataFrame:
    """`is_valid_number` per calling code, then E.164 (`+`, code, national number)."""
    parts = []
    for (cc,), part in frame.group_by("cc"):
        regions = pnu.COUNTRY_CODE_TO_REGION_CODE[cc]
        nsn = pl.col("nsn")
        if len(regions) == 1:
            valid = _plan(regions[0], cc).valid(nsn)
        else:  # `_region_code_for_number_from_list`: the first region claiming the number
            valid = pl.lit(False)
            for region in reversed(regions):
                plan = _plan(region)
                if plan is None:
                    continue
                claims = (
                    nsn.str.contains(f"^(?:{plan.leading_digits})")
                    if plan.leading_digits
                    else plan.valid(nsn)
                )
                valid = pl.when(claims).then(plan.valid(nsn)).otherwise(valid)
        parts.append(part.filter(valid))
    valid_rows = pl.concat(parts) if parts else frame
    return valid_rows.select("row", pl.format("+{}{}", "cc", "nsn").alias("e164"))


def e164(keys: pl.Series, regions: pl.Series) -> tuple[pl.Series, pl.Series]:
    """E.164 of each (key, default region) pair, and which rows were decided here.

    A decided row's value equals `phonenumbers.format_number(parse(key, region), E164)` when
    the number is valid and null otherwise; undecided rows are null for the caller to parse.
    """
    frame = pl.DataFrame({"key": keys, "region": regions}).with_row_index("row")
    simple = (
        pl.col("key").str.contains(_SIMPLE)
        & (pl.col("key").str.len_chars() <= _MAX_INPUT)
        & (pl.col("key").str.count_matches(r"[0-9]") >= _MIN_NSN + 1)
    ).fill_null(False)
    work = frame.filter(simple).with_columns(
        pl.col("key").str.replace_all(r"[^0-9]", "").alias("digits"),
        pl.col("key").str.starts_with("+").alias("plus"),
    )
    # `+`: the region is never used (a + number that names no code gets no second chance)
    numbers = [_international(work.filter(pl.col("plus")), "digits")]
    supported = pl.col("region").is_in(pnu.SUPPORTED_REGIONS)
    national, aside_region = _set_aside(work.filter(~pl.col("plus") & supported), "region")
    nationals = []
    for (region,), part in national.group_by("region"):
        dialled, parsed_here = _national(part, region)
        numbers.append(_international(dialled, "digits"))
        nationals.append(parsed_here)
    main = pl.col("cc").replace_strict(_MAIN_REGIONS, return_dtype=pl.String)
    with_plan = [n.with_columns(main.alias("plan")) for n in numbers]
    parsed = pl.concat([_EMPTY, *with_plan, *nationals], how="vertical_relaxed").filter(
        pl.col("nsn").str.len_chars() >= _MIN_NSN
    )
    parsed, aside_plan = _set_aside(parsed, "plan", "cc")
    parsed = _national_number(parsed).filter(pl.col("nsn").str.len_chars() <= _MAX_NSN)
    parsed, aside_code = _set_aside(parsed, "cc")
    found = _validate(parsed)
    aside = pl.concat([aside_region, aside_plan, aside_code])
    decided = simple & ~pl.col("row").is_in(aside.implode())
    out = frame.with_columns(decided.alias("decided")).join(found, on="row", how="left")
    out = out.sort("row")
    return out["e164"], out["decided"]
