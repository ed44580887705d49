"""Party keys, the public registry, key ids and matching-key rotation (keys/README.md).

Layout made by `init_keys`: KEYDIR/registry.toml and one directory per party holding a copy
of the registry, `party.toml` (public metadata) and its private files (mode 0600, dirs
0700). Maisons also hold the matching secret of every epoch and their local secret; the
processor directory never holds either. Longer than most modules because generation,
rotation, loading and the processor's no-secret check all read and write that one layout:
kept on one page, the layout is stated once and cannot drift between writer and reader.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from crossgroup import config
from crossgroup.crypto import _keyfiles
from crossgroup.crypto.registry import (
    KEM_CLASSIC,
    KEM_HYBRID,
    REGISTRY_FORMAT,
    MatchingKeyEntry,
    PartyInfo,
    Registry,
    _public_id,
    _q,
    _secret_id,
    fingerprint,
    load_registry,
    local_key_id,
    matching_key_id,
)
from crossgroup.errors import InputError, SecurityError

__all__ = [
    "KEM_CLASSIC",
    "KEM_HYBRID",
    "PROCESSOR_ID",
    "REGISTRY_FORMAT",
    "MatchingKey",
    "PartyInfo",
    "PartyKeys",
    "Registry",
    "describe_party",
    "init_keys",
    "load_party",
    "load_registry",
    "matching_key_id",
    "rotate_matching_key",
]

PROCESSOR_ID = "processor"
# Read when a protected key directory is loaded without an explicit passphrase, so commands
# without a `--passphrase-env` option (export, process, import, ...) work on protected
# directories. Only ever read from the environment, never from argv.
PASSPHRASE_ENV = "CROSSGROUP_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
# The processor's own key for the suppression ledger (group/erasure.py): not a matching or
# local secret, so it cannot compute a token or a ref, only recognise erased ones.
SUPPRESSION_KEY_FILE = "suppression.key"
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class MatchingKey:
    """The group matching secret of one epoch; repr shows the id only."""

    secret: bytes = field(repr=False)
    key_id: str
    epoch: int


@dataclass(frozen=True)
class PartyKeys:
    """Everything one party may use, loaded from its own directory; repr hides private parts."""

    party_id: str
    role: str  # "maison" | "processor"
    directory: Path
    registry: Registry
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)
    decryption_key: Any = field(repr=False)  # HPKE private key for the registry's KEM
    matching: MatchingKey | None = field(repr=False)  # maisons only: the current epoch
    local_secret: bytes | None = field(repr=False)  # maisons only
    matching_keys: dict[str, MatchingKey] = field(default_factory=dict, repr=False)
    suppression_key: bytes | None = field(default=None, repr=False)  # processor only

    @property
    def info(self) -> PartyInfo:
        return self.registry.party(self.party_id)

    def matching_key(self, key_id: str) -> MatchingKey:
        """The matching key of any held epoch (old ones only to read old packages)."""
        try:
            return self.matching_keys[key_id]
        except KeyError:
            raise SecurityError(
                f"matching-key mismatch: {self.party_id} holds no key {key_id}"
            ) from None


# ---------------------------------------------------------------- generation


def hybrid_kem_available() -> bool:
    try:
        from cryptography.hazmat.primitives import hpke
        from cryptography.hazmat.primitives.asymmetric import mlkem

        mlkem.MLKEM768PrivateKey.generate()
        return hasattr(hpke.KEM, "MLKEM768_X25519")
    except Exception:
        return False


def _now_text(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")


def _new_party(
    directory: Path, party_id: str, role: str, kem: str, passphrase: str | None
) -> PartyInfo:
    _keyfiles.make_private_dir(directory)
    sign = ed25519.Ed25519PrivateKey.generate()
    _keyfiles.write_private_key(directory / "signing.pem", sign, passphrase=passphrase)
    xkey = x25519.X25519PrivateKey.generate()
    _keyfiles.write_private_key(directory / "hpke-x25519.pem", xkey, passphrase=passphrase)
    hpke_public = xkey.public_key().public_bytes(*_RAW)
    if kem == KEM_HYBRID:
        from cryptography.hazmat.primitives.asymmetric import mlkem

        mkey = mlkem.MLKEM768PrivateKey.generate()
        _keyfiles.write_private_key(directory / "hpke-mlkem768.pem", mkey, passphrase=passphrase)
        hpke_public = mkey.public_key().public_bytes_raw() + hpke_public
    name, sector = "Group processor", None
    if role == "maison":
        name, sector = party_id, None
        cfg_path = config.maison_config_path(party_id)
        if cfg_path.is_file():
            cfg = config.load_maison(cfg_path)
            name, sector = cfg.name, cfg.sector
    sign_pub = sign.public_key().public_bytes(*_RAW)
    return PartyInfo(
        id=party_id, role=role, name=name, sector=sector,
        signing_key_id=_public_id("sig", "ed25519", sign_pub), signing_public=sign_pub,
        signing_fingerprint=fingerprint(sign_pub), hpke_kem=kem,
        hpke_key_id=_public_id("kem", kem, hpke_public), hpke_public=hpke_public,
        hpke_fingerprint=fingerprint(hpke_public),
    )  # fmt: skip


def _write_matching(directory: Path, key: MatchingKey, passphrase: str | None) -> None:
    mdir = directory / "matching"
    _keyfiles.make_private_dir(mdir)
    path = mdir / f"epoch-{key.epoch}.secret"
    _keyfiles.write_secret(path, key.secret, kind="matching", key_id=key.key_id,
                           passphrase=passphrase, extra={"epoch": key.epoch})  # fmt: skip


def _env_passphrase() -> str | None:
    return os.environ.get(PASSPHRASE_ENV) or None


def _check_passphrase(
    pdir: Path, party_id: str, meta: dict[str, Any], current_id: str, passphrase: str
) -> None:
    """Decrypt a maison's current matching secret and local secret before anything is written.

    A mistyped passphrase would otherwise seal the new epoch under a passphrase nobody knows.
    """
    current = [m for m in meta.get("matching_key", []) if m.get("id") == current_id]
    if not current:
        raise SecurityError(
            f"matching-key mismatch: {pdir} does not hold the registry's current key {current_id}"
        )
    try:
        secret, _ = _keyfiles.read_secret(
            pdir / current[0]["file"], kind="matching", passphrase=passphrase
        )
        local, _ = _keyfiles.read_secret(pdir / "local.secret", kind="local", passphrase=passphrase)
    except SecurityError as e:
        if "wrong passphrase" not in str(e):
            raise
        raise SecurityError(f"wrong passphrase for {party_id}: nothing was written") from None
    if matching_key_id(secret) != current_id:
        raise SecurityError(f"{pdir / current[0]['file']}: secret does not match its key id")
    if local_key_id(local) != meta.get("local_key_id"):
        raise SecurityError(
            f"{pdir / 'local.secret'}: secret does not match party.toml's local_key_id"
        )


def suppression_key_id(secret: bytes) -> str:
    return _secret_id("sk", "suppression", secret)


def write_suppression_key(party_dir: Path, *, passphrase: str | None = None) -> str:
    """Generate the processor's suppression-ledger key in its directory; returns its key id."""
    path = Path(party_dir) / SUPPRESSION_KEY_FILE
    if path.exists():
        raise InputError(f"{path} already exists: refusing to overwrite the suppression key")
    secret = os.urandom(32)
    key_id = suppression_key_id(secret)
    _keyfiles.write_secret(path, secret, kind="suppression", key_id=key_id, passphrase=passphrase)
    return key_id


