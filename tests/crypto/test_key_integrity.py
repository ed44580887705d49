"""Crypto review fixes: registry fingerprints recomputed, passphrase fallback and rotation
checks, local-secret id, bad package paths and scrypt parameters, `open` after accept."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crossgroup.crypto import _keyfiles
from crossgroup.crypto.keys import (
    KEM_HYBRID,
    describe_party,
    init_keys,
    load_party,
    load_registry,
    rotate_matching_key,
)
from crossgroup.crypto.registry import _public_id, fingerprint
from crossgroup.errors import InputError, SecurityError

PASS = "correct horse battery staple"
PASSPHRASE_ENV = "CROSSGROUP_PASSPHRASE"
RAW = (Encoding.Raw, PublicFormat.Raw)


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture(scope="module")
def protected(tmp_path_factory):
    """A passphrase-protected key directory, made once (scrypt is deliberately slow)."""
    path = tmp_path_factory.mktemp("protected") / "keys"
    init_keys(path, ["aurelle", "kessler"], passphrase=PASS)
    return path


def _fresh(tmp_path, name="k"):
    init_keys(tmp_path / name, ["aurelle", "kessler"])
    return tmp_path / name


# ---------------------------------------------------------------- 1. registry fingerprints


def _swap_processor_hpke(reg_path):
    """The review's t10: new HPKE key and its (public) key id, genuine fingerprint kept."""
    text = reg_path.read_text()
    genuine = load_registry(reg_path).party("processor")
    assert genuine.hpke_kem == KEM_HYBRID
    evil = mlkem.MLKEM768PrivateKey.generate().public_key().public_bytes_raw()
    evil += x25519.X25519PrivateKey.generate().public_key().public_bytes(*RAW)
    text = text.replace(
        base64.b64encode(genuine.hpke_public).decode(), base64.b64encode(evil).decode()
    )
    text = text.replace(genuine.hpke_key_id, _public_id("kem", KEM_HYBRID, evil))
    assert genuine.hpke_fingerprint in text  # the fingerprint text is left as it was
    reg_path.write_text(text)
    return genuine


def test_swapped_hpke_key_with_genuine_fingerprint_is_refused(tmp_path, run_cli):
    kd = _fresh(tmp_path)
    _swap_processor_hpke(kd / "aurelle" / "registry.toml")
    with pytest.raises(SecurityError, match=r"party 'processor' hpke_fingerprint") as e:
        load_registry(kd / "aurelle" / "registry.toml")
    assert len(str(e.value).splitlines()) == 1
    with pytest.raises(SecurityError, match="hpke_fingerprint"):
        load_party(kd / "aurelle")  # so no export can be sealed to the attacker key
    result = run_cli("keys", "show", "--keys", kd / "aurelle")
    assert result.exit_code == 3
    assert "hpke_fingerprint" in result.stderr and "sha256:" not in result.stdout


def test_swapped_signing_key_with_genuine_fingerprint_is_refused(tmp_path):
    kd = _fresh(tmp_path)
    reg = kd / "processor" / "registry.toml"
    genuine = load_registry(reg).party("aurelle")
    evil = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*RAW)
    text = reg.read_text().replace(genuine.signing_public.hex(), evil.hex())
    reg.write_text(text.replace(genuine.signing_key_id, _public_id("sig", "ed25519", evil)))
    with pytest.raises(SecurityError, match=r"party 'aurelle' signing_fingerprint"):
        load_registry(reg)


def test_wrong_fingerprint_text_and_wrong_key_lengths_are_refused(tmp_path):
    kd = _fresh(tmp_path)
    reg = kd / "registry.toml"
    original = reg.read_text()
    info = load_registry(reg).party("kessler")
    reg.write_text(original.replace(info.hpke_fingerprint, "sha256:" + "0" * 64))
    with pytest.raises(SecurityError, match=r"party 'kessler' hpke_fingerprint"):
        load_registry(reg)
    # A short hybrid key whose id and fingerprint were recomputed to match.
    short = info.hpke_public[:-1]
    text = original.replace(base64.b64encode(info.hpke_public).decode(),
                            base64.b64encode(short).decode())  # fmt: skip
    text = text.replace(info.hpke_key_id, _public_id("kem", KEM_HYBRID, short))
    reg.write_text(text.replace(info.hpke_fingerprint, fingerprint(short)))
    with pytest.raises(SecurityError, match=r"party 'kessler' hpke_public has 1215 bytes"):
        load_registry(reg)


