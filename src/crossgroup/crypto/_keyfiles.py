"""Private-key files on disk: mode 0600, optionally sealed under a passphrase.

Asymmetric keys are PKCS#8 PEM (cryptography's BestAvailableEncryption when a passphrase is
set), so standard tools can read them. Raw secrets (matching, local) are a small JSON
envelope: plain hex, or AES-256-GCM under a scrypt-derived key with the kind and key id as
associated data, so an envelope cannot be swapped for another one undetected.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from crossgroup.errors import InputError, SecurityError
from crossgroup.io import require_readable_file, write_private_bytes

SECRET_FORMAT = "crossgroup-secret/v1"  # noqa: S105 - a format name, not a secret
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_PROTECTED_HINT = "use --passphrase-env VAR or set CROSSGROUP_PASSPHRASE"


def make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _scrypt_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def write_secret(path: Path, secret: bytes, *, kind: str, key_id: str, passphrase: str | None,
                 extra: dict | None = None) -> None:  # fmt: skip
    """Write a raw secret envelope (mode 0600)."""
    doc: dict = {"format": SECRET_FORMAT, "kind": kind, "key_id": key_id, **(extra or {})}
    if passphrase is None:
        doc["protection"] = "none"
        doc["secret"] = secret.hex()
    else:
        salt, nonce = os.urandom(16), os.urandom(12)
        key = _scrypt_key(passphrase, salt, **_SCRYPT)
        aad = f"{SECRET_FORMAT}|{kind}|{key_id}".encode()
        doc["protection"] = "scrypt+aes-256-gcm"
        doc["kdf"] = {"salt": base64.b64encode(salt).decode(), **_SCRYPT}
        doc["nonce"] = base64.b64encode(nonce).decode()
        doc["ciphertext"] = base64.b64encode(AESGCM(key).encrypt(nonce, secret, aad)).decode()
    write_private_bytes(path, (json.dumps(doc, indent=2) + "\n").encode())


def read_key_file(path: Path) -> bytes:
    """A private key file's bytes. Missing: InputError. Not a regular file or unreadable:
    SecurityError (exit 3), never mistaken for a damaged file: a key directory whose secrets
    this user cannot read was set up for someone else, or tampered with."""
    require_readable_file(path, "key", refusal=SecurityError)
    try:
        return path.read_bytes()
    except OSError as e:
        raise SecurityError(f"cannot read key file {path}: {e.strerror}") from None


def read_secret(path: Path, *, kind: str, passphrase: str | None) -> tuple[bytes, dict]:
    """Read a raw secret envelope; returns (secret, envelope metadata without the secret)."""
    try:
        doc = json.loads(read_key_file(path))
    except ValueError:
        raise InputError(f"key file {path} is not a crossgroup secret file") from None
    if not isinstance(doc, dict) or doc.get("format") != SECRET_FORMAT or doc.get("kind") != kind:
        raise InputError(f"key file {path} is not a crossgroup {kind} secret")
    key_id = str(doc.get("key_id", ""))
    meta = {k: v for k, v in doc.items() if k not in ("secret", "ciphertext", "nonce", "kdf")}
    if doc.get("protection") == "none":
        try:
            return bytes.fromhex(doc["secret"]), meta
        except (KeyError, ValueError, TypeError):
            raise InputError(f"key file {path} is damaged") from None
    if doc.get("protection") != "scrypt+aes-256-gcm":
        raise InputError(f"key file {path} uses an unknown protection")
    if passphrase is None:
        raise InputError(f"key file {path} is passphrase-protected: {_PROTECTED_HINT}")
    try:
        kdf = doc["kdf"]
        params = {name: kdf[name] for name in _SCRYPT}
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        ct = base64.b64decode(doc["ciphertext"], validate=True)
    except (KeyError, ValueError, TypeError):
        raise InputError(f"key file {path} is damaged") from None
    # Only the parameters this code writes: a file naming n=2**40 must not make us allocate
    # terabytes, and a weakened n must not be accepted either (bool is refused as a number).
    if any(type(params[k]) is not int or params[k] != v for k, v in _SCRYPT.items()):
        raise SecurityError(f"key file {path}: unsupported scrypt parameters (tampered file?)")
    key = _scrypt_key(passphrase, salt, **params)
    try:
        secret = AESGCM(key).decrypt(nonce, ct, f"{SECRET_FORMAT}|{kind}|{key_id}".encode())
    except Exception:
        raise SecurityError(f"key file {path}: wrong passphrase or tampered file") from None
    return secret, meta


def write_private_key(path: Path, key, *, passphrase: str | None) -> None:
    """A private key as PKCS#8 PEM, encrypted when a passphrase is given (mode 0600)."""
    enc = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase is not None
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    write_private_bytes(path, pem)


def read_private_key(path: Path, *, passphrase: str | None):
    pem = read_key_file(path)
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
    if encrypted and passphrase is None:
        raise InputError(f"key file {path} is passphrase-protected: {_PROTECTED_HINT}")
    try:
        return serialization.load_pem_private_key(
            pem, passphrase.encode() if encrypted and passphrase is not None else None
        )
    except (ValueError, TypeError):
        if encrypted:
            raise SecurityError(f"key file {path}: wrong passphrase or tampered file") from None
        raise InputError(f"key file {path} is not a PEM private key") from None
