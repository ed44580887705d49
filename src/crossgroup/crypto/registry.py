"""The public registry: parties, public keys, fingerprints, key ids, matching-key epochs.

Key ids are derived from the key (SHA-256 over a label and the public key, or HKDF of a
secret) and never reveal it. The registry holds no secret and is copied into every party
directory; parties compare fingerprints out of band (keys/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from crossgroup import config
from crossgroup.crypto import _primitives
from crossgroup.errors import InputError, SecurityError

REGISTRY_FORMAT = "crossgroup-registry/v1"
KEM_HYBRID = "MLKEM768-X25519"
KEM_CLASSIC = "X25519"


# ---------------------------------------------------------------- key ids


def _public_id(prefix: str, label: str, public: bytes) -> str:
    return (
        f"{prefix}-"
        + hashlib.sha256(f"crossgroup/v1/key-id/{label}\x00".encode() + public).hexdigest()[:16]
    )


def _secret_id(prefix: str, label: str, secret: bytes) -> str:
    return (
        f"{prefix}-"
        + _primitives.hkdf_sha256(
            secret, info=f"crossgroup/v1/key-id/{label}".encode(), length=8
        ).hex()
    )


def fingerprint(public: bytes) -> str:
    """SHA-256 of the raw public key bytes, as `sha256:<hex>` (check it out of band)."""
    return "sha256:" + hashlib.sha256(public).hexdigest()


def matching_key_id(secret: bytes) -> str:
    """`mk-` + 8 bytes of HKDF(secret, 'crossgroup/v1/key-id/matching'): one-way."""
    return _secret_id("mk", "matching", secret)


def local_key_id(secret: bytes) -> str:
    return _secret_id("lk", "local", secret)


# ---------------------------------------------------------------- value types


@dataclass(frozen=True)
class PartyInfo:
    """One party's public entry in the registry."""

    id: str
    role: str
    name: str
    sector: str | None
    signing_key_id: str
    signing_public: bytes = field(repr=False)
    signing_fingerprint: str
    hpke_kem: str
    hpke_key_id: str
    hpke_public: bytes = field(repr=False)  # x25519 (32) or ML-KEM-768 (1184) || x25519 (32)
    hpke_fingerprint: str

    def verify_key(self) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(self.signing_public)

    def encryption_key(self):
        """The recipient's HPKE public key object for its KEM."""
        xpub = x25519.X25519PublicKey.from_public_bytes(self.hpke_public[-32:])
        if self.hpke_kem == KEM_CLASSIC:
            return xpub
        from cryptography.hazmat.primitives import hpke
        from cryptography.hazmat.primitives.asymmetric import mlkem

        mpub = mlkem.MLKEM768PublicKey.from_public_bytes(self.hpke_public[:-32])
        return hpke.MLKEM768X25519PublicKey(mpub, xpub)


@dataclass(frozen=True)
class MatchingKeyEntry:
    key_id: str
    epoch: int
    created_at: str
    status: str  # "current" | "retired"


@dataclass(frozen=True)
class Registry:
    """The public registry: parties, their public keys, and the matching-key epochs."""

    matching_key_id: str
    processor_id: str
    parties: tuple[PartyInfo, ...]
    matching_keys: tuple[MatchingKeyEntry, ...] = ()

    def party(self, party_id: str) -> PartyInfo:
        for p in self.parties:
            if p.id == party_id:
                return p
        raise SecurityError(f"unknown party {party_id!r}: not in the registry")

    def maisons(self) -> list[PartyInfo]:
        return [p for p in self.parties if p.role == "maison"]

    @property
    def matching_epoch(self) -> int:
        return next((m.epoch for m in self.matching_keys if m.key_id == self.matching_key_id), 1)

    def to_toml(self) -> str:
        lines = [
            "# crossgroup public key registry: no secret here. Compare fingerprints out of band.",
            f"format = {_q(REGISTRY_FORMAT)}",
            f"processor_id = {_q(self.processor_id)}",
            f"matching_key_id = {_q(self.matching_key_id)}",
            "",
        ]
        for m in self.matching_keys:
            lines += ["[[matching_key]]", f"id = {_q(m.key_id)}", f"epoch = {m.epoch}"]
            lines += [f"created_at = {_q(m.created_at)}", f"status = {_q(m.status)}", ""]
        for p in self.parties:
            lines += [
                "[[party]]",
                f"id = {_q(p.id)}",
                f"role = {_q(p.role)}",
                f"name = {_q(p.name)}",
            ]
            if p.sector is not None:
                lines.append(f"sector = {_q(p.sector)}")
            lines += [
                f"signing_key_id = {_q(p.signing_key_id)}",
                f"signing_public = {_q(p.signing_public.hex())}",
                f"signing_fingerprint = {_q(p.signing_fingerprint)}",
                f"hpke_kem = {_q(p.hpke_kem)}",
                f"hpke_key_id = {_q(p.hpke_key_id)}",
                f"hpke_public = {_q(base64.b64encode(p.hpke_public).decode())}",
                f"hpke_fingerprint = {_q(p.hpke_fingerprint)}",
                "",
            ]
        return "\n".join(lines)


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def load_registry(path: Path) -> Registry:
    """Parse and check a registry file; a key that does not match its id is refused."""
    raw = config.read_toml(path, "registry")
    if raw.get("format") != REGISTRY_FORMAT:
        raise InputError(f"{path}: not a {REGISTRY_FORMAT} file")
    try:
        parties = tuple(_party_from(p) for p in raw.get("party", []))
        entries = tuple(
            MatchingKeyEntry(m["id"], int(m["epoch"]), str(m["created_at"]), m["status"])
            for m in raw.get("matching_key", [])
        )
        reg = Registry(raw["matching_key_id"], raw["processor_id"], parties, entries)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: malformed registry ({type(e).__name__} {e})") from None
    for p in parties:
        check_party_keys(p, path)
    return reg


