"""A test-side leak scanner and the spec's keys, independent of the code under test.

Needles (tokens and refs, 16 bytes) are computed here with `hmac` and RFC 5869 HKDF written
out from docs/normalization.md, never with `crossgroup.crypto`. Every output file is decoded
by its kind before it is searched, since a search of compressed bytes finds nothing:

- Parquet: read back with pyarrow; every value of every column (strings, binaries, nested
  lists, structs and maps) and the file's key-value metadata;
- JSON / JSONL (`.json`, `.jsonl`, `.head`): every key and scalar, and the raw text;
- a sealed package (`.cgpkg`): the framing's sender and every key and scalar of its readable
  header (manifest included); the payload is ciphertext and is only counted, not searched;
- anything else (HTML, CSV, TOML, PEM, ledgers, locks...): the whole file, as bytes and text.

Each value is searched for every needle as raw bytes, as hex (either case, either nibble
alignment) and as base64 (standard or URL-safe, padded or not, at any alignment inside a
longer run), so a token embedded in a longer encoded blob is found too.

Support module, imported as `from leak_scan import ...` after putting `tests/` on sys.path.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import struct
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

WIDTH = 16  # TOKEN_BYTES of the spec: every token and ref is 16 bytes

# ---------------------------------------------------------------- the spec's keys and tokens


def hkdf_sha256(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 with SHA-256 and no salt (= HashLen zero bytes), written out with hmac."""
    prk = hmac.digest(b"\x00" * 32, ikm, "sha256")
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        okm += block
        counter += 1
    return okm[:length]


def email_key(matching_secret: bytes, epoch: int) -> bytes:
    return hkdf_sha256(matching_secret, f"crossgroup/v1/token/email/epoch/{epoch}".encode())


def phone_key(matching_secret: bytes, epoch: int) -> bytes:
    return hkdf_sha256(matching_secret, f"crossgroup/v1/token/phone/epoch/{epoch}".encode())


def ref_key(local_secret: bytes) -> bytes:
    return hkdf_sha256(local_secret, b"crossgroup/v1/maison-ref")


def hmac16(key: bytes, value: str) -> bytes:
    """token = HMAC-SHA256(key, UTF-8(value))[0:16]."""
    return hmac.digest(key, value.encode("utf-8"), "sha256")[:WIDTH]


def rough_email(raw: str | None) -> str | None:
    """NFKC, trim, lower-case (spec §3 steps 1-3), without the shape check: a needle for a
    value the product would refuse is only an extra needle, which cannot hide a leak."""
    if raw is None:
        return None
    value = unicodedata.normalize("NFKC", raw).strip().lower()
    return value or None


def rough_phone(raw: str | None, country: str | None) -> str | None:
    """E.164 by libphonenumber directly (spec §4), valid numbers only."""
    import phonenumbers

    if raw is None:
        return None
    value = unicodedata.normalize("NFKC", raw).strip()
    region = (country or "").strip().upper() or None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def crm_needles(
    customers: Iterable[dict], *, local_secret: bytes, matching_secret: bytes, epoch: int
) -> tuple[set[bytes], set[bytes]]:
    """(refs, tokens) of CRM rows with customer_id, email, phone and country."""
    k_ref = ref_key(local_secret)
    k_email, k_phone = email_key(matching_secret, epoch), phone_key(matching_secret, epoch)
    refs, tokens = set(), set()
    for row in customers:
        refs.add(hmac16(k_ref, row["customer_id"]))
        if (email := rough_email(row.get("email"))) is not None:
            tokens.add(hmac16(k_email, email))
        if (phone := rough_phone(row.get("phone"), row.get("country"))) is not None:
            tokens.add(hmac16(k_phone, phone))
    return refs, tokens


# ---------------------------------------------------------------- decoding files by kind

_MAGIC = b"CGPKG\x00"  # docs/package-format.md: framing of a sealed package
_JSON_SUFFIXES = (".json", ".jsonl", ".head")


def _walk(value) -> Iterator[str | bytes]:
    """Every string or bytes inside a decoded value (dict keys included)."""
    if isinstance(value, (str, bytes)):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(k)
            yield from _walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, (bytearray, memoryview)):
        yield bytes(value)
    elif value is not None:
        yield str(value)


def _parquet_values(path: Path) -> Iterator[tuple[str, str | bytes]]:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    for k, v in meta.items():
        yield "metadata", k
        yield "metadata", v
    table = pq.read_table(path)
    for name in table.column_names:
        yield "column name", name
        for value in table.column(name).to_pylist():
            for leaf in _walk(value):
                yield name, leaf


