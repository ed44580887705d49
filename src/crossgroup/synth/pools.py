"""Value pools built once per process: Faker names and addresses per locale, phone prefixes.

Faker and phonenumbers are slow per call, so they are called a bounded number of times (a few
thousand, whatever the number of persons) to build pools; rows then sample pool indices with
numpy. Phone prefixes are checked with phonenumbers here, at the pool level, never per row.
Pools are a fixed vocabulary (built from POOL_SEED, not the run seed): the run seed decides
which pool values each person gets.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import phonenumbers
import polars as pl
from faker import Faker

_NAMES, _HANDLES, _STREETS, _CITIES = 400, 600, 300, 150
POOL_SEED = 20260930


@dataclass(frozen=True)
class LocalePool:
    """Names, email handles and address parts typical of one Faker locale."""

    first_names: pl.Series
    last_names: pl.Series
    handles: pl.Series  # ASCII email local parts, no trailing digits or punctuation
    streets: pl.Series
    cities: pl.Series
    postcodes: pl.Series


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _handle(user_name: str) -> str:
    h = re.sub(r"[^a-z0-9._-]", "", user_name.lower())
    return re.sub(r"[0-9._-]+$", "", h).lstrip("._-")


@lru_cache(maxsize=64)
def locale_pool(locale: str) -> LocalePool:
    """Sample the pools for one locale with a seeded Faker (deterministic for a pinned Faker)."""
    fake = Faker(locale)
    fake.seed_instance((POOL_SEED ^ zlib.crc32(locale.encode())) & 0xFFFFFFFF)
    handles = _unique([_handle(fake.user_name()) for _ in range(_HANDLES)])
    if len(handles) < 50:  # a locale whose user names are not in Latin script
        latin = Faker("en_US")
        latin.seed_instance((POOL_SEED ^ zlib.crc32(b"handles")) & 0xFFFFFFFF)
        handles += _unique([_handle(latin.user_name()) for _ in range(_HANDLES)])
        handles = _unique(handles)
    return LocalePool(
        first_names=pl.Series(_unique([fake.first_name() for _ in range(_NAMES)])),
        last_names=pl.Series(_unique([fake.last_name() for _ in range(_NAMES)])),
        handles=pl.Series(handles),
        streets=pl.Series(_unique([fake.street_name() for _ in range(_STREETS)])),
        cities=pl.Series(_unique([fake.city() for _ in range(_CITIES)])),
        postcodes=pl.Series(_unique([fake.postcode() for _ in range(_CITIES)])),
    )


# A phone template: literal strings and (start, length) slices of the national number.
Template = tuple[str | tuple[int, int], ...]


@dataclass(frozen=True)
class PhonePool:
    """Valid mobile number prefixes of one region and the formats checked to parse back."""

    region: str
    country_code: str
    nsn_length: int
    suffix_digits: int
    prefixes: np.ndarray  # int64 national-number prefixes; append suffix_digits random digits
    templates: dict[str, Template]  # format name -> template, only formats that round-trip

    @property
    def capacity(self) -> int:
        return len(self.prefixes) * 10**self.suffix_digits


def _template(formatted: str, nsn: str) -> Template:
    """Turn a formatted example into a template: its last len(nsn) digits are the number."""
    digit_pos = [i for i, ch in enumerate(formatted) if ch.isdigit()]
    nsn_pos = dict(zip(digit_pos[-len(nsn) :], range(len(nsn)), strict=True))
    parts: list[str | tuple[int, int]] = []
    for i, ch in enumerate(formatted):
        if i in nsn_pos:
            k = nsn_pos[i]
            last = parts[-1] if parts else None
            if isinstance(last, tuple) and last[0] + last[1] == k:
                parts[-1] = (last[0], last[1] + 1)
            else:
                parts.append((k, 1))
        elif parts and isinstance(parts[-1], str):
            parts[-1] += ch
        else:
            parts.append(ch)
    return tuple(parts)


def render(template: Template, nsn: str) -> str:
    """Format one national number with a template (used for pool checks and placeholders)."""
    return "".join(p if isinstance(p, str) else nsn[p[0] : p[0] + p[1]] for p in template)


def _candidate_templates(region: str, example: phonenumbers.PhoneNumber) -> dict[str, Template]:
    nsn = phonenumbers.national_significant_number(example)
    cc = str(example.country_code)
    fmt = phonenumbers.PhoneNumberFormat
    intl = phonenumbers.format_number(example, fmt.INTERNATIONAL)
    national = phonenumbers.format_number(example, fmt.NATIONAL)
    body = intl[len(cc) + 2 :]
    return {
        "e164": _template(f"+{cc}{nsn}", nsn),
        "international_spaces": _template(f"+{cc} " + re.sub(r"[-.]", " ", body), nsn),
        "international_dashes": _template(f"+{cc}-" + re.sub(r"[ .]", "-", body), nsn),
        "idd": _template(f"00{cc} {nsn}", nsn),
        "national": _template(national, nsn),
        "national_compact": _template(re.sub(r"\D", "", national), nsn),
    }


def _valid(region: str, nsn_value: int, length: int) -> bool:
    number = phonenumbers.PhoneNumber(
        country_code=phonenumbers.country_code_for_region(region),
        national_number=nsn_value,
    )
    return (
        phonenumbers.is_valid_number_for_region(number, region)
        and len(phonenumbers.national_significant_number(number)) == length
    )


def _valid_prefixes(region: str, nsn: str, suffix_digits: int, rng) -> list[int]:
    """Prefixes sharing the example's leading digits whose every sampled completion is valid."""
    prefix_len = len(nsn) - suffix_digits
    stem = nsn[: max(prefix_len - 2, 1)]
    free = prefix_len - len(stem)
    scale = 10**suffix_digits
    prefixes = []
    for tail in range(10**free):
        prefix = int(stem + str(tail).zfill(free))
        # Both ends, every leading suffix digit, then random draws: patterns mostly bite early.
        sweep = [d * (scale // 10) + int(rng.integers(0, scale // 10)) for d in range(10)]
        suffixes = [0, scale - 1, *sweep, *rng.integers(0, scale, 8).tolist()]
        if all(_valid(region, prefix * scale + s, len(nsn)) for s in suffixes):
            prefixes.append(prefix)
    return prefixes


@lru_cache(maxsize=64)
def phone_pool(region: str) -> PhonePool:
    """Enumerate mobile prefixes near the region's example number; keep those proven valid."""
    rng = np.random.default_rng([POOL_SEED, zlib.crc32(region.encode())])
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    nsn = phonenumbers.national_significant_number(example)
    length = len(nsn)
    # Short numbering plans need a longer, exact prefix: keep the widest number space.
    options = [(6, _valid_prefixes(region, nsn, 6, rng))]
    if len(options[0][1]) < 20:
        options += [(d, _valid_prefixes(region, nsn, d, rng)) for d in (5, 4)]
    # Widest space first; on a tie, the longer (more exactly checked) prefix.
    suffix_digits, prefixes = max(options, key=lambda o: (len(o[1]) * 10 ** o[0], -o[0]))
    if not prefixes:
        raise RuntimeError(f"no valid phone prefix found for region {region}")
    scale = 10**suffix_digits
    samples = [str(p * scale + int(rng.integers(0, scale))).zfill(length) for p in prefixes[:3]]
    templates = {}
    for name, template in _candidate_templates(region, example).items():
        ok = True
        for s in samples:
            try:
                parsed = phonenumbers.parse(render(template, s), region)
            except phonenumbers.NumberParseException:
                ok = False
                break
            ok = ok and phonenumbers.national_significant_number(parsed) == s
            ok = ok and phonenumbers.is_valid_number(parsed)
        if ok:
            templates[name] = template
    return PhonePool(
        region,
        str(example.country_code),
        length,
        suffix_digits,
        np.array(prefixes, np.int64),
        templates,
    )


def boutique_phone(region: str, seed: int) -> str:
    """A valid landline in national format: the kind of number staff type for a walk-in."""
    rng = np.random.default_rng([seed, zlib.crc32(b"boutique" + region.encode())])
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    base = phonenumbers.national_significant_number(example)
    for _ in range(200):
        tail = str(int(rng.integers(0, 10_000))).zfill(4)
        candidate = phonenumbers.parse(base[:-4] + tail, region)
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