def _write_public(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _party_toml(
    info: PartyInfo,
    *,
    protected: bool,
    local_id: str | None,
    matching: list[MatchingKey],
    suppression_id: str | None = None,
) -> str:
    lines = [
        "# Public metadata of this party directory (no secret in here).",
        f"id = {_q(info.id)}", f"role = {_q(info.role)}", f"protected = {str(protected).lower()}",
        f"signing_key_id = {_q(info.signing_key_id)}", f"hpke_key_id = {_q(info.hpke_key_id)}",
    ]  # fmt: skip
    if local_id:
        lines.append(f"local_key_id = {_q(local_id)}")
    if suppression_id:
        lines.append(f"suppression_key_id = {_q(suppression_id)}")
    for m in matching:
        lines += ["", "[[matching_key]]", f"id = {_q(m.key_id)}", f"epoch = {m.epoch}",
                  f"file = {_q(f'matching/epoch-{m.epoch}.secret')}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def init_keys(
    keydir: Path,
    maisons: list[str],
    *,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
) -> Registry:
    """Generate every party's keys, the matching secret and the registry under `keydir`.

    Everything is built in a private staging folder and moved in at the end, so a failure
    leaves nothing behind. Refuses to overwrite an existing key directory.
    """
    keydir = Path(keydir)
    ids = list(dict.fromkeys(maisons))
    bad = [m for m in ids if not config.PARTY_ID.match(m) or m == PROCESSOR_ID]
    if not ids or bad:
        raise InputError(
            "--maisons needs party ids (2-32 lower-case letters, digits or '-'), not 'processor'"
        )
    if (keydir / "registry.toml").exists() or any(
        (keydir / p).exists() for p in [PROCESSOR_ID, *ids]
    ):
        raise InputError(f"{keydir} already holds keys: refusing to overwrite them")
    kem = KEM_HYBRID if hybrid_kem_available() else KEM_CLASSIC
    keydir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".keys-staging-", dir=keydir))
    try:
        secret = os.urandom(32)
        matching = MatchingKey(secret, matching_key_id(secret), 1)
        parties = [_new_party(staging / PROCESSOR_ID, PROCESSOR_ID, "processor", kem, passphrase)]
        suppression_id = write_suppression_key(staging / PROCESSOR_ID, passphrase=passphrase)
        local_ids = {}
        for m in ids:
            parties.append(_new_party(staging / m, m, "maison", kem, passphrase))
            local = os.urandom(32)
            local_ids[m] = local_key_id(local)
            _keyfiles.write_secret(staging / m / "local.secret", local, kind="local",
                                   key_id=local_ids[m], passphrase=passphrase)  # fmt: skip
            _write_matching(staging / m, matching, passphrase)
        entry = MatchingKeyEntry(matching.key_id, 1, _now_text(now), "current")
        registry = Registry(matching.key_id, PROCESSOR_ID, tuple(parties), (entry,))
        text = registry.to_toml()
        for info in parties:
            pdir = staging / info.id
            _write_public(pdir / "registry.toml", text)
            maison = info.role == "maison"
            _write_public(pdir / "party.toml", _party_toml(
                info, protected=passphrase is not None, local_id=local_ids.get(info.id),
                matching=[matching] if maison else [],
                suppression_id=None if maison else suppression_id))  # fmt: skip
        _write_public(staging / "registry.toml", text)
        for info in parties:
            os.rename(staging / info.id, keydir / info.id)
        os.replace(staging / "registry.toml", keydir / "registry.toml")
        return registry
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def rotate_matching_key(
    keydir: Path, *, passphrase: str | None = None, now: dt.datetime | None = None
) -> Registry:
    """Start a new matching-key epoch: new secret to every maison, registry updated everywhere.

    Old epochs stay in each maison directory, made read-only (0400), to read old packages.
    """
    keydir = Path(keydir)
    registry = load_registry(keydir / "registry.toml")
    epoch = max((m.epoch for m in registry.matching_keys), default=1) + 1
    secret = os.urandom(32)
    new = MatchingKey(secret, matching_key_id(secret), epoch)
    for info in registry.maisons():
        pdir = keydir / info.id
        meta = config.read_toml(pdir / "party.toml")
        if not meta.get("protected"):
            continue
        if passphrase is None:
            passphrase = _env_passphrase()
        if passphrase is None:
            raise InputError(
                f"{pdir} is passphrase-protected: use --passphrase-env or set {PASSPHRASE_ENV}"
            )
        _check_passphrase(pdir, info.id, meta, registry.matching_key_id, passphrase)
    retired = [
        MatchingKeyEntry(m.key_id, m.epoch, m.created_at, "retired") for m in registry.matching_keys
    ]
    entries = (*retired, MatchingKeyEntry(new.key_id, epoch, _now_text(now), "current"))
    updated = Registry(new.key_id, registry.processor_id, registry.parties, entries)
    for info in registry.maisons():
        pdir = keydir / info.id
        for old in (pdir / "matching").glob("epoch-*.secret"):
            os.chmod(old, 0o400)
        _write_matching(
            pdir,
            new,
            passphrase if config.read_toml(pdir / "party.toml").get("protected") else None,
        )
        meta = config.read_toml(pdir / "party.toml")
        held = [MatchingKey(b"", m["id"], int(m["epoch"])) for m in meta.get("matching_key", [])]
        _write_public(pdir / "party.toml", _party_toml(
            info, protected=bool(meta.get("protected")), local_id=meta.get("local_key_id"),
            matching=[*held, new]))  # fmt: skip
    text = updated.to_toml()
    for info in registry.parties:
        if (keydir / info.id).is_dir():
            _write_public(keydir / info.id / "registry.toml", text)
    _write_public(keydir / "registry.toml", text)
    return updated