def _json_values(text: str) -> Iterator[tuple[str, str | bytes]]:
    try:
        docs = [json.loads(text)]
    except ValueError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    for doc in docs:
        for leaf in _walk(doc):
            yield "json", leaf


def _package_values(path: Path, data: bytes) -> tuple[list[tuple[str, str | bytes]], int]:
    """Values of the readable framing and header of a sealed package, and the payload size."""
    view = memoryview(data)
    at = len(_MAGIC) + 2
    (slen,) = struct.unpack_from(">B", view, at)
    sender = bytes(view[at + 1 : at + 1 + slen])
    at += 1 + slen
    (hlen,) = struct.unpack_from(">I", view, at)
    header = bytes(view[at + 4 : at + 4 + hlen])
    payload = len(data) - (at + 4 + hlen + 64)
    values: list[tuple[str, str | bytes]] = [("sender", sender)]
    values += [("header", v) for v in _walk(json.loads(header))]
    return values, payload


def decoded_values(path: Path) -> tuple[str, list[tuple[str, str | bytes]], int]:
    """(kind, [(where, value)], opaque payload bytes) of one file."""
    if path.suffix == ".parquet":
        return "parquet", list(_parquet_values(path)), 0
    data = path.read_bytes()
    if path.suffix == ".cgpkg" and data.startswith(_MAGIC):
        values, opaque = _package_values(path, data)
        return "package", values, opaque
    if path.suffix in _JSON_SUFFIXES:
        text = data.decode("utf-8")
        return "json", [("text", text), *_json_values(text)], 0
    return "bytes", [("file", data)], 0


# ---------------------------------------------------------------- searching one value

_HEX_RUN = re.compile(rf"[0-9a-fA-F]{{{2 * WIDTH},}}")
# 16 bytes are 22 base64 characters without padding; '-' and '_' are the URL-safe alphabet
_B64_RUN = re.compile(rf"[A-Za-z0-9+/_-]{{{-(-WIDTH * 4 // 3)},}}")
_URLSAFE = str.maketrans("-_", "+/")


def _window_hit(data: bytes, needles: frozenset[bytes]) -> bool:
    if len(data) == WIDTH:
        return data in needles
    return any(data[i : i + WIDTH] in needles for i in range(len(data) - WIDTH + 1))


def _b64_decode(chars: str) -> bytes:
    chars = chars.translate(_URLSAFE)
    if len(chars) % 4 == 1:
        chars = chars[:-1]
    return base64.b64decode(chars + "=" * (-len(chars) % 4))


def forms_found(value: str | bytes, needles: frozenset[bytes]) -> list[str]:
    """The encodings ('raw', 'hex', 'base64') in which some needle occurs inside value."""
    if isinstance(value, str):
        data, text = [value.encode("utf-8")], value
        if max(map(ord, value), default=0) < 256:  # bytes carried as code points (JSON \u00XX)
            data.append(value.encode("latin-1"))
    else:
        data, text = [value], value.decode("latin-1")
    found = []
    if any(_window_hit(d, needles) for d in data):
        found.append("raw")
    for run in _HEX_RUN.findall(text):
        if any(
            _window_hit(bytes.fromhex(run[o : o + (len(run) - o) // 2 * 2]), needles)
            for o in (0, 1)
        ):
            found.append("hex")
            break
    for run in _B64_RUN.findall(text):
        if any(_window_hit(_b64_decode(run[o:]), needles) for o in range(4)):
            found.append("base64")
            break
    return found


# ---------------------------------------------------------------- scanning files


@dataclass
class Scan:
    files: dict[str, str] = field(default_factory=dict)  # path -> kind
    values: int = 0
    opaque_bytes: int = 0
    hits: list[tuple[str, str, str]] = field(default_factory=list)  # (path, where, form)


def scan(roots: Iterable[Path], needles: Iterable[bytes]) -> Scan:
    """Decode and search every file under roots (files or folders)."""
    wanted = frozenset(needles)
    assert wanted and all(len(n) == WIDTH for n in wanted), "needles are 16-byte values"
    result = Scan()
    paths: list[Path] = []
    for root in roots:
        paths += [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        kind, values, opaque = decoded_values(path)
        result.files[str(path)] = kind
        result.opaque_bytes += opaque
        for where, value in values:
            result.values += 1
            for form in forms_found(value, wanted):
                result.hits.append((str(path), where, form))
    return result
