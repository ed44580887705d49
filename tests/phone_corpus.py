"""A deterministic, hostile corpus of raw phone values and default regions.

Support module for the phone differential test (`tests/crypto/test_phone_differential.py`)
and `benchmarks/bench_phones.py`, imported as `from phone_corpus import phone_corpus` after
putting `tests/` on sys.path.

`phone_corpus(n, seed)` returns exactly `n` rows (`phone`: String, `country`: String, both
nullable) built from libphonenumber's own metadata (`phonenumbers`):

- a **coverage block**: the example number of every number type of every region in
  `phonenumbers.SUPPORTED_REGIONS` and of every non-geographic calling code, in E.164 and
  INTERNATIONAL (no region) and NATIONAL (its own region); about 3,400 rows, so every region
  is present when `n` is at least that (a smaller `n` keeps a seeded sample of them);
- **numbers** (most rows): an example number, a number sampled from a type's
  `national_number_pattern`, or either of them mutated (digits changed, added, dropped,
  swapped, the leading digits replaced, truncated, extended), written in one of many ways
  (E.164, INTERNATIONAL, NATIONAL, RFC3966, other separators, `(0)` after the country code,
  `00` / `011` / `0011` / `810` / the region's own IDD prefixes, trunk and carrier-code
  prefixes, the country code without `+`, `++`, vanity letters, non-ASCII digits, extensions,
  stray punctuation, very long padding, `tel:` URIs), under a default region that is its own,
  another, lower-case, padded, empty, null or not a region at all;
- **hand-written regional cases**: Brazil carrier codes, Argentina `0 11 15`, Japanese
  full-width writing, the NANP `1` and `+1` forms, Italian leading zeros, Russian `8`;
- **random digit strings** of 1 to 20 digits (mostly 3 to 17), bare or behind `+`, `00`, `011`,
  `0`, under random regions, and `+<country code>` followed by random digits of a length the
  region allows (these exercise the metadata's length and pattern paths);
- **junk**: null, empty and white-space values, letters, punctuation, dates, e-mails, very
  long strings, control and format characters.

Only `random.Random(seed)` drives the choices and every set is iterated sorted, so a given
(n, seed) gives the same frame on every run and machine (for one `phonenumbers` version).
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

import phonenumbers
import polars as pl
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberFormat, PhoneNumberType

NON_GEO = "001"
_SRE = re._parser  # the regular-expression parser, to sample strings a metadata pattern matches
_C = re._constants

NUMBER_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
    "voip", "pager", "uan", "voicemail",
)  # fmt: skip
_TYPE_ENUM = {name: getattr(PhoneNumberType, name.upper()) for name in NUMBER_TYPES}

COMMON_REGIONS = (
    "FR", "US", "GB", "DE", "JP", "BR", "AR", "IT", "MX", "CN", "IN", "RU", "CH", "AU", "CA",
    "ES", "NL", "BE", "KR", "SG", "AE", "SA", "ZA", "NG", "HK", "TW", "MC", "LU", "AT", "SE",
)  # fmt: skip
# Not regions (or not the right spelling of one), plus a few that become one only after
# trimming and upper-casing ("ﬁ" upper-cases to "FI").
BAD_REGIONS = (
    "ZZ", "001", "XX", "UK", "EU", "UN", "FRA", "F", "33", "+33", "ＦＲ", "ﬁ", "ß", "\u200bFR",
    "fr\x1c", "F R", "AA", "QO", "US1", "-", "??", "IN\u0307", "gb\u00a0", "\u3000jp",
)  # fmt: skip
FORMATS = (PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL, PhoneNumberFormat.RFC3966)
OTHER_IDD = ("00", "011", "0011", "810", "8~10", "010", "001", "009", "0015", "119", "99", "1200")
SEPARATORS = (
    " ", " ", ".", "-", "", "  ", "\u00a0", "\t", "/", "\u2011", "\u2013", "\u2212", "\u30fc",
    "\u3000", "\u200b", "\u00ad", "_", "~", "\u202f", "\u2015", " - ", "\n", "*", "\ufeff",
)  # fmt: skip
EXTENSIONS = (
    " ext. {}", " x{}", " #{}", ";ext={}", " ext {}", " extension {}", ",{}", " poste {}",
    " доб. {}", " x {}", " Ext:{}", "#{}#", " ext.{}", "  EXT {}", " ﾃﾞ{}", "x{}",
)  # fmt: skip
TRAILING = (".", ",", ";", ")", "!", "?", " -", "*", "#", ":", "'", '"', "]", " /", "。", "…")
# code points of Unicode decimal digit zeros: full-width (NFKC folds them to ASCII),
# Arabic-Indic, extended Arabic-Indic, Devanagari, Bengali, Thai, Mongolian, mathematical
# bold (NFKC folds), Kawi (Unicode 15) and outlined digits (Unicode 16, NFKC folds them)
DIGIT_ZEROS = (
    0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1810, 0x1D7CE, 0x11F50, 0x1CCF0,
    0x116D0, 0x0AE6, 0x1040,
)  # fmt: skip
_KEYPAD = {
    "2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS", "8": "TUV",
    "9": "WXYZ",
}  # fmt: skip
JUNK = (
    "", " ", "   ", "\t", "\n", "\u00a0", "\u3000", "\u200b", "\ufeff", "\x1c", "\x00", "-",
    "+", "++", "+ ", "()", "(+)", "N/A", "n/a", "none", "null", "NULL", "unknown", "0", "00",
    "000", "0000000000", "+0", "+00", "+000", "123", "+123", "1234567890123456789", "#",
    "*#06#", "tel:", "tel:+", "sip:+33612345678@example.com", "mailto:x@example.com",
    "2024-01-31", "31/01/2024", "192.168.1.1", "jean.dupont@example.com", "call me!",
    "+1 (555)", "ext. 12", "x12", "AAA", "1-800-FLOWERS", "+1-800-FLOWERS", "0800 VODAFONE",
    "+44 HELLO", "١٢٣", "١", "+٣٣", "０", "（）", "＋", "+33 6", "+33", "33", "06", "06 12",
    "+33 6 12 34 56 78 90 12 34 56 78", "+1 800", "tel:+1;ext=1", "+(33)", "(0)", "+(0)",
    "+-33", "-+33612345678", ".+33612345678", "'+33612345678", "+'33612345678",
    "\u202e+33612345678", "+33612345678\u202c", "\U0001f4de +33 6 12 34 56 78",
    "☎ 06 12 34 56 78", "Tel.: 06 12 34 56 78", "Mobile: +44 7400 123456",
    "+33 6 12 34 56 78 / +33 1 23 45 67 89", "06 12 34 56 78 ou 01 23 45 67 89",
)  # fmt: skip


@dataclass(frozen=True)
class Seed:
    region: str  # "001" for a non-geographic entity
    cc: int
    nsn: str  # national significant number, leading zeros included
    kind: str


# ---------------------------------------------------------------- metadata


@functools.cache
def metadata(region: str, cc: int) -> PhoneMetadata | None:
    if region == NON_GEO:
        return PhoneMetadata.metadata_for_nongeo_region(cc)
    return PhoneMetadata.metadata_for_region(region)


@functools.cache
def examples() -> tuple[Seed, ...]:
    """The example number of every number type of every region and non-geographic code."""
    out: dict[tuple[str, str], Seed] = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for name in NUMBER_TYPES:
            num = phonenumbers.example_number_for_type(region, _TYPE_ENUM[name])
            if num is not None:
                nsn = phonenumbers.national_significant_number(num)
                out.setdefault((region, nsn), Seed(region, num.country_code, nsn, name))
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        md = metadata(NON_GEO, cc)
        for name in NUMBER_TYPES:
            desc = getattr(md, name, None)
            if desc is not None and desc.example_number:
                nsn = desc.example_number
                out.setdefault((NON_GEO, nsn), Seed(NON_GEO, cc, nsn, name))
        num = phonenumbers.example_number_for_non_geo_entity(cc)
        if num is not None:
            nsn = phonenumbers.national_significant_number(num)
            out.setdefault((NON_GEO, nsn), Seed(NON_GEO, cc, nsn, "example"))
    return tuple(out.values())


@functools.cache
def _parsed(pattern: str) -> list:
    return list(_SRE.parse(pattern))


def sample_pattern(pattern: str, rng: random.Random, max_repeat: int = 4) -> str:
    """A random string that `pattern` (a metadata digit pattern) matches in full."""
    out: list[str] = []
    _emit(_parsed(pattern), rng, out, max_repeat)
    return "".join(out)


def _emit(items, rng: random.Random, out: list[str], max_repeat: int) -> None:
    for op, arg in items:
        if op is _C.LITERAL:
            out.append(chr(arg))
        elif op is _C.IN:
            out.append(_pick_in(arg, rng))
        elif op is _C.BRANCH:
            _emit(rng.choice(arg[1]), rng, out, max_repeat)
        elif op is _C.SUBPATTERN:
            _emit(arg[-1], rng, out, max_repeat)
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, getattr(_C, "POSSESSIVE_REPEAT", None)):
            lo, hi, body = arg
            hi = lo + max_repeat if hi is _C.MAXREPEAT else hi
            for _ in range(rng.randint(lo, hi)):
                _emit(body, rng, out, max_repeat)
        elif op is _C.ANY:
            out.append(str(rng.randrange(10)))
        elif op is _C.AT:
            continue
        else:
            raise ValueError(f"unsupported pattern element {op}")


def _pick_in(items, rng: random.Random) -> str:
    choices: list[str] = []
    for op, arg in items:
        if op is _C.LITERAL:
            choices.append(chr(arg))
        elif op is _C.RANGE:
            choices.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is _C.CATEGORY and arg is _C.CATEGORY_DIGIT:
            choices.extend("0123456789")
        else:
            raise ValueError(f"unsupported class element {op}")
    return rng.choice(choices)


@functools.cache
def idd_prefixes(region: str) -> tuple[str, ...]:
    """International (IDD) prefixes the region's `international_prefix` pattern accepts."""
    md = metadata(region, 0) if region != NON_GEO else None
    if md is None or not md.international_prefix:
        return ()
    rng = random.Random(region)
    found = {md.preferred_international_prefix} if md.preferred_international_prefix else set()
    for _ in range(12):
        try:
            s = sample_pattern(md.international_prefix, rng)
        except ValueError:
            break
        if re.fullmatch(md.international_prefix, s):
            found.add(s)
    found.update(p for p in OTHER_IDD if re.fullmatch(md.international_prefix, p))
    return tuple(sorted(found))