# ---------------------------------------------------------------- loading


def _pem_encrypted(path: Path) -> bool:
    if not path.is_file():  # a FIFO would block open(); read_private_key refuses it
        return False
    try:
        with open(path, "rb") as f:
            return b"ENCRYPTED" in f.readline()
    except OSError:
        return False


def describe_party(party_dir: Path) -> dict[str, Any]:
    """Ids and fingerprints of a party directory, read from public files only."""
    party_dir = Path(party_dir)
    meta = config.read_toml(party_dir / "party.toml")
    registry = load_registry(party_dir / "registry.toml")
    info = registry.party(str(meta.get("id")))
    return {
        "party": info.id, "role": info.role, "name": info.name, "sector": info.sector,
        "protected": bool(meta.get("protected")),
        # Recomputed from the public keys (load_registry also refuses a stated value that
        # differs), so what an operator compares out of band is the key actually in use.
        "signing_key_id": _public_id("sig", "ed25519", info.signing_public),
        "signing_fingerprint": fingerprint(info.signing_public),
        "hpke_kem": info.hpke_kem,
        "hpke_key_id": _public_id("kem", info.hpke_kem, info.hpke_public),
        "hpke_fingerprint": fingerprint(info.hpke_public),
        "local_key_id": meta.get("local_key_id"),
        "matching_keys_held": [m["id"] for m in meta.get("matching_key", [])],
        "registry_matching_key_id": registry.matching_key_id,
        "registry_parties": [p.id for p in registry.parties],
    }  # fmt: skip


