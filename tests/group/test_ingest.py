"""Processor intake: its keys hold no secret (DESIGN §5.4), every package is verified before
anything is decrypted, and the batch is coherent."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from process_batch import MAISONS, build_batch, seal_exports

from crossgroup.config import load_group
from crossgroup.crypto.keys import load_party, require_processor_keys
from crossgroup.engine import DuckDBEngine
from crossgroup.errors import InputError, SecurityError
from crossgroup.group.ingest import build_views, decrypt_batch, verify_inbox


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_batch(tmp_path_factory.mktemp("ingest"), n_persons=120)


@pytest.fixture
def batch(template, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(template.keys.parent, root)
    return type(template)(root / "keys", root / "inbox", root / "group.toml", template.tables)


def test_processor_keys_hold_no_secret(batch):
    keys = load_party(batch.keys / "processor")
    require_processor_keys(keys, batch.keys / "processor")  # does not raise
    assert keys.matching is None and keys.local_secret is None


def test_maison_key_dir_is_refused(batch):
    with pytest.raises(SecurityError, match="not the processor"):
        require_processor_keys(load_party(batch.keys / "aurelle"), batch.keys / "aurelle")


def test_secret_copied_into_processor_dir_is_refused(batch):
    shutil.copy(batch.keys / "aurelle" / "local.secret", batch.keys / "processor" / "backup.bin")
    keys = load_party(batch.keys / "processor")
    with pytest.raises(SecurityError, match="secret file"):
        require_processor_keys(keys, batch.keys / "processor")


def test_verified_batch_is_coherent(batch):
    keys = load_party(batch.keys / "processor")
    verified = verify_inbox(batch.inbox, keys, load_group(batch.pipeline), skip_invalid=False)
    assert verified.maisons == tuple(sorted(MAISONS))
    assert verified.matching_key_id == keys.registry.matching_key_id
    assert all(len(p.sha256) == 64 for p in verified.packages)


def test_two_packages_from_one_maison_are_refused(batch, tmp_path):
    extra = tmp_path / "extra"
    seal_exports(batch.keys, extra, {"aurelle": batch.tables["aurelle"]}, batch_id="2026-06b")
    for p in extra.iterdir():
        shutil.copy(p, batch.inbox / p.name)
    keys = load_party(batch.keys / "processor")
    with pytest.raises(SecurityError, match="more than one package from maison"):
        verify_inbox(batch.inbox, keys, load_group(batch.pipeline), skip_invalid=True)


def test_empty_inbox_is_an_input_error(batch, tmp_path):
    keys = load_party(batch.keys / "processor")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.cgpkg"):
        verify_inbox(tmp_path / "empty", keys, load_group(batch.pipeline), skip_invalid=False)


def test_views_carry_the_maison(batch, tmp_path):
    keys = load_party(batch.keys / "processor")
    verified = verify_inbox(batch.inbox, keys, load_group(batch.pipeline), skip_invalid=False)
    with DuckDBEngine(tmp_path) as engine:
        tables = decrypt_batch(verified, keys, tmp_path)
        build_views(engine, tables)
        counts = dict(engine.to_polars("SELECT maison, count(*) FROM identities GROUP BY 1").rows())
        activity = engine.to_polars("SELECT DISTINCT maison FROM activity")
    for m in MAISONS:
        assert counts[m] == pl.read_parquet(batch.tables[m]["identities"]).height
    assert set(activity.get_column("maison")) == set(MAISONS)


def test_batch_under_a_retired_matching_key_is_refused(batch):
    """Every export made under the previous epoch: coherent, but not the current key."""
    from crossgroup.crypto.keys import rotate_matching_key

    before = load_party(batch.keys / "processor").registry.matching_key_id
    rotate_matching_key(batch.keys)
    keys = load_party(batch.keys / "processor")
    assert keys.registry.matching_key_id != before
    group = load_group(batch.pipeline)
    with pytest.raises(SecurityError, match="matching-key mismatch") as refused:
        verify_inbox(batch.inbox, keys, group, skip_invalid=False)
    assert "not the registry's current epoch" in str(refused.value)
    assert before in str(refused.value)
    # with skip_invalid every package is set aside: nothing is left to process
    with pytest.raises(SecurityError, match="no valid export package"):
        verify_inbox(batch.inbox, keys, group, skip_invalid=True)


def test_batch_under_the_current_key_after_rotation_is_accepted(batch, tmp_path):
    from crossgroup.crypto.keys import rotate_matching_key

    rotate_matching_key(batch.keys)
    for p in batch.inbox.iterdir():
        p.unlink()
    seal_exports(batch.keys, batch.inbox, batch.tables)
    keys = load_party(batch.keys / "processor")
    verified = verify_inbox(batch.inbox, keys, load_group(batch.pipeline), skip_invalid=False)
    assert verified.matching_key_id == keys.registry.matching_key_id


def damage_payload(package: Path) -> None:
    """Flip one bit near the end: the payload, which verification cannot see into."""
    data = bytearray(package.read_bytes())
    data[-100] ^= 0x01
    package.write_bytes(bytes(data))


def test_package_damaged_in_its_payload_is_set_aside_and_its_plaintext_removed(batch, tmp_path):
    keys = load_party(batch.keys / "processor")
    group = load_group(batch.pipeline)
    victim = batch.inbox / "export-kessler-to-processor-2026-06.cgpkg"
    damage_payload(victim)
    verified = verify_inbox(batch.inbox, keys, group, skip_invalid=True)
    assert "kessler" in verified.maisons  # verification alone cannot tell
    tables = decrypt_batch(verified, keys, tmp_path)
    assert sorted(tables) == ["aurelle", "vautrin"]
    assert verified.maisons == ("aurelle", "vautrin")
    assert [(s.path, "modified" in s.reason) for s in verified.skipped] == [(victim, True)]
    assert not (tmp_path / "packages" / "kessler").exists()

    refused = verify_inbox(batch.inbox, keys, group, skip_invalid=False)
    with pytest.raises(SecurityError, match=r"payload chunk \d+ was modified"):
        decrypt_batch(refused, keys, tmp_path / "again")
    assert not (tmp_path / "again" / "packages" / "kessler").exists()


def test_every_package_set_aside_at_decryption_leaves_a_clear_refusal(batch, tmp_path):
    keys = load_party(batch.keys / "processor")
    for package in batch.inbox.iterdir():
        damage_payload(package)
    verified = verify_inbox(batch.inbox, keys, load_group(batch.pipeline), skip_invalid=True)
    with pytest.raises(SecurityError, match="no valid export package left") as refused:
        decrypt_batch(verified, keys, tmp_path)
    assert all(p.name in str(refused.value) for p in batch.inbox.iterdir())
    assert list((tmp_path / "packages").iterdir()) == []


@pytest.mark.parametrize(
    ("table", "break_table", "needle"),
    [
        ("identities", lambda t: t.with_columns(pl.col("maison_ref").bin.slice(0, 8)),
         "not 16 bytes"),
        ("identities", lambda t: t.drop("phone_token"), "expected exactly the columns"),
        ("identities", lambda t: t.with_columns(customer_id=pl.lit("AU-1")),
         "expected exactly the columns"),
        ("activity", lambda t: t.with_columns(amount_eur=pl.lit(float("inf"))),
         "amount_eur is not finite"),
        ("activity", lambda t: t.with_columns(amount_eur=pl.col("amount_eur") - 2e15),
         r"not below 1e\+15"),
    ],
    ids=["short-refs", "missing-column", "extra-column", "infinite-amount", "huge-amount"],
)  # fmt: skip
def test_signed_export_off_the_contract_is_refused_or_set_aside(
    batch, tmp_path, table, break_table, needle
):
    keys = load_party(batch.keys / "processor")
    group = load_group(batch.pipeline)
    bad = tmp_path / f"{table}.parquet"
    break_table(pl.read_parquet(batch.tables["vautrin"][table])).write_parquet(bad)
    (batch.inbox / "export-vautrin-to-processor-2026-06.cgpkg").unlink()
    seal_exports(batch.keys, batch.inbox, {"vautrin": {**batch.tables["vautrin"], table: bad}})

    refused = verify_inbox(batch.inbox, keys, group, skip_invalid=False)
    with pytest.raises(InputError, match=needle):
        decrypt_batch(refused, keys, tmp_path / "refused")
    verified = verify_inbox(batch.inbox, keys, group, skip_invalid=True)
    assert sorted(decrypt_batch(verified, keys, tmp_path / "kept")) == ["aurelle", "kessler"]
    assert [s.path.name for s in verified.skipped] == ["export-vautrin-to-processor-2026-06.cgpkg"]
    assert not (tmp_path / "kept" / "packages" / "vautrin").exists()
