"""Key ceremony guarantees: file modes, where secrets live, what is shown, rotation."""

from __future__ import annotations

import base64
import stat

import pytest

from crossgroup.crypto.keys import (
    describe_party,
    init_keys,
    load_party,
    load_registry,
)
from crossgroup.errors import InputError, SecurityError


def _secret_forms(keys) -> list[str]:
    """Every way a secret of this party could leak as text: hex (both cases) and base64."""
    raws = [keys.local_secret or b"", *(m.secret for m in keys.matching_keys.values())]
    raws.append(keys.signing_key.private_bytes_raw())
    out = []
    for raw in filter(None, raws):
        out += [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode()]
    return out


def test_layout_modes_and_registry_everywhere(keydir):
    assert (keydir / "registry.toml").is_file()
    text = (keydir / "registry.toml").read_text()
    for party in ("processor", "aurelle", "kessler"):
        pdir = keydir / party
        assert stat.S_IMODE(pdir.stat().st_mode) == 0o700
        assert (pdir / "registry.toml").read_text() == text
        for f in pdir.rglob("*"):
            if f.is_dir():
                assert stat.S_IMODE(f.stat().st_mode) == 0o700, f
            elif f.name not in ("registry.toml", "party.toml"):
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_processor_holds_no_matching_or_local_secret(keydir):
    pdir = keydir / "processor"
    names = {f.name for f in pdir.rglob("*")}
    assert not any("secret" in n or n == "matching" for n in names)
    keys = load_party(pdir)
    assert keys.matching is None and keys.local_secret is None and keys.matching_keys == {}
    maison = load_party(keydir / "aurelle")
    for f in pdir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert maison.matching.secret.hex().encode() not in data
            assert maison.matching.secret not in data


def test_registry_names_come_from_maison_config(keydir):
    registry = load_registry(keydir / "registry.toml")
    aurelle = registry.party("aurelle")
    assert aurelle.name == "Aurelle Joaillerie" and aurelle.sector == "Watches & Jewelry"
    assert registry.processor_id == "processor"
    assert [p.id for p in registry.maisons()] == ["aurelle", "kessler"]
    with pytest.raises(SecurityError, match="unknown party"):
        registry.party("mallory")


def test_no_secret_in_repr_or_show(keydir, run_cli):
    keys = load_party(keydir / "aurelle")
    leaks = _secret_forms(keys)
    texts = [repr(keys), str(keys), repr(keys.matching), repr(keys.registry)]
    texts.append(str(describe_party(keydir / "aurelle")))
    result = run_cli("keys", "show", "--keys", keydir / "aurelle")
    assert result.exit_code == 0, result.stderr
    assert keys.matching.key_id in result.stdout
    texts += [result.stdout, result.stderr]
    for text in texts:
        for leak in leaks:
            assert leak not in text


def test_key_ids_do_not_reveal_the_secret(keydir):
    keys = load_party(keydir / "aurelle")
    kid = keys.matching.key_id.removeprefix("mk-")
    assert kid not in keys.matching.secret.hex()


def test_refuses_to_overwrite(keydir):
    with pytest.raises(InputError, match="already holds keys"):
        init_keys(keydir, ["aurelle"])


def test_passphrase_protection(tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("CG_TEST_PASS", "correct horse battery staple")
    monkeypatch.delenv("CROSSGROUP_PASSPHRASE", raising=False)  # the load_party fallback
    result = run_cli(
        "keys", "init", "--dir", tmp_path / "k", "--maisons", "aurelle",
        "--passphrase-env", "CG_TEST_PASS",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    pdir = tmp_path / "k" / "aurelle"
    assert b"ENCRYPTED PRIVATE KEY" in (pdir / "signing.pem").read_bytes()
    assert b'"secret"' not in (pdir / "local.secret").read_bytes()
    with pytest.raises(InputError, match="passphrase-protected"):
        load_party(pdir)
    with pytest.raises(SecurityError, match="wrong passphrase"):
        load_party(pdir, passphrase="wrong")
    keys = load_party(pdir, passphrase="correct horse battery staple")
    assert keys.local_secret is not None and len(keys.local_secret) == 32
    assert "correct horse" not in result.stdout + result.stderr


def test_rotation_new_epoch_everywhere_old_kept_read_only(tmp_path, run_cli):
    init_keys(tmp_path / "k", ["aurelle", "kessler"])
    before = load_party(tmp_path / "k" / "aurelle").matching
    result = run_cli("keys", "rotate", "--dir", tmp_path / "k")
    assert result.exit_code == 0, result.stderr
    after = {m: load_party(tmp_path / "k" / m) for m in ("aurelle", "kessler")}
    new = after["aurelle"].matching
    assert new.epoch == before.epoch + 1 and new.key_id != before.key_id
    assert after["kessler"].matching == new
    assert after["aurelle"].matching_key(before.key_id).secret == before.secret
    old_file = tmp_path / "k" / "aurelle" / "matching" / "epoch-1.secret"
    assert stat.S_IMODE(old_file.stat().st_mode) == 0o400
    for party in ("processor", "aurelle", "kessler"):
        assert load_registry(tmp_path / "k" / party / "registry.toml").matching_key_id == new.key_id
    assert not list((tmp_path / "k" / "processor").rglob("*.secret"))


def test_tampered_registry_key_is_refused(tmp_path):
    init_keys(tmp_path / "k", ["aurelle"])
    reg = tmp_path / "k" / "aurelle" / "registry.toml"
    registry = load_registry(reg)
    other = registry.party("processor").signing_public.hex()
    mine = registry.party("aurelle").signing_public.hex()
    reg.write_text(reg.read_text().replace(mine, other))
    with pytest.raises(SecurityError):
        load_party(tmp_path / "k" / "aurelle")


def test_no_secret_in_exception_messages(keydir, tmp_path):
    keys = load_party(keydir / "aurelle")
    leaks = _secret_forms(keys)
    messages = []
    with pytest.raises(SecurityError) as e:
        keys.matching_key("mk-0000000000000000")
    messages.append(str(e.value))
    init_keys(tmp_path / "k", ["aurelle"], passphrase="pw-1")
    with pytest.raises(SecurityError) as e:
        load_party(tmp_path / "k" / "aurelle", passphrase="pw-2")
    messages.append(str(e.value))
    assert "pw-1" not in messages[-1] and "pw-2" not in messages[-1]
    for message in messages:
        assert len(message.splitlines()) == 1
        for leak in leaks:
            assert leak not in message