@functools.cache
def _type_patterns(region: str, cc: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    md = metadata(region, cc)
    out = []
    for name in NUMBER_TYPES:
        desc = getattr(md, name, None)
        if desc is not None and desc.national_number_pattern:
            out.append((desc.national_number_pattern, tuple(desc.possible_length or ())))
    return tuple(out)


@functools.cache
def _possible_lengths(region: str, cc: int) -> tuple[int, ...]:
    md = metadata(region, cc)
    lengths = tuple(x for x in (md.general_desc.possible_length or ()) if x > 0)
    return lengths or (8,)


@functools.cache
def _geo_seeds() -> tuple[Seed, ...]:
    return tuple(s for s in examples() if s.region != NON_GEO)


@functools.cache
def _by_region() -> dict[str, tuple[Seed, ...]]:
    out: dict[str, list[Seed]] = {}
    for s in examples():
        out.setdefault(s.region, []).append(s)
    return {k: tuple(v) for k, v in out.items()}


@functools.cache
def _region_list() -> tuple[str, ...]:
    return tuple(sorted(phonenumbers.SUPPORTED_REGIONS))


@functools.cache
def _calling_codes() -> tuple[tuple[int, str], ...]:
    geo = [(phonenumbers.country_code_for_region(r), r) for r in _region_list()]
    non_geo = [(cc, NON_GEO) for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    return tuple(geo + non_geo)


# ---------------------------------------------------------------- numbers


def _number(cc: int, nsn: str) -> PhoneNumber:
    nat = int(nsn) if nsn else 0
    zeros = len(nsn) - len(str(nat)) if nsn else 0
    return PhoneNumber(
        country_code=cc,
        national_number=nat,
        italian_leading_zero=zeros > 0 or None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )


def _sampled_seed(rng: random.Random) -> Seed:
    """A number drawn from one type's national-number pattern (often valid, any range)."""
    base = rng.choice(examples())
    patterns = _type_patterns(base.region, base.cc)
    if not patterns:
        return base
    pattern, lengths = rng.choice(patterns)
    for _ in range(4):
        try:
            nsn = sample_pattern(pattern, rng)
        except ValueError:
            return base
        if not lengths or len(nsn) in lengths:
            return Seed(base.region, base.cc, nsn, "sampled")
    return Seed(base.region, base.cc, nsn, "sampled")


def _mutate(nsn: str, seed: Seed, rng: random.Random) -> str:
    digits = list(nsn) or ["0"]
    how = rng.randrange(9)
    if how == 0:  # change one or two digits
        for _ in range(rng.randint(1, 2)):
            digits[rng.randrange(len(digits))] = str(rng.randrange(10))
    elif how == 1:  # an extra digit
        digits.insert(rng.randrange(len(digits) + 1), str(rng.randrange(10)))
    elif how == 2 and len(digits) > 1:  # a missing digit
        del digits[rng.randrange(len(digits))]
    elif how == 3:  # new leading digits
        k = rng.randint(1, min(3, len(digits)))
        digits[:k] = [str(rng.randrange(10)) for _ in range(k)]
    elif how == 4 and len(digits) > 1:  # two neighbours swapped
        i = rng.randrange(len(digits) - 1)
        digits[i], digits[i + 1] = digits[i + 1], digits[i]
    elif how == 5:  # keep a prefix, random rest to a length the region allows
        keep = rng.randint(1, min(4, len(digits)))
        target = rng.choice(_possible_lengths(seed.region, seed.cc))
        digits = digits[:keep] + [str(rng.randrange(10)) for _ in range(max(0, target - keep))]
    elif how == 6:  # truncated
        digits = digits[: rng.randint(1, len(digits))]
    elif how == 7:  # extended
        digits += [str(rng.randrange(10)) for _ in range(rng.randint(1, 5))]
    else:  # another region's leading digits
        other = rng.choice(examples()).nsn
        k = rng.randint(1, min(4, len(other), len(digits)))
        digits[:k] = list(other[:k])
    return "".join(digits)


def _digits(rng: random.Random, k: int) -> str:
    return f"{rng.randrange(10**k):0{k}d}" if k > 0 else ""


def _group(nsn: str, rng: random.Random, sep: str) -> str:
    parts, i = [], 0
    while i < len(nsn):
        step = rng.randint(1, 4)
        parts.append(nsn[i : i + step])
        i += step
    return sep.join(parts)


def _render(seed: Seed, nsn: str, rng: random.Random) -> str:
    """One way of writing the number (cc, nsn)."""
    cc = seed.cc
    how = rng.randrange(24)
    if how == 0:
        return f"+{cc}{nsn}"
    if how in (1, 2, 3):
        return phonenumbers.format_number(_number(cc, nsn), FORMATS[how - 1])
    if how in (4, 5):
        fmt = PhoneNumberFormat.INTERNATIONAL if how == 4 else PhoneNumberFormat.NATIONAL
        text = phonenumbers.format_number(_number(cc, nsn), fmt)
        return text.replace(" ", rng.choice(SEPARATORS)).replace("-", rng.choice(SEPARATORS))
    if how == 6:
        sep = rng.choice(SEPARATORS)
        return f"+{cc}{sep}{_group(nsn, rng, sep)}"
    if how == 7:  # (0) after the country code
        zero = rng.choice(("(0)", "(0) ", " (0) ", "(0)-", "[0]", "0"))
        return f"+{cc} {zero}{_group(nsn, rng, rng.choice(' .-'))}"
    if how == 8:  # 00 + cc
        return f"00{rng.choice(('', ' '))}{cc} {_group(nsn, rng, ' ')}"
    if how == 9:  # another international prefix
        idd, sep = rng.choice(OTHER_IDD), rng.choice(("", " ", "-"))
        return f"{idd}{sep}{cc}{rng.choice(('', ' '))}{nsn}"
    if how == 10:  # an IDD prefix of the number's own region (right under its own default)
        idds = idd_prefixes(seed.region) or OTHER_IDD
        return f"{rng.choice(idds)} {cc} {_group(nsn, rng, ' ')}"
    if how == 11:  # trunk prefix, right or wrong
        md = metadata(seed.region, cc)
        trunk = (md.national_prefix if md is not None else None) or rng.choice(("0", "8", "1"))
        written = rng.choice((trunk, trunk, "0", "00", f"({trunk})"))
        return f"{written}{rng.choice(('', ' '))}{_group(nsn, rng, ' ')}"
    if how == 12:  # national format with a carrier code
        carrier = rng.choice(("21", "15", "41", "12", "0", "031", "99"))
        return phonenumbers.format_national_number_with_carrier_code(_number(cc, nsn), carrier)
    if how == 13:  # the country code without a plus
        return f"{cc}{rng.choice(('', ' ', '-', '.'))}{_group(nsn, rng, rng.choice(' .-'))}"
    if how == 14:  # plus mishaps
        lead = rng.choice(
            (
                "++",
                "+ ",
                "+(",
                "(+",
                "+ (",
                "＋",
                "+-",
                "+.",
                "++ ",
                "\u2795",
                "+00",
                "+011",
                "+0",
                "+ 00 ",
            )
        )  # the region decides "+00" and "+011"
        close = ")" if "(" in lead else ""
        return f"{lead}{cc}{close} {_group(nsn, rng, ' ')}"
    if how == 15:  # vanity letters over the last digits
        return f"+{cc} {_vanity(nsn, rng)}" if rng.random() < 0.5 else _vanity(nsn, rng)
    if how == 16:  # tel: URI
        return _tel(cc, nsn, rng)
    if how == 17:  # very long: padding that the compact form removes, or not
        pad = rng.choice((" ", "-", ".", "\u00a0", "(", "x", "\u200b", "0"))
        width = rng.randint(120, 300)
        cut = rng.randint(0, len(nsn))
        lead = rng.choice((f"+{cc}", f"+{cc}", "", "0"))
        return f"{lead}{pad * width}{nsn[:cut]}{pad * (width // 3)}{nsn[cut:]}"
    if how == 18:  # leading (+cc)
        return f"(+{cc}){rng.choice(('', ' '))}{_group(nsn, rng, ' ')}"
    if how == 19:
        return nsn
    if how == 20:  # digits only, national number behind the wrong country code
        other_cc, _ = rng.choice(_calling_codes())
        return f"+{other_cc}{nsn}"
    if how == 21:  # national format, INTERNATIONAL without the cc, or dotted groups
        return _group(nsn, rng, rng.choice(SEPARATORS))
    text = phonenumbers.format_number(_number(cc, nsn), PhoneNumberFormat.INTERNATIONAL)
    return f"{text[:1]}{rng.choice(SEPARATORS)}{text[1:]}"


def _vanity(nsn: str, rng: random.Random) -> str:
    # mostly the last 3 to 7 digits; sometimes all but one or two, so that few real digits
    # remain (the digit count is taken before letters become digits)
    if rng.random() < 0.3:
        k = max(1, len(nsn) - rng.randint(0, 2))
    else:
        k = rng.randint(3, min(7, max(3, len(nsn))))
    head, tail = nsn[:-k], nsn[-k:]
    letters = "".join(rng.choice(_KEYPAD[d]) if d in _KEYPAD else d for d in tail)
    if rng.random() < 0.3:
        letters = letters.lower()
    return f"{head}{rng.choice(('', '-', ' '))}{letters}"


def _tel(cc: int, nsn: str, rng: random.Random) -> str:
    scheme = rng.choice(("tel:", "tel:", "TEL:", "Tel:", "tel: "))
    forms = (
        f"+{cc}{nsn}",
        f"{nsn};phone-context=+{cc}",
        f"{nsn};phone-context=example.com",
        f"+{cc}-{_group(nsn, rng, '-')};ext={rng.randint(1, 9999)}",
        f"{nsn};phone-context=",
        f"{nsn};phone-context=+{cc}{nsn[:2]}",
        f"{nsn};isub=12;phone-context=+{cc}",
    )
    return scheme + rng.choice(forms)


def _decorate(text: str, rng: random.Random) -> str:
    """Optional damage and noise on a written number."""
    r = rng.random()
    if r < 0.12:
        text = _digits_in_script(text, rng)
    r = rng.random()
    if r < 0.05:
        text += rng.choice(EXTENSIONS).format(rng.choice(("1", "12", "123", "1234", "99999")))
    elif r < 0.09:  # an extension that brings the digits to around the limit of 17
        have = sum(ch.isdecimal() for ch in text)
        text += rng.choice(EXTENSIONS).format(_digits(rng, max(1, rng.randint(15, 19) - have)))
    elif r < 0.11:  # digits of a newer script after the number (counted, yet not parsed)
        zero = rng.choice((0x11F50, 0x1E4F0, 0x16D70, 0x116D0, 0x0660))
        run = "".join(chr(zero + rng.randrange(10)) for _ in range(rng.randint(1, 9)))
        text += rng.choice((" ", "", " / ")) + run
    elif r < 0.15:
        text += rng.choice(TRAILING)
    r = rng.random()
    if r < 0.10:
        text = rng.choice(("", " ", "\t", "\u00a0", "\u3000", "\n", "\u2028", "  ")) + text
        text += rng.choice(("", " ", "\t", "\u00a0", "\r\n", "\u202f", "\u0085"))
    elif r < 0.14:
        # U+001C..U+001F are white space to Python's str.isspace and `\s`, not White_Space
        junk = rng.choice(("\x1c", "\x1d", "\x1e", "\x1f", "\ufeff", "\u200b", "\u200e",
                           "\x00", "\u00ad", "\u2060"))  # fmt: skip
        text = junk + text if rng.random() < 0.6 else text + junk
    return text


def _digits_in_script(text: str, rng: random.Random) -> str:
    zero = rng.choice(DIGIT_ZEROS)
    everywhere = rng.random() < 0.7
    out = []
    for ch in text:
        if "0" <= ch <= "9" and (everywhere or rng.random() < 0.5):
            out.append(chr(zero + ord(ch) - 48))
        elif ch == "+" and zero == 0xFF10 and rng.random() < 0.5:
            out.append("＋")
        else:
            out.append(ch)
    return "".join(out)


def _country(seed: Seed, rng: random.Random) -> str | None:
    r = rng.random()
    own = seed.region if seed.region != NON_GEO else None
    if r < 0.42:
        return own if own is not None else rng.choice((None, NON_GEO, "US", "FR"))
    if r < 0.50 and own is not None:
        low = own.lower()
        return rng.choice((low, f" {own} ", f"\t{low}\u00a0", own.title(), f"{own}\n"))
    if r < 0.68:
        return rng.choice(COMMON_REGIONS)
    if r < 0.76:
        return rng.choice(_region_list())
    if r < 0.86:
        return None
    if r < 0.90:
        return rng.choice(("", " ", "\u00a0"))
    return rng.choice(BAD_REGIONS)


# ---------------------------------------------------------------- row kinds


def _number_row(rng: random.Random) -> tuple[str | None, str | None]:
    seed = _sampled_seed(rng) if rng.random() < 0.35 else rng.choice(examples())
    nsn = _mutate(seed.nsn, seed, rng) if rng.random() < 0.4 else seed.nsn
    return _decorate(_render(seed, nsn, rng), rng), _country(seed, rng)


def _random_digits_row(rng: random.Random) -> tuple[str | None, str | None]:
    if rng.random() < 0.45:  # +cc then random digits of a length the region allows
        cc, region = rng.choice(_calling_codes())
        length = rng.choice(_possible_lengths(region, cc))
        length += rng.choice((0, 0, 0, 0, -1, 1))
        nsn = _digits(rng, max(1, length))
        lead = rng.choice(("+", "+", "+", "00", ""))
        country = rng.choice((None, region, rng.choice(COMMON_REGIONS), "US"))
        return f"{lead}{cc}{nsn}", country
    if rng.random() < 0.08:  # an IDD prefix and almost nothing after it
        region = rng.choice(COMMON_REGIONS)
        idd = rng.choice(idd_prefixes(region) or OTHER_IDD)
        tail = _digits(rng, rng.randint(1, 3))
        return f"{idd}{rng.choice(('', ' '))}{tail}", region
    length = rng.choice((1, 2, 3, 17, 18, 19)) if rng.random() < 0.2 else rng.randint(3, 17)
    digits = _digits(rng, length)
    lead = rng.choice(("", "", "", "+", "+", "00", "011", "0", "+0", "+1"))
    country = rng.choice((rng.choice(_region_list()), rng.choice(COMMON_REGIONS), None, "ZZ"))
    return lead + digits, country


def _regional_row(rng: random.Random) -> tuple[str | None, str | None]:
    """Writing habits of particular countries, around random subscriber digits."""
    d = functools.partial(_digits, rng)
    area_br = rng.choice(("11", "21", "31", "41", "61", "71", "81", "91"))
    area_ar = rng.choice(("11", "221", "261", "341", "351", "2966", "381"))
    ex = rng.choice(examples())
    cases = (
        # Brazil: trunk 0, a two-digit carrier code, area code, 9-digit mobile or 8-digit fixed
        lambda: (f"0 {rng.choice(('21', '15', '41', '12'))} ({area_br}) 9{d(4)}-{d(4)}", "BR"),
        lambda: (f"0{rng.choice(('21', '15', '41'))}{area_br}9{d(8)}", "BR"),
        lambda: (f"0xx{area_br} 9{d(4)}-{d(4)}", "BR"),
        lambda: (f"({area_br}) {d(4)}-{d(4)}", "BR"),
        lambda: (f"+55 {area_br} 9{d(4)} {d(4)}", rng.choice(("BR", None, "PT"))),
        lambda: (f"0055{area_br}9{d(8)}", "BR"),
        # Argentina: trunk 0, area, 15 before a mobile subscriber number; 9 in international
        lambda: (f"0 {area_ar} 15 {d(10 - len(area_ar) - 4)}-{d(4)}", "AR"),
        lambda: (f"0{area_ar}15{d(10 - len(area_ar))}", "AR"),
        lambda: (f"({area_ar}) 15-{d(10 - len(area_ar) - 4)}-{d(4)}", "AR"),
        lambda: (f"+54 9 {area_ar} {d(10 - len(area_ar))}", rng.choice(("AR", None, "UY"))),
        lambda: (f"+54 {area_ar} 15 {d(10 - len(area_ar))}", rng.choice(("AR", None))),
        lambda: (f"+549{area_ar}{d(10 - len(area_ar))}", None),
        lambda: (f"15 {d(4)}-{d(4)}", "AR"),
        # Japan: full-width digits and punctuation, the long vowel mark as a dash
        lambda: (f"０{rng.choice(('３', '６', '９０', '８０', '１２０'))}－{d(4)}－{d(4)}", "JP"),
        lambda: (f"（０３）{d(4)}ー{d(4)}", "JP"),
        lambda: (f"＋８１　９０　{d(4)}　{d(4)}", rng.choice(("JP", None))),
        lambda: (f"090-{d(4)}-{d(4)}", rng.choice(("JP", "jp", "ｊｐ"))),
        lambda: (f"+81-(0)3-{d(4)}-{d(4)}", None),
        lambda: (f"0120-{d(3)}-{d(3)}", "JP"),
        lambda: (f"0570-{d(3)}-{d(3)}", "JP"),
        lambda: (f"81 3 {d(4)} {d(4)}", "JP"),
        # North America: 1 in front, the +1 forms, vanity
        lambda: (f"1 ({rng.randint(201, 989)}) {d(3)}-{d(4)}", rng.choice(("US", "CA", None))),
        lambda: (f"1-{rng.randint(201, 989)}-{d(3)}-{d(4)}", rng.choice(("US", "CA", "PR", "GU"))),
        lambda: (f"+1 {rng.randint(201, 989)} {d(3)} {d(4)}", None),
        lambda: (f"1-800-{rng.choice(('FLOWERS', 'CALLNOW', 'GOFEDEX', 'CONTACT'))}", "US"),
        lambda: (f"011 33 6 {d(2)} {d(2)} {d(2)} {d(2)}", rng.choice(("US", "CA", "FR"))),
        # France: cc without plus, (0), 00 33
        lambda: (f"33{rng.choice('67')}{d(8)}", rng.choice(("FR", "fr", "BE", None))),
        lambda: (f"+33 (0){rng.choice('1234567')} {d(2)} {d(2)} {d(2)} {d(2)}", None),
        lambda: (f"0033 {rng.choice('67')} {d(2)} {d(2)} {d(2)} {d(2)}", rng.choice(("FR", "US"))),
        lambda: (f"0{rng.choice('67')}.{d(2)}.{d(2)}.{d(2)}.{d(2)}", rng.choice(("FR", "RE"))),
        # Italy and San Marino: leading zeros of fixed lines are part of the number
        lambda: (f"+39 0{d(1)} {d(4)} {d(4)}", None),
        lambda: (f"06 {d(4)} {d(4)}", rng.choice(("IT", "VA", "SM"))),
        lambda: (f"+378 0549 {d(6)}", None),
        # Russia and Kazakhstan: trunk 8, IDD 8~10
        lambda: (f"8 (9{d(2)}) {d(3)}-{d(2)}-{d(2)}", rng.choice(("RU", "KZ"))),
        lambda: (f"8~10 33 6{d(8)}", "RU"),
        lambda: (f"810 33 6{d(8)}", "RU"),
        # the United Kingdom and its crown dependencies
        lambda: (f"07{d(3)} {d(6)}", rng.choice(("GB", "JE", "GG", "IM"))),
        lambda: (f"+44 (0) 20 {d(4)} {d(4)}", None),
        # Germany: variable lengths
        lambda: (
            f"0{rng.choice(('30', '89', '221', '6221', '33632'))}/{d(rng.randint(3, 8))}",
            "DE",
        ),
        # China, India, Mexico (the old 044 / 045 / 1 mobile prefixes)
        lambda: (f"1{rng.choice(('3', '5', '8'))}{d(1)} {d(4)} {d(4)}", rng.choice(("CN", "HK"))),
        lambda: (f"+91 9{d(4)} {d(5)}", None),
        lambda: (f"044 55 {d(4)} {d(4)}", "MX"),
        lambda: (f"+52 1 55 {d(4)} {d(4)}", None),
        # a long value that only the compact form makes short, behind U+001C..U+001F (white
        # space to Python's `\s` and str.strip, not Unicode White_Space)
        lambda: (
            f"{chr(rng.randint(0x1C, 0x1F))}+{ex.cc}{' ' * rng.randint(240, 300)}{ex.nsn}",
            rng.choice((ex.region, None, "FR")),
        ),
    )
    return rng.choice(cases)()


def _junk_row(rng: random.Random) -> tuple[str | None, str | None]:
    country = rng.choice((None, "FR", "US", "", "ZZ", rng.choice(_region_list())))
    r = rng.random()
    if r < 0.06:
        return None, country
    if r < 0.10:
        return "", country
    if r < 0.55:
        return rng.choice(JUNK), country
    if r < 0.70:  # printable ASCII noise with a few digits
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-().#*/,;:"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))), country
    if r < 0.80:  # very long
        unit = rng.choice(("1", "12 ", "a", "+33 6 12 34 56 78 ", "-", " ", "x1"))
        return unit * rng.randint(60, 400), country
    if r < 0.90:  # arbitrary code points
        blocks = ((0x20, 0x2FF), (0x2000, 0x30FF), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF))
        cps = [rng.randint(*rng.choice(blocks)) for _ in range(rng.randint(1, 16))]
        return "".join(chr(c) for c in cps), country
    number = _digits(rng, rng.randint(5, 12))
    words = rng.choice(("tel {}", "{} (home)", "n° {}", "{} ou rien", "mob:{}", "{}!!", "a{}"))
    return words.format(number), country


def _coverage() -> list[tuple[str | None, str | None]]:
    rows: list[tuple[str | None, str | None]] = []
    for s in examples():
        num = _number(s.cc, s.nsn)
        rows.append((f"+{s.cc}{s.nsn}", s.region if s.region != NON_GEO else None))
        rows.append((phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL), None))
        if s.region != NON_GEO:
            rows.append((phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL), s.region))
    return rows


_KINDS = ((0.70, _number_row), (0.83, _random_digits_row), (0.91, _regional_row), (1.0, _junk_row))


def phone_corpus(n: int, seed: int = 0) -> pl.DataFrame:
    """`n` rows of raw `phone` and default-region `country` (see the module docstring)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    rows = _coverage()
    if len(rows) > n:
        rows = rng.sample(rows, n)
    while len(rows) < n:
        r = rng.random()
        make = next(fn for bound, fn in _KINDS if r < bound)
        rows.append(make(rng))
    rng.shuffle(rows)
    phones, countries = zip(*rows, strict=True) if rows else ((), ())
    return pl.DataFrame(
        {"phone": list(phones), "country": list(countries)},
        schema={"phone": pl.String, "country": pl.String},
    )