# Raw public-key lengths: Ed25519 32; X25519 32; ML-KEM-768 (1184) || X25519 (32).
SIGNING_PUBLIC_LEN = 32
HPKE_PUBLIC_LEN = {KEM_CLASSIC: 32, KEM_HYBRID: 1184 + 32}


def check_party_keys(p: PartyInfo, source: Path | str) -> None:
    """Recompute every id and fingerprint from the public keys; refuse any mismatch.

    The file's `*_fingerprint` and `*_key_id` fields are only claims: an edited copy that
    swaps a public key (and its public, unkeyed key id) but keeps the genuine fingerprint
    text must not load, or operators would compare the genuine fingerprint out of band
    while packages go to another key.
    """
    if len(p.signing_public) != SIGNING_PUBLIC_LEN:
        raise SecurityError(
            f"{source}: party {p.id!r} signing_public has {len(p.signing_public)} bytes, "
            f"expected {SIGNING_PUBLIC_LEN} (Ed25519)"
        )
    if p.hpke_kem not in HPKE_PUBLIC_LEN:
        raise SecurityError(f"{source}: party {p.id!r} hpke_kem {p.hpke_kem!r} is not supported")
    if len(p.hpke_public) != HPKE_PUBLIC_LEN[p.hpke_kem]:
        raise SecurityError(
            f"{source}: party {p.id!r} hpke_public has {len(p.hpke_public)} bytes, "
            f"expected {HPKE_PUBLIC_LEN[p.hpke_kem]} for {p.hpke_kem}"
        )
    checks = [
        ("signing_key_id", p.signing_key_id, _public_id("sig", "ed25519", p.signing_public)),
        ("signing_fingerprint", p.signing_fingerprint, fingerprint(p.signing_public)),
        ("hpke_key_id", p.hpke_key_id, _public_id("kem", p.hpke_kem, p.hpke_public)),
        ("hpke_fingerprint", p.hpke_fingerprint, fingerprint(p.hpke_public)),
    ]
    for name, stated, computed in checks:
        if stated != computed:
            raise SecurityError(
                f"{source}: party {p.id!r} {name} does not match its public key "
                "(registry copy altered?): refusing it"
            )
    try:  # a key of the right length that is no valid point/encoding is refused too
        p.verify_key()
        p.encryption_key()
    except SecurityError:
        raise
    except Exception:
        raise SecurityError(f"{source}: party {p.id!r} holds a malformed public key") from None


def _party_from(p: dict[str, Any]) -> PartyInfo:
    return PartyInfo(
        id=p["id"], role=p["role"], name=p["name"], sector=p.get("sector"),
        signing_key_id=p["signing_key_id"], signing_public=bytes.fromhex(p["signing_public"]),
        signing_fingerprint=p["signing_fingerprint"], hpke_kem=p["hpke_kem"],
        hpke_key_id=p["hpke_key_id"], hpke_public=base64.b64decode(p["hpke_public"], validate=True),
        hpke_fingerprint=p["hpke_fingerprint"],
    )  # fmt: skip
