"""Package guarantees: round trip, tamper in every region, replay, wrong parties, CLI exit 3."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossgroup.commit import party_session, transaction
from crossgroup.crypto._envelope import parse_header, read_framing
from crossgroup.crypto.keys import init_keys, load_party
from crossgroup.crypto.package import (
    Manifest,
    accept_packages,
    open_package,
    require_one_matching_key,
    seal_package,
    verify_package,
)
from crossgroup.errors import SecurityError


def accept(keys, manifests) -> None:
    """Accept packages the way a consuming command does: in a commit, under the party lock."""
    with (
        party_session(keys.directory, party=keys.party_id, command="test"),
        transaction(keys.directory) as tx,
    ):
        accept_packages(tx, keys, manifests)


CHUNK = 1024
AS_OF = dt.date(2026, 9, 30)
NOW = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def parties(keydir):
    return {p: load_party(keydir / p) for p in ("processor", "aurelle", "kessler")}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    base = tmp_path_factory.mktemp("tables")
    n = 2000  # several 1 KiB chunks
    pl.DataFrame({"maison_ref": [os.urandom(16) for _ in range(n)]}).write_parquet(
        base / "identities.parquet", compression="uncompressed"
    )
    pl.DataFrame({"orders": list(range(n)), "channel": ["online"] * n}).write_parquet(
        base / "activity.parquet"
    )
    return {"identities": base / "identities.parquet", "activity": base / "activity.parquet"}


def _seal(tmp_path, sender, tables, *, recipient="processor", kind="export", batch="b1", **kw):
    return seal_package(
        tmp_path / "out", kind=kind, sender=sender, recipient=recipient, tables=tables,
        batch_id=batch, as_of=AS_OF, matching_key_id=kw.pop("mk", None)
        or (sender.matching.key_id if sender.matching else "mk-none"),
        now=NOW, chunk_size=CHUNK, summary={"customers": 3}, **kw,
    )  # fmt: skip


def _private(tmp_path):
    work = tmp_path / "work"
    work.mkdir(mode=0o700, exist_ok=True)
    return work


def test_round_trip_and_manifest(tmp_path, parties, tables):
    path, manifest = _seal(tmp_path, parties["aurelle"], tables)
    assert path.name == "export-aurelle-to-processor-b1.cgpkg"
    assert manifest.created_at == NOW and manifest.as_of == AS_OF
    assert manifest.tables["identities"]["rows"] == 2000
    assert manifest.tables["activity"]["schema"] == {"orders": "Int64", "channel": "String"}
    assert "MLKEM768-X25519" in manifest.suite
    assert Manifest.from_dict(json.loads(manifest.to_json())) == manifest
    assert verify_package(path, parties["processor"], kind="export") == manifest
    opened = open_package(path, parties["processor"], _private(tmp_path))
    for name, src in tables.items():
        assert opened.tables[name].read_bytes() == src.read_bytes()
    # The payload is encrypted: no table byte run appears in the package.
    assert tables["identities"].read_bytes()[200:264] not in path.read_bytes()


def _regions(path) -> dict[str, int]:
    """An offset inside each region of a package file."""
    with open(path, "rb") as f:
        framing = read_framing(f, path)
    header = parse_header(framing, path)
    hstart = len(framing.signed_bytes) - len(framing.header_bytes)
    hb = framing.header_bytes
    pay = header.payload_offset
    n_chunks = -(-header.plaintext_bytes // CHUNK)
    c = CHUNK + 16
    return {
        "magic": 1,
        "version": 7,
        "sender": 9,
        "header_length": hstart - 2,
        "manifest": hstart + hb.index(b'"package_id"') + 16,
        "payload_digest": hstart + hb.index(b'"payload_digest"') + 20,
        "wrapped_key": hstart + hb.index(b'"wrapped"') + 30,
        "signature": pay - 10,
        "first_chunk": pay + 5,
        "middle_chunk": pay + (n_chunks // 2) * c + 5,
        "last_chunk": path.stat().st_size - 3,
    }


def test_one_flipped_bit_in_every_region_is_refused(tmp_path, parties, tables):
    path, _ = _seal(tmp_path, parties["aurelle"], tables)
    original = path.read_bytes()
    for region, offset in _regions(path).items():
        data = bytearray(original)
        data[offset] ^= 0x01
        bad = tmp_path / f"bad-{region}.cgpkg"
        bad.write_bytes(bytes(data))
        work = tmp_path / f"w-{region}"
        work.mkdir()
        with pytest.raises(SecurityError):
            open_package(bad, parties["processor"], work)
        assert not list(work.iterdir()), f"plaintext left behind after tampering {region}"


def test_chunk_tampering_messages(tmp_path, parties, tables):
    path, _ = _seal(tmp_path, parties["aurelle"], tables)
    data = path.read_bytes()
    pay = _regions(path)["first_chunk"] - 5
    c = CHUNK + 16
    chunks = [data[i : i + c] for i in range(pay, len(data), c)]
    cases = {
        "truncated payload": data[:-1],
        "extended payload": data + b"\x00",
        "truncated payload ": data[: pay + c * 2],
        "modified or reordered": data[:pay] + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "modified or reordered ": data[:pay] + chunks[0] + chunks[0] + b"".join(chunks[2:]),
    }
    for message, blob in cases.items():
        bad = tmp_path / "bad.cgpkg"
        bad.write_bytes(blob)
        with pytest.raises(SecurityError, match=message.strip()):
            open_package(bad, parties["processor"], _private(tmp_path))


def test_truncation_is_refused_before_decryption(tmp_path, parties, tables):
    path, _ = _seal(tmp_path, parties["aurelle"], tables)
    path.write_bytes(path.read_bytes()[:-CHUNK])
    with pytest.raises(SecurityError, match="truncated payload"):
        verify_package(path, parties["processor"])


def test_replay_wrong_kind_and_matching_key(tmp_path, parties, tables):
    path, manifest = _seal(tmp_path, parties["aurelle"], tables)
    with pytest.raises(SecurityError, match="wrong kind"):
        verify_package(path, parties["processor"], kind="erasure")
    with pytest.raises(SecurityError, match="matching-key mismatch"):
        verify_package(path, parties["processor"], matching_key_id="mk-0000000000000000")
    accept(parties["processor"], [manifest])
    with pytest.raises(SecurityError, match="replayed package"):
        verify_package(path, parties["processor"])
    with pytest.raises(SecurityError, match="replayed package"):
        accept(parties["processor"], [manifest])
    # Reading without acting (evaluation) may skip the ledger, never the authentication.
    assert verify_package(path, parties["processor"], check_replay=False) == manifest
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    (tmp_path / "w").mkdir()
    with pytest.raises(SecurityError):
        open_package(path, parties["processor"], tmp_path / "w", check_replay=False)


def test_wrong_direction_is_refused(tmp_path, parties, tables):
    with pytest.raises(SecurityError, match="wrong kind"):
        _seal(tmp_path, parties["aurelle"], tables, recipient="kessler")
    with pytest.raises(SecurityError, match="wrong kind"):
        _seal(tmp_path, parties["processor"], tables, kind="export", recipient="aurelle")


def test_require_one_matching_key(tmp_path, parties, tables):
    _, a = _seal(tmp_path, parties["aurelle"], tables, batch="x1")
    _, b = _seal(tmp_path, parties["kessler"], tables, batch="x1")
    assert require_one_matching_key([a, b]) == parties["aurelle"].matching.key_id
    _, c = _seal(tmp_path, parties["kessler"], tables, batch="x2", mk="mk-1111111111111111")
    with pytest.raises(SecurityError, match="matching-key mismatch"):
        require_one_matching_key([a, b, c])


# ---------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def impostors(tmp_path_factory):
    """Another group's keys: an unknown sender and a re-keyed 'aurelle'."""
    path = tmp_path_factory.mktemp("other") / "keys"
    init_keys(path, ["aurelle", "mallory"])
    return {p: load_party(path / p) for p in ("aurelle", "mallory")}


