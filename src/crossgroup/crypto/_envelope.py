"""The package envelope: binary framing, canonical header, manifest (docs/package-format.md).

Framing (all integers big-endian):
    magic "CGPKG\\0" (6) | version u16 | sender length u8 | sender (ASCII party id)
    | header length u32 | header (canonical JSON) | Ed25519 signature (64) | payload
The signature covers "crossgroup/v1/package-signature\\0" || every byte before it, so the
header (manifest, payload digest, wrapped key, stream parameters) is authentic before it is
parsed. Only the fixed-width framing fields are read before the signature check.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from crossgroup.crypto import _primitives
from crossgroup.crypto.keys import KEM_CLASSIC, KEM_HYBRID, PartyInfo, PartyKeys
from crossgroup.errors import InputError, SecurityError

MAGIC = b"CGPKG\x00"
FORMAT_VERSION = 1
KINDS = ("export", "return", "erasure")
CHUNK_SIZE = 1 << 20
_CHUNK_RANGE = (1 << 10, 1 << 24)
_MAX_HEADER = 1 << 20
_SIG_LABEL = b"crossgroup/v1/package-signature\x00"
_AAD_LABEL = b"crossgroup/v1/package-aad\x00"
_INFO_LABEL = b"crossgroup/v1/package-key\x00"
_PAYLOAD_LABEL = b"crossgroup/v1/package-payload"
_PARTY = re.compile(rb"^[a-z][a-z0-9-]{1,31}$")


def hpke_suite(kem: str):
    """The fixed HPKE suite for a KEM name: KEM, HKDF-SHA256, AES-256-GCM."""
    from cryptography.hazmat.primitives import hpke

    kems = {KEM_HYBRID: hpke.KEM.MLKEM768_X25519, KEM_CLASSIC: hpke.KEM.X25519}
    return hpke.Suite(kems[kem], hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def suite_name(kem: str, chunk_size: int) -> str:
    return f"HPKE({kem},HKDF-SHA256,AES-256-GCM)+STREAM(AES-256-GCM,{chunk_size})+Ed25519"


def payload_key(content_key: bytes, package_id: str) -> bytes:
    """The stream key: HKDF(content key, salt = package id) so it is unique per package."""
    return _primitives.hkdf_sha256(content_key, info=_PAYLOAD_LABEL, salt=bytes.fromhex(package_id))


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class Manifest:
    """What a package says about itself; readable by anyone, signed by the sender."""

    format_version: int
    kind: str
    package_id: str
    sender: str
    recipient: str
    batch_id: str
    as_of: dt.date
    consent_snapshot: dt.datetime | None
    created_at: dt.datetime
    matching_key_id: str
    suite: str
    tables: dict[str, dict]  # name -> {"rows", "schema", "bytes", "sha256"}
    payload_digest: str  # SHA-256 over each table's name, size and SHA-256 (see payload_digest)
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version, "kind": self.kind,
            "package_id": self.package_id, "sender": self.sender, "recipient": self.recipient,
            "batch_id": self.batch_id, "as_of": self.as_of.isoformat(),
            "consent_snapshot": (
                None if self.consent_snapshot is None else self.consent_snapshot.isoformat()
            ),
            "created_at": self.created_at.isoformat(), "matching_key_id": self.matching_key_id,
            "suite": self.suite, "tables": self.tables, "payload_digest": self.payload_digest,
            "summary": self.summary,
        }  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Strictly typed; raises ValueError/KeyError/TypeError on anything unexpected."""
        tables = d["tables"]
        if not isinstance(tables, dict) or not tables:
            raise ValueError("tables")
        for name, t in tables.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError("table name")
            if not isinstance(t["rows"], int) or not isinstance(t["bytes"], int):
                raise TypeError("table counts")
            if t["bytes"] < 0 or not re.fullmatch(r"[0-9a-f]{64}", t["sha256"]):
                raise ValueError("table digest")
            if not isinstance(t["schema"], dict):
                raise TypeError("schema")
        snapshot = d["consent_snapshot"]
        m = cls(
            format_version=_int(d["format_version"]), kind=_str(d["kind"]),
            package_id=_str(d["package_id"]), sender=_str(d["sender"]),
            recipient=_str(d["recipient"]), batch_id=_str(d["batch_id"]),
            as_of=dt.date.fromisoformat(_str(d["as_of"])),
            consent_snapshot=None if snapshot is None else _aware(snapshot),
            created_at=_aware(d["created_at"]), matching_key_id=_str(d["matching_key_id"]),
            suite=_str(d["suite"]), tables=tables, payload_digest=_str(d["payload_digest"]),
            summary=d.get("summary") or {},
        )  # fmt: skip
        if m.kind not in KINDS or not re.fullmatch(r"[0-9a-f]{32}", m.package_id):
            raise ValueError("kind or package id")
        if not re.fullmatch(r"[0-9a-f]{64}", m.payload_digest) or not isinstance(m.summary, dict):
            raise ValueError("digest or summary")
        return m


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError("int")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("str")
    return v