def load_party(party_dir: Path, *, passphrase: str | None = None) -> PartyKeys:
    """Load one party's keys and check them against its registry entry.

    A protected directory loaded without `passphrase` takes it from the environment
    variable CROSSGROUP_PASSPHRASE (never from argv); without it, InputError.
    """
    party_dir = Path(party_dir)
    if not (party_dir / "party.toml").is_file():
        raise InputError(f"{party_dir} is not a crossgroup party key directory (no party.toml)")
    meta = config.read_toml(party_dir / "party.toml")
    if passphrase is None and (meta.get("protected") or _pem_encrypted(party_dir / "signing.pem")):
        passphrase = _env_passphrase()
        if passphrase is None:
            raise InputError(
                f"{party_dir} is passphrase-protected: set {PASSPHRASE_ENV} "
                "(or use --passphrase-env VAR where the command has it)"
            )
    registry = load_registry(party_dir / "registry.toml")
    info = registry.party(str(meta.get("id")))
    sign = _keyfiles.read_private_key(party_dir / "signing.pem", passphrase=passphrase)
    xkey = _keyfiles.read_private_key(party_dir / "hpke-x25519.pem", passphrase=passphrase)
    if not isinstance(sign, ed25519.Ed25519PrivateKey) or not isinstance(
        xkey, x25519.X25519PrivateKey
    ):
        raise InputError(f"{party_dir}: key files hold the wrong key types")
    hpke_public = xkey.public_key().public_bytes(*_RAW)
    decryption: Any = xkey
    if info.hpke_kem == KEM_HYBRID:
        from cryptography.hazmat.primitives import hpke

        mkey = _keyfiles.read_private_key(party_dir / "hpke-mlkem768.pem", passphrase=passphrase)
        hpke_public = mkey.public_key().public_bytes_raw() + hpke_public
        decryption = hpke.MLKEM768X25519PrivateKey(mkey, xkey)
    if (
        sign.public_key().public_bytes(*_RAW) != info.signing_public
        or hpke_public != info.hpke_public
    ):
        raise SecurityError(
            f"{party_dir}: private keys do not match the registry entry of {info.id}"
        )
    matching_keys: dict[str, MatchingKey] = {}
    local = None
    if info.role == "maison":
        local, _ = _keyfiles.read_secret(
            party_dir / "local.secret", kind="local", passphrase=passphrase
        )
        if local_key_id(local) != meta.get("local_key_id"):
            raise SecurityError(
                f"{party_dir / 'local.secret'}: local secret does not match party.toml's "
                "local_key_id (swapped or replaced file?)"
            )
        for m in meta.get("matching_key", []):
            secret, _ = _keyfiles.read_secret(
                party_dir / m["file"], kind="matching", passphrase=passphrase
            )
            key = MatchingKey(secret, matching_key_id(secret), int(m["epoch"]))
            if key.key_id != m["id"]:
                raise SecurityError(f"{party_dir / m['file']}: secret does not match its key id")
            matching_keys[key.key_id] = key
    suppression = None
    if info.role == "processor" and (party_dir / SUPPRESSION_KEY_FILE).exists():
        suppression, _ = _keyfiles.read_secret(
            party_dir / SUPPRESSION_KEY_FILE, kind="suppression", passphrase=passphrase
        )
        expected = meta.get("suppression_key_id")
        if expected and suppression_key_id(suppression) != expected:
            raise SecurityError(f"{party_dir / SUPPRESSION_KEY_FILE}: key does not match its id")
    current = matching_keys.get(registry.matching_key_id)
    if info.role == "maison" and current is None:
        raise SecurityError(
            f"matching-key mismatch: {party_dir} does not hold the registry's current key "
            f"{registry.matching_key_id}"
        )
    return PartyKeys(
        info.id, info.role, party_dir, registry, sign, decryption, current, local, matching_keys,
        suppression,
    )  # fmt: skip