def _cli_open(run_cli, path, keydir, party, out):
    return run_cli("open", "--package", path, "--keys", keydir / party, "--out", out)


def test_cli_open_writes_manifest_and_tables(tmp_path, keydir, parties, tables, run_cli):
    path, manifest = _seal(tmp_path, parties["kessler"], tables)
    result = _cli_open(run_cli, path, keydir, "processor", tmp_path / "audit")
    assert result.exit_code == 0, result.stderr
    written = json.loads((tmp_path / "audit" / "manifest.json").read_text())
    assert written["package_id"] == manifest.package_id
    for name, src in tables.items():
        assert (tmp_path / "audit" / f"{name}.parquet").read_bytes() == src.read_bytes()
    # decrypted tables are the recipient's alone: 0600 in a 0700 folder
    assert (tmp_path / "audit").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "audit").iterdir()} == {0o600}
    # Opening does not consume: a second open still works.
    assert _cli_open(run_cli, path, keydir, "processor", tmp_path / "again").exit_code == 0


def test_cli_refusals_exit_3_with_own_message(
    tmp_path, keydir, parties, impostors, tables, run_cli
):
    good, _ = _seal(tmp_path / "g", parties["aurelle"], tables, batch="c1")
    unknown, _ = _seal(tmp_path / "u", impostors["mallory"], tables, batch="c1")
    rekeyed, _ = _seal(tmp_path / "r", impostors["aurelle"], tables, batch="c1")
    version = tmp_path / "version.cgpkg"
    data = bytearray(good.read_bytes())
    data[6:8] = struct.pack(">H", 2)
    version.write_bytes(bytes(data))
    replayed, m2 = _seal(tmp_path / "p", parties["aurelle"], tables, batch="c2")
    accept(parties["processor"], [m2])
    cases = [
        (good, "kessler", "wrong recipient"),
        (unknown, "processor", "unknown sender 'mallory'"),
        (rekeyed, "processor", "bad signature"),
        (version, "processor", "unsupported package format version 2"),
    ]
    for path, party, message in cases:
        out = tmp_path / f"out-{message.split()[0]}"
        result = _cli_open(run_cli, path, keydir, party, out)
        assert result.exit_code == 3, (message, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not out.exists() or not any(out.iterdir())
    # A replay is refused to consumers (the API process/import use), but `open` reads
    # without acting (DESIGN §3: auditors): an accepted package still opens, with a note.
    with pytest.raises(SecurityError, match="replayed package"):
        verify_package(replayed, parties["processor"])
    out = tmp_path / "out-replayed"
    result = _cli_open(run_cli, replayed, keydir, "processor", out)
    assert result.exit_code == 0, result.stderr
    assert f"{m2.package_id} was already accepted by processor" in result.stdout
    assert json.loads((out / "manifest.json").read_text())["package_id"] == m2.package_id


# ---------------------------------------------------------------- properties


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(min_size=0, max_size=6000), where=st.floats(0, 1), bit=st.integers(0, 7))
def test_random_tables_round_trip_and_any_flip_is_refused(
    tmp_path_factory, parties, blob, where, bit
):
    base = tmp_path_factory.mktemp("prop")
    src = base / "payload.parquet"
    pl.DataFrame({"blob": [blob]}).write_parquet(src, compression="uncompressed")
    path, _ = _seal(base, parties["aurelle"], {"payload": src})
    work = base / "w"
    work.mkdir(mode=0o700)
    assert open_package(path, parties["processor"], work).tables["payload"].read_bytes() == (
        src.read_bytes()
    )
    data = bytearray(path.read_bytes())
    data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    path.write_bytes(bytes(data))
    with pytest.raises(SecurityError):
        open_package(path, parties["processor"], base / "w")