def _aware(v: Any) -> dt.datetime:
    t = dt.datetime.fromisoformat(_str(v))
    if t.tzinfo is None:
        raise ValueError("naive time")
    return t


def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None:
        raise InputError("times in a manifest must carry a time zone")
    return t.astimezone(dt.UTC)


@dataclass(frozen=True)
class Framing:
    version: int
    sender: str
    header_bytes: bytes
    signature_input: bytes
    signed_bytes: bytes
    signature: bytes


@dataclass(frozen=True)
class Header:
    manifest: Manifest
    kem: str
    recipient_key_id: str
    wrapped_key: bytes
    chunk_size: int
    plaintext_bytes: int
    signed_bytes: bytes  # framing + header: what the signature and the AAD cover
    signature: bytes

    @property
    def payload_offset(self) -> int:
        return len(self.signed_bytes) + len(self.signature)

    @property
    def aad(self) -> bytes:
        return hashlib.sha256(_AAD_LABEL + self.signed_bytes).digest()

    @property
    def hpke_info(self) -> bytes:
        return hpke_info(self.manifest)


def hpke_info(manifest: Manifest) -> bytes:
    """HPKE info binds the wrapped key to this exact manifest."""
    return _INFO_LABEL + hashlib.sha256(_canonical(manifest.to_dict())).digest()