# ---------------------------------------------------------------- invariant 4


def require_processor_keys(keys: PartyKeys, party_dir: Path | None = None) -> None:
    """Invariant 4: the processor holds no matching secret and no local secret.

    Checks what was loaded and also scans the directory, since a secret file copied into a
    processor directory would not be loaded, yet would sit on the processor's machine.
    """
    if getattr(keys, "role", None) != "processor":
        raise SecurityError(
            f"the key directory belongs to {keys.party_id} ({keys.role}), not the processor: "
            "the processor must hold no matching or local secret (DESIGN §5.4)"
        )
    if getattr(keys, "matching", None) is not None or getattr(keys, "local_secret", None):
        raise SecurityError("the processor key directory holds a matching or local secret")
    own_key = Path(party_dir) / SUPPRESSION_KEY_FILE if party_dir else None
    for path in sorted(Path(party_dir).rglob("*")) if party_dir else []:
        if not path.is_file():
            continue
        kind = _secret_envelope_kind(path)
        if path.suffix == ".secret" or (kind is not None and not (
            path == own_key and kind == "suppression"
        )):  # fmt: skip
            raise SecurityError(
                f"the processor key directory holds a secret file ({path.name}): "
                "the processor must hold no matching or local secret (DESIGN §5.4)"
            )


def _secret_envelope_kind(path: Path) -> str | None:
    """The kind of a secret envelope ('' when unreadable as one), None for any other file.

    Only the processor's own suppression key, at its own path, is allowed: it can recognise
    erased refs and tokens but compute none (group/erasure.py).
    """
    try:
        if path.stat().st_size > 1 << 16:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if _keyfiles.SECRET_FORMAT.encode() not in data:
        return None
    try:
        kind = json.loads(data).get("kind")
    except (ValueError, AttributeError):
        return ""
    return kind if isinstance(kind, str) else ""
