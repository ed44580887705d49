"""Differential test: `normalize_phones` against a row-by-row reference built on `phonenumbers`.

The reference (`reference_e164`) restates the phone contract of docs/normalization.md §4 one
value at a time, with no Polars and nothing from `crossgroup`:

1. NFKC, then trim Unicode `White_Space` at both ends;
2. region = the country trimmed of `White_Space` and upper-cased (no NFKC), or None;
3. compact = the value without White_Space, `( ) . - /` and U+2010..U+2015; when compact
   starts with `+` it is parsed with no region, else the trimmed value is parsed with the
   region;
4. fewer than 3 or more than 17 decimal digits (Unicode `Nd`, counted in the trimmed value):
   null;
5. `phonenumbers.parse`, `is_valid_number`, `format_number(E164)`; any parse error: null.

Polars's regex and normalization tables are newer (Unicode 16/17) than this Python's
`unicodedata` (Unicode 14 on 3.11), so the few code points where they disagree for steps 1
and 4 are spelled out below (`_NEW_DIGITS`, `_NEW_NFKC`); `test_unicode_tables_match_polars`
probes every code point so the tables cannot go stale unnoticed.

The corpus comes from `tests/phone_corpus.py` (about 60k rows here, 1M with `-m slow`;
`benchmarks/bench_phones.py` runs the same comparison and times it).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import phonenumbers
import phonenumbers.re_util
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from crossgroup.crypto import tokens
from crossgroup.crypto.e164 import e164 as vectorized_e164
from phone_corpus import NON_GEO, examples, phone_corpus

CI_ROWS = 60_000
SLOW_ROWS = 1_000_000
SEED = 20261122

# Unicode White_Space: trimmed at both ends, and part of the compact form's separators.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# not Python's `\s`: that also matches U+001C..U+001F, which are not White_Space
_SEPARATORS = re.compile("[" + re.escape(WHITE_SPACE) + r"().\-/\u2010-\u2015]")
# decimal digits (Nd) assigned after Unicode 14 (Python 3.11's unicodedata), which Polars's
# `\d` already counts: Garay, Myanmar Extended-C, Sunuwar, Kawi, Gurung Khema, Kirat Rai,
# outlined digits, Nag Mundari, Ol Onal
_NEW_DIGITS = (
    "\U00010d40-\U00010d49\U000116d0-\U000116e3\U00011bf0-\U00011bf9\U00011f50-\U00011f59"
    "\U00016130-\U00016139\U00016d70-\U00016d79\U0001ccf0-\U0001ccf9\U0001e4f0-\U0001e4f9"
    "\U0001e5f1-\U0001e5fa"
)
_DIGIT = re.compile(r"[\d" + _NEW_DIGITS + "]")
# NFKC mappings added after Unicode 14: outlined Latin capitals and digits (U+1CCD6..U+1CCF9)
# to ASCII, modifier Cyrillic letters (U+1E030..U+1E06D) to Cyrillic, U+A7F1 to "S"
_CYRILLIC_MODIFIERS = "абвгдежзиклмопрстуфхцчшыэюꚉәіјөүӏабвгдежзиклопсуфхцчшъыґіѕџҫꙑұ"
_NEW_NFKC = {
    0xA7F1: "S",
    **{0x1CCD6 + i: chr(ord("A") + i) for i in range(26)},
    **{0x1CCF0 + i: str(i) for i in range(10)},
    **{0x1E030 + i: c for i, c in enumerate(_CYRILLIC_MODIFIERS)},
}


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value.translate(_NEW_NFKC))


def _prepare(
    raw: str,
    country: str | None,
    *,
    nfkc=_nfkc,
    upper: bool = True,
    separators: re.Pattern = _SEPARATORS,
    digit: re.Pattern = _DIGIT,
    bounds: tuple[int, int] = (3, 17),
    compact_key: bool = False,
    plus_region: bool = False,
) -> tuple[str, str | None] | None:
    """What the contract hands to phonenumbers for one non-null value: (text, region), or
    None when the digit count rules it out. The keywords are there only for
    `test_corpus_tells_the_contract_from_near_misses`; the reference uses the defaults."""
    value = nfkc(raw).strip(WHITE_SPACE)
    region = None if country is None else country.strip(WHITE_SPACE)
    region = region.upper() if upper and region is not None else region
    compact = separators.sub("", value)
    if compact.startswith("+"):
        key, key_region = compact, (region if plus_region else None)
    else:
        key, key_region = (compact if compact_key else value), region
    if not bounds[0] <= len(digit.findall(value)) <= bounds[1]:
        return None
    return key, key_region


def _parse(key: str, region: str | None) -> tuple[str, str | None]:
    try:
        parsed = phonenumbers.parse(key, region)
    except phonenumbers.NumberParseException as e:
        return f"parse:{e.error_type}", None
    if not phonenumbers.is_valid_number(parsed):
        return "invalid", None
    return "valid", phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def reference_outcome(raw: str | None, country: str | None) -> tuple[str, str | None]:
    """(why, E.164 or None) for one value under the contract; `why` names the path taken:
    null, digit_count, parse:<NumberParseException error type>, invalid or valid."""
    if raw is None:
        return "null", None
    prepared = _prepare(raw, country)
    if prepared is None:
        return "digit_count", None
    return _parse(*prepared)


def reference_e164(raw: str | None, country: str | None) -> str | None:
    """E.164 of one value under the contract, or None (see the module docstring)."""
    return reference_outcome(raw, country)[1]


def reference_column(frame: pl.DataFrame) -> list[str | None]:
    """The reference for every row (each distinct (phone, country) computed once)."""
    memo: dict[tuple[str | None, str | None], str | None] = {}
    out = []
    for pair in frame.select("phone", "country").iter_rows():
        if pair not in memo:
            memo[pair] = reference_e164(*pair)
        out.append(memo[pair])
    return out


def differences(frame: pl.DataFrame, expected: list, got: list, show: int = 10) -> str:
    """'' when equal, else a count and the first rows that differ."""
    bad = [i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
    if not bad:
        return ""
    lines = [f"{len(bad):,} of {len(expected):,} rows differ; first {min(show, len(bad))}:"]
    for i in bad[:show]:
        phone, country = frame.row(i)
        lines.append(f"  row {i}: phone={phone!r} country={country!r} "
                     f"expected={expected[i]!r} got={got[i]!r}")  # fmt: skip
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def pattern_cache():
    """Compile each metadata pattern once (phonenumbers' own RegexCache) for this module.

    Without it `phonenumbers` leaves compilation to `re`'s 512-entry cache, which a corpus
    spanning every region thrashes: values then cost 4-5x more on both sides of the
    comparison. It changes no result; the workers of `normalize_phones`'s process pool are
    forked after it is enabled. The previous state is restored afterwards.
    """
    before = phonenumbers.re_util._COMPILED_PATTERNS
    phonenumbers.re_util.enable_pattern_cache()
    yield
    phonenumbers.re_util._COMPILED_PATTERNS = before


@pytest.fixture(scope="module")
def corpus() -> pl.DataFrame:
    return phone_corpus(CI_ROWS, SEED)


@pytest.fixture(scope="module")
def outcomes(corpus) -> list[tuple[str, str | None]]:
    """reference_outcome for every row of the corpus, each distinct pair computed once."""
    memo: dict[tuple[str | None, str | None], tuple[str, str | None]] = {}
    out = []
    for pair in corpus.iter_rows():
        if pair not in memo:
            memo[pair] = reference_outcome(*pair)
        out.append(memo[pair])
    return out


def _compare(frame: pl.DataFrame, expected: list[str | None]) -> None:
    got = tokens.normalize_phones(frame["phone"], frame["country"])
    assert got.dtype == pl.String and got.len() == frame.height
    message = differences(frame, expected, got.to_list())
    assert not message, message


def test_normalize_phones_matches_reference(corpus, outcomes):
    _compare(corpus, [e164 for _, e164 in outcomes])


@pytest.mark.slow
def test_normalize_phones_matches_reference_at_1m():
    frame = phone_corpus(SLOW_ROWS, SEED + 1)
    _compare(frame, reference_column(frame))


def test_one_value_api_matches_reference(corpus):
    """`normalize_phone` (one value) follows the same rules."""
    for phone, country in corpus.head(300).iter_rows():
        assert tokens.normalize_phone(phone, country) == reference_e164(phone, country)


def test_differences_are_reported_with_the_rows():
    frame = pl.DataFrame({"phone": ["+33 6 12 34 56 78", "x"], "country": ["FR", None]})
    message = differences(frame, ["+33612345678", None], ["+33612345679", None])
    assert "1 of 2 rows differ" in message
    assert "'+33 6 12 34 56 78'" in message and "'+33612345679'" in message


def test_corpus_is_deterministic():
    a, b = phone_corpus(3_000, 7), phone_corpus(3_000, 7)
    assert a.equals(b)
    assert not a.equals(phone_corpus(3_000, 8))
    assert phone_corpus(0, 1).height == 0 and phone_corpus(10, 1).height == 10


def test_corpus_composition(corpus, outcomes):
    """The generator keeps its promises: enough valid numbers, every region and non-geographic
    code among them, and every failure path of the contract well represented."""
    assert corpus.height == CI_ROWS
    assert corpus.schema == pl.Schema({"phone": pl.String, "country": pl.String})
    why = Counter(w for w, _ in outcomes)
    share = {k: v / CI_ROWS for k, v in why.items()}
    assert 0.30 <= share["valid"] <= 0.75, share
    for path in ("invalid", "digit_count", "null", "parse:0", "parse:1", "parse:2",
                 "parse:3", "parse:4"):  # fmt: skip
        # 0 invalid country code, 1 not a number, 2 too short after IDD, 3 too short NSN,
        # 4 too long
        assert why[path] >= 20, (path, why)
    assert share["invalid"] >= 0.10 and share["digit_count"] >= 0.02, share

    # every supported region (valid for that region: regions sharing a calling code overlap,
    # so region_code_for_number would credit MF's numbers to BL or GP) and every
    # non-geographic calling code has valid numbers
    by_code: dict[int, list[phonenumbers.PhoneNumber]] = {}
    for e164 in {e for _, e in outcomes if e is not None}:
        num = phonenumbers.parse(e164)
        by_code.setdefault(num.country_code, []).append(num)
    missing = [
        r for r in sorted(phonenumbers.SUPPORTED_REGIONS)
        if not any(phonenumbers.is_valid_number_for_region(num, r)
                   for num in by_code.get(phonenumbers.country_code_for_region(r), ()))
    ]  # fmt: skip
    assert not missing, missing
    assert set(by_code) >= phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    assert {s.region for s in examples()} == phonenumbers.SUPPORTED_REGIONS | {NON_GEO}

    # the inputs are hostile in the promised ways
    phone, country = corpus["phone"], corpus["country"]
    features = {
        "plus": phone.str.starts_with("+"),
        "idd 00": phone.str.contains(r"^00[1-9]"),
        "idd 011": phone.str.contains(r"^011"),
        "(0)": phone.str.contains("(0)", literal=True),
        "tel:": phone.str.to_lowercase().str.contains("tel:"),
        "phone-context": phone.str.contains("phone-context"),
        "extension": phone.str.contains(r"(?i)ext|x\d|#\d"),
        "letters": phone.str.contains(r"[A-Z]{3}"),
        "full-width": phone.str.contains(r"[\uff10-\uff19]"),
        "arabic-indic": phone.str.contains(r"[\u0660-\u0669\u06f0-\u06f9]"),
        "unicode 15-16 digits": phone.str.contains(r"[\U0001ccf0-\U0001ccf9\U00011f50-\U00011f59]"),
        "nbsp or tab": phone.str.contains(r"[\u00a0\t]"),
        "over 250 chars": phone.str.len_chars() > 250,
        "empty": phone == "",
        "white space only": phone.str.contains(r"^\s+$"),
        "null phone": phone.is_null(),
        "null country": country.is_null(),
        "empty country": country == "",
        "lower-case country": country.str.contains(r"^\s*[a-z]{2}\s*$"),
        "bad country": country.is_in(["ZZ", "001", "XX", "UK", "ＦＲ", "ﬁ"]),
        "double plus": phone.str.starts_with("++"),
        "(+cc)": phone.str.starts_with("(+"),
    }
    counts = {name: int(mask.fill_null(False).sum()) for name, mask in features.items()}
    thin = {name: c for name, c in counts.items() if c < 30}
    assert not thin, counts
    assert corpus["phone"].n_unique() >= 0.8 * CI_ROWS


NEAR_MISSES = {
    # what a reimplementation could plausibly get wrong, one change each. (Not "at least 2
    # digits": phonenumbers refuses fewer than 3 digits by itself, so that one is invisible.)
    "region not upper-cased": {"upper": False},
    "no NFKC": {"nfkc": lambda v: v},
    "NFKC of Python's Unicode 14": {"nfkc": lambda v: unicodedata.normalize("NFKC", v)},
    "digits counted with Python's \\d": {"digit": re.compile(r"\d")},
    "separators with Python's \\s": {"separators": re.compile(r"[\s().\-/\u2010-\u2015]")},
    "at most 16 digits": {"bounds": (3, 16)},
    "at most 18 digits": {"bounds": (3, 18)},
    "at least 4 digits": {"bounds": (4, 17)},
    "compact form parsed without +": {"compact_key": True},
    "+ numbers keep the region": {"plus_region": True},
}


def test_corpus_tells_the_contract_from_near_misses(corpus, outcomes):
    """Each near miss of the contract gives a different E.164 on at least 3 rows of the CI
    corpus, so the differential would catch it. Only rows whose prepared input differs are
    parsed, and each near miss stops at 3."""
    rows = [(p, c, e164, _prepare(p, c)) for (p, c), (_, e164) in
            zip(corpus.iter_rows(), outcomes, strict=True) if p is not None]  # fmt: skip
    caught = {}
    for name, change in NEAR_MISSES.items():
        caught[name] = 0
        for phone, country, e164, prepared in rows:
            near = _prepare(phone, country, **change)
            if near != prepared and (None if near is None else _parse(*near)[1]) != e164:
                caught[name] += 1
                if caught[name] == 3:
                    break
    assert min(caught.values()) >= 3, sorted(caught.items(), key=lambda kv: kv[1])


def test_unicode_tables_match_polars():
    """The reference's White_Space, digit and NFKC tables agree with Polars's on every code
    point (Python's own tables are older); a Polars or Python upgrade that moves them fails
    here rather than as a puzzling difference in the differential."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    chars = pl.Series([chr(c) for c in cps])
    digits = chars.str.count_matches(r"\d").to_list()
    nfkc = chars.str.normalize("NFKC").to_list()
    compact = chars.str.replace_all(r"[\s().\-/\u2010-\u2015]", "").to_list()
    stripped = chars.str.strip_chars(tokens.WHITE_SPACE).to_list()
    upper = chars.str.to_uppercase().to_list()
    bad = []
    for cp, d, n, c, s, u in zip(cps, digits, nfkc, compact, stripped, upper, strict=True):
        ch = chr(cp)
        if d != len(_DIGIT.findall(ch)):
            bad.append((hex(cp), "digit"))
        if n != unicodedata.normalize("NFKC", ch.translate(_NEW_NFKC)):
            bad.append((hex(cp), "nfkc"))
        if c != _SEPARATORS.sub("", ch):
            bad.append((hex(cp), "compact"))
        if s != ch.strip(WHITE_SPACE):
            bad.append((hex(cp), "strip"))
        # upper-casing differs for a few newer letters; harmless only while neither side
        # turns one into something a region code could contain
        if u != ch.upper() and (u.isascii() or ch.upper().isascii()):
            bad.append((hex(cp), "upper"))
    assert not bad, bad[:20]


def test_metadata_version_is_the_specs():
    """The token spec pins libphonenumber's metadata (docs/normalization.md §4): another
    version can change which numbers are valid, hence tokens, across the group."""
    spec = (Path(__file__).parents[2] / "docs" / "normalization.md").read_text("utf-8")
    pinned = re.search(r"\*\*Metadata version: libphonenumber (\S+)\*\*", spec)
    assert pinned and phonenumbers.__version__ == pinned.group(1)
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8")
    assert f'"phonenumbers=={pinned.group(1)}"' in pyproject


def test_vectorized_path_decides_the_common_shapes(corpus, monkeypatch):
    """The differential proves identity only if the vectorized path takes part: with no
    group too small to vectorize, it must decide every value written in digits and
    separators (most of the corpus, every region's expressions), and what it decides must
    equal the reference on its own, without the fallback."""
    monkeypatch.setattr("crossgroup.crypto.e164._GROUP_MIN", 1)
    prepared = [(p, c) for p, c in corpus.iter_rows() if p is not None and _prepare(p, c)]
    keys = pl.Series([_prepare(p, c)[0] for p, c in prepared], dtype=pl.String)
    regions = pl.Series([_prepare(p, c)[1] for p, c in prepared], dtype=pl.String)
    got, decided = vectorized_e164(keys, regions)
    simple = keys.str.contains(r"^\+?[0-9 ().\-/\u2010-\u2015]+$") & (keys.str.len_chars() <= 250)
    assert (decided == simple).all()
    assert decided.mean() > 0.6, decided.mean()
    expected = [reference_e164(p, c) for p, c in prepared]
    wrong = [
        (prepared[i], expected[i], g)
        for i, (g, d) in enumerate(zip(got.to_list(), decided.to_list(), strict=True))
        if d and g != expected[i]
    ]
    assert not wrong, wrong[:10]