def _read_exact(f: BinaryIO, n: int, path: Path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise SecurityError(f"{path.name}: truncated package header")
    return data


def read_framing(f: BinaryIO, path: Path) -> Framing:
    """Read only the fixed framing; nothing in the header is interpreted yet."""
    if f.read(len(MAGIC)) != MAGIC:
        raise SecurityError(f"{path.name}: not a crossgroup package (bad magic)")
    (version,) = struct.unpack(">H", _read_exact(f, 2, path))
    if version != FORMAT_VERSION:
        raise SecurityError(f"{path.name}: unsupported package format version {version}")
    (slen,) = struct.unpack(">B", _read_exact(f, 1, path))
    sender = _read_exact(f, slen, path)
    if not _PARTY.match(sender):
        raise SecurityError(f"{path.name}: malformed package framing (sender)")
    (hlen,) = struct.unpack(">I", _read_exact(f, 4, path))
    if hlen > _MAX_HEADER:
        raise SecurityError(f"{path.name}: malformed package framing (header length)")
    header = _read_exact(f, hlen, path)
    signature = _read_exact(f, 64, path)
    signed = MAGIC + struct.pack(">HB", version, slen) + sender + struct.pack(">I", hlen) + header
    return Framing(version, sender.decode("ascii"), header, _SIG_LABEL + signed, signed, signature)


def parse_header(framing: Framing, path: Path) -> Header:
    """Parse an authenticated header; any inconsistency is a refusal, not a crash."""
    try:
        doc = json.loads(framing.header_bytes)
        if doc["format"] != "crossgroup-package/v1":
            raise ValueError("format")
        manifest = Manifest.from_dict(doc["manifest"])
        key, stream = doc["key"], doc["stream"]
        header = Header(
            manifest=manifest, kem=_str(key["kem"]), recipient_key_id=_str(key["recipient_key_id"]),
            wrapped_key=base64.b64decode(_str(key["wrapped"]), validate=True),
            chunk_size=_int(stream["chunk_size"]), plaintext_bytes=_int(stream["plaintext_bytes"]),
            signed_bytes=framing.signed_bytes, signature=framing.signature,
        )  # fmt: skip
        if header.kem not in (KEM_HYBRID, KEM_CLASSIC) or stream["aead"] != "AES-256-GCM":
            raise ValueError("suite")
        if not _CHUNK_RANGE[0] <= header.chunk_size <= _CHUNK_RANGE[1]:
            raise ValueError("chunk size")
        if header.plaintext_bytes != sum(t["bytes"] for t in manifest.tables.values()):
            raise ValueError("payload size")
        if payload_digest(manifest.tables) != manifest.payload_digest:
            raise ValueError("payload digest")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SecurityError(f"{path.name}: malformed manifest") from None
    if manifest.format_version != FORMAT_VERSION:
        raise SecurityError(
            f"{path.name}: unsupported package format version {manifest.format_version}"
        )
    if manifest.sender != framing.sender:
        raise SecurityError(f"{path.name}: malformed manifest (sender differs from framing)")
    return header


class TableReader:
    """The tables' bytes as one stream (sorted name order), for the STREAM encryptor.

    Each file's size and modification time are checked against what was hashed, so a table
    rewritten while it is sealed is refused (the recipient's digest check is the backstop).
    """

    def __init__(self, files: list[tuple[Path, int]]):
        self._files = files
        self._stats = [_stat(p) for p, _ in files]
        self._index, self._handle = 0, None

    def read(self, n: int) -> bytes:
        parts, left = [], n
        while left and self._index < len(self._files):
            if self._handle is None:
                path, size = self._files[self._index]
                if _stat(path) != self._stats[self._index] or _stat(path)[0] != size:
                    raise InputError(f"table file {path} changed while it was being sealed")
                self._handle = open(path, "rb")  # noqa: SIM115
            piece = self._handle.read(left)
            if not piece:
                self._handle.close()
                self._handle, self._index = None, self._index + 1
                continue
            parts.append(piece)
            left -= len(piece)
        return b"".join(parts)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for (path, _), before in zip(self._files, self._stats, strict=True):
            if _stat(path) != before:
                raise InputError(f"table file {path} changed while it was being sealed")


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def payload_digest(tables: dict[str, dict]) -> str:
    """One digest of the whole plaintext payload, from the per-table digests (one pass)."""
    listing = [[name, tables[name]["bytes"], tables[name]["sha256"]] for name in sorted(tables)]
    return hashlib.sha256(b"crossgroup/v1/payload-digest\x00" + _canonical(listing)).hexdigest()


def _table_entry(name: str, path: Path) -> dict[str, Any]:
    try:
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        schema = {col: str(dtype) for col, dtype in pl.read_parquet_schema(path).items()}
    except Exception:
        raise InputError(f"table {name}: {path} is not a readable Parquet file") from None
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return {"rows": rows, "schema": schema, "bytes": size, "sha256": digest.hexdigest()}


def build_header(
    *, kind: str, sender: PartyKeys, recipient: PartyInfo, tables: dict[str, Path],
    batch_id: str, as_of: dt.date, matching_key_id: str, consent_snapshot: dt.datetime | None,
    summary: dict, now: dt.datetime | None, chunk_size: int,
) -> tuple[Header, bytes]:  # fmt: skip
    """Describe the tables, wrap a fresh content key for the recipient, sign the header."""
    if not _CHUNK_RANGE[0] <= chunk_size <= _CHUNK_RANGE[1]:
        raise InputError("chunk size out of range")
    entries = {name: _table_entry(name, tables[name]) for name in sorted(tables)}
    try:
        json.dumps(summary)
    except (TypeError, ValueError):
        raise InputError("package summary must be JSON-serializable counts") from None
    manifest = Manifest(
        format_version=FORMAT_VERSION, kind=kind, package_id=os.urandom(16).hex(),
        sender=sender.party_id, recipient=recipient.id, batch_id=batch_id, as_of=as_of,
        consent_snapshot=None if consent_snapshot is None else _utc(consent_snapshot),
        created_at=_utc(now or dt.datetime.now(dt.UTC)), matching_key_id=matching_key_id,
        suite=suite_name(recipient.hpke_kem, chunk_size), tables=entries,
        payload_digest=payload_digest(entries), summary=summary,
    )  # fmt: skip
    content_key = os.urandom(32)
    wrapped = hpke_suite(recipient.hpke_kem).encrypt(
        content_key, recipient.encryption_key(), info=hpke_info(manifest)
    )
    plaintext_bytes = sum(e["bytes"] for e in entries.values())
    doc = {
        "format": "crossgroup-package/v1",
        "manifest": manifest.to_dict(),
        "key": {"kem": recipient.hpke_kem, "recipient_key_id": recipient.hpke_key_id,
                "wrapped": base64.b64encode(wrapped).decode()},
        "stream": {"aead": "AES-256-GCM", "chunk_size": chunk_size,
                   "plaintext_bytes": plaintext_bytes},
    }  # fmt: skip
    header_bytes = _canonical(doc)
    sid = sender.party_id.encode("ascii")
    signed = (
        MAGIC + struct.pack(">HB", FORMAT_VERSION, len(sid)) + sid
        + struct.pack(">I", len(header_bytes)) + header_bytes
    )  # fmt: skip
    signature = sender.signing_key.sign(_SIG_LABEL + signed)
    header = Header(manifest, recipient.hpke_kem, recipient.hpke_key_id, wrapped, chunk_size,
                    plaintext_bytes, signed, signature)  # fmt: skip
    return header, content_key