def test_keys_show_prints_fingerprints_computed_from_the_keys(keydir, run_cli):
    info = load_registry(keydir / "aurelle" / "registry.toml").party("aurelle")
    shown = describe_party(keydir / "aurelle")
    assert shown["hpke_fingerprint"] == fingerprint(info.hpke_public)
    assert shown["signing_fingerprint"] == fingerprint(info.signing_public)
    result = run_cli("keys", "show", "--keys", keydir / "aurelle")
    assert result.exit_code == 0, result.stderr
    assert fingerprint(info.hpke_public) in result.stdout


# ---------------------------------------------------------------- 2. passphrase fallback


def test_protected_dir_loads_from_crossgroup_passphrase(protected, monkeypatch):
    with pytest.raises(InputError, match=f"passphrase-protected: set {PASSPHRASE_ENV}") as e:
        load_party(protected / "aurelle")
    assert len(str(e.value).splitlines()) == 1
    monkeypatch.setenv(PASSPHRASE_ENV, PASS)
    keys = load_party(protected / "aurelle")
    assert keys.local_secret is not None and keys.matching is not None
    assert load_party(protected / "processor").suppression_key is not None
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(SecurityError, match="wrong passphrase") as e:
        load_party(protected / "aurelle")
    assert "wrong" not in str(e.value).replace("wrong passphrase", "")


def test_passphrase_env_help_names_the_default_variable(run_cli):
    result = run_cli("keys", "rotate", "--help")
    assert PASSPHRASE_ENV in " ".join(result.stdout.split())


# ---------------------------------------------------------------- 3. rotation passphrase


def _snapshot(kd):
    return {
        str(p.relative_to(kd)): p.read_bytes()
        for p in sorted(kd.rglob("*"))
        if p.is_file() and p.name != "ledger.jsonl"
    }


def test_rotate_with_a_mistyped_passphrase_writes_nothing(
    tmp_path, protected, monkeypatch, run_cli
):
    kd = tmp_path / "keys"
    shutil.copytree(protected, kd)
    before = _snapshot(kd)
    with pytest.raises(SecurityError, match="wrong passphrase for aurelle"):
        rotate_matching_key(kd, passphrase=PASS + "x")
    monkeypatch.setenv("CG_TYPO", "correct horse battery stapel")
    result = run_cli("keys", "rotate", "--dir", kd, "--passphrase-env", "CG_TYPO")
    assert result.exit_code == 3 and "wrong passphrase for aurelle" in result.stderr
    assert "stapel" not in result.stderr
    assert _snapshot(kd) == before
    assert load_party(kd / "aurelle", passphrase=PASS).matching.epoch == 1
    # The right passphrase, from the default variable, still rotates.
    monkeypatch.setenv(PASSPHRASE_ENV, PASS)
    updated = rotate_matching_key(kd)
    for maison in ("aurelle", "kessler"):
        assert load_party(kd / maison).matching.key_id == updated.matching_key_id


# ---------------------------------------------------------------- 5. local secret id


def test_swapped_local_secret_is_refused(tmp_path):
    kd = _fresh(tmp_path)
    target = kd / "aurelle" / "local.secret"
    os.chmod(target, 0o600)
    shutil.copyfile(kd / "kessler" / "local.secret", target)
    with pytest.raises(SecurityError, match="local_key_id"):
        load_party(kd / "aurelle")


# ---------------------------------------------------------------- 6. bad inputs


def test_open_on_a_directory_is_an_input_error(tmp_path, keydir, run_cli):
    folder = tmp_path / "not-a-package"
    folder.mkdir()
    result = run_cli(
        "open", "--package", folder, "--keys", keydir / "processor", "--out", tmp_path / "o"
    )
    assert result.exit_code == 2, result.stderr
    assert "is a directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("field,value", [("n", 2**40), ("n", 2), ("n", True), ("r", 1024),
                                         ("p", 64), ("n", "32768")])  # fmt: skip
def test_scrypt_parameters_other_than_ours_are_refused(tmp_path, protected, field, value):
    doc = json.loads((protected / "aurelle" / "local.secret").read_text())
    doc["kdf"][field] = value
    path = tmp_path / "local.secret"
    path.write_text(json.dumps(doc))
    start = time.monotonic()
    with pytest.raises(SecurityError, match="unsupported scrypt parameters"):
        _keyfiles.read_secret(path, kind="local", passphrase=PASS)
    assert time.monotonic() - start < 5


def test_scrypt_parameters_we_write_are_read(protected):
    secret, meta = _keyfiles.read_secret(
        protected / "aurelle" / "local.secret", kind="local", passphrase=PASS
    )
    assert len(secret) == 32 and meta["key_id"].startswith("lk-")
