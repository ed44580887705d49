"""Retention and purge (issue 7, item 4) on crafted sealed batches: inputs deleted or retained
after a run, `crossgroup purge` removing what is past its period with one audit entry each,
and the replay window that keeps a dropped ledger entry from making a package replayable."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "group"))

from process_batch import AS_OF, build_batch

from crossgroup import audit
from crossgroup.commit import party_session, transaction
from crossgroup.config import load_group
from crossgroup.crypto.keys import load_party, load_registry
from crossgroup.group.erasure import SUPPRESSION_LEDGER
from crossgroup.group.pipeline import process_batch

RETENTION = """
[retention]
input_packages_days = 10
returns_days = 30
suppression_ledger_days = 100
replay_ledger_days = 60
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_batch(tmp_path_factory.mktemp("purge"), n_persons=300)


@pytest.fixture(scope="module")
def processed_at(template) -> dt.datetime:
    """The clock of the processed batch, injected: every date a test expects derives from it,
    so a run that starts at 23:59:59 UTC and checks after midnight still agrees."""
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def processed(template, processed_at, tmp_path_factory):
    """One batch processed at `processed_at` with retention periods set; inputs kept 10 days."""
    root = tmp_path_factory.mktemp("processed") / "batch"
    shutil.copytree(template.keys.parent, root)
    pipeline = root / "group.toml"
    pipeline.write_text(pipeline.read_text() + RETENTION, encoding="utf-8")
    copy = root / "inbox-copy"
    shutil.copytree(root / "inbox", copy)
    process_batch(root / "inbox", load_party(root / "keys" / "processor"), root / "out",
                  group=load_group(pipeline), now=processed_at)  # fmt: skip
    return root


def fresh(processed: Path, tmp_path: Path) -> Path:
    root = tmp_path / "w"
    shutil.copytree(processed, root)
    return root


def purge(run_cli, root: Path, days: int, processed_at: dt.datetime):
    """`crossgroup purge --now` on the date `days` after the batch was processed."""
    when = (processed_at + dt.timedelta(days=days)).date().isoformat()
    return run_cli("purge", "--out", root / "out", "--keys", root / "keys" / "processor",
                   "--pipeline", root / "group.toml", "--now", when)  # fmt: skip


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_inputs_are_deleted_after_a_run_without_retention(template, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(template.keys.parent, root)
    process_batch(root / "inbox", load_party(root / "keys" / "processor"), root / "out",
                  group=load_group(root / "group.toml"))  # fmt: skip
    assert not list((root / "inbox").glob("*.cgpkg"))
    assert not (root / "out" / "retained").exists()
    (entry,) = audit.read_entries(root / "out" / "audit.jsonl")
    assert {i["after_run"] for i in entry["inputs"]} == {"deleted"}


def test_inputs_are_retained_with_their_accept_date(processed, processed_at):
    accepted = processed_at.date().isoformat()
    kept = files(processed / "out" / "retained")
    assert len(kept) == 3 and all(k.startswith(f"{accepted}/export-") for k in kept)
    (entry,) = audit.read_entries(processed / "out" / "audit.jsonl")
    assert {i["after_run"] for i in entry["inputs"]} == {f"retained/{k}" for k in kept}
    assert not list((processed / "inbox").glob("*.cgpkg"))


def test_nothing_is_purged_before_its_period(run_cli, processed, processed_at, tmp_path):
    root = fresh(processed, tmp_path)
    before = files(root / "out")
    r = purge(run_cli, root, 5, processed_at)
    assert r.exit_code == 0, r.stderr
    assert files(root / "out") == [*before]  # the audit log gained no entry either
    assert len(audit.read_entries(root / "out" / "audit.jsonl")) == 1


def test_retained_inputs_then_returns_are_purged_each_with_an_audit_entry(
    run_cli, processed, processed_at, tmp_path
):
    root = fresh(processed, tmp_path)
    retained = {f: audit.file_digest(root / "out" / "retained" / f)
                for f in files(root / "out" / "retained")}  # fmt: skip
    r = purge(run_cli, root, 11, processed_at)
    assert r.exit_code == 0, r.stderr
    assert not (root / "out" / "retained").exists() or not files(root / "out" / "retained")
    assert files(root / "out" / "returns")  # returns are kept 30 days
    entries = audit.read_entries(root / "out" / "audit.jsonl")
    purged = [e for e in entries if e["command"] == "purge"]
    assert len(purged) == 3
    assert {o["sha256"] for e in purged for o in e["outputs"]} == set(retained.values())
    assert all(e["counts"]["removed"] == "retained input" for e in purged)
    r = purge(run_cli, root, 31, processed_at)
    assert r.exit_code == 0, r.stderr
    assert files(root / "out") == [".audit.jsonl.lock", "audit.jsonl", "audit.jsonl.head"]
    assert audit.verify_chain(root / "out" / "audit.jsonl") == []
    registry = load_registry(root / "keys" / "registry.toml")  # purge entries sign the head
    assert audit.verify_log(root / "out" / "audit.jsonl", registry=registry) == []
    assert len(audit.read_entries(root / "out" / "audit.jsonl")) == 1 + 3 + 3 + 5


def test_ledgers_are_purged_and_old_packages_are_refused_not_replayed(
    run_cli, processed, processed_at, template, tmp_path
):
    root = fresh(processed, tmp_path)
    party = root / "keys" / "processor"
    old = (processed_at.date() - dt.timedelta(days=150)).isoformat()
    (party / SUPPRESSION_LEDGER).write_text(
        json.dumps({"digest": "ab" * 16, "added": old})
        + "\n"
        + json.dumps({"digest": "cd" * 16, "added": processed_at.date().isoformat()})
        + "\n",
        encoding="utf-8",
    )
    assert len((party / "ledger.jsonl").read_text().splitlines()) == 3
    # replay entries are kept max_age + CLOCK_SKEW after max(accepted_at, created_at)
    r = purge(run_cli, root, 62, processed_at)
    assert r.exit_code == 0, r.stderr
    assert (party / "ledger.jsonl").read_text() == ""
    assert [json.loads(x)["digest"] for x in (party / SUPPRESSION_LEDGER).read_text().splitlines()
            ] == ["cd" * 16]  # fmt: skip
    logged = [e["counts"] for e in audit.read_entries(root / "out" / "audit.jsonl")
              if "ledger" in e["counts"]]  # fmt: skip
    assert {c["ledger"]: c["entries_dropped"] for c in logged} == {
        SUPPRESSION_LEDGER: 1,
        "ledger.jsonl": 3,
    }
    # the replay ledger forgot the packages; they are refused for their age, not accepted
    from crossgroup.errors import SecurityError

    shutil.copytree(root / "inbox-copy", root / "inbox", dirs_exist_ok=True)
    later = processed_at + dt.timedelta(days=62)
    with pytest.raises(SecurityError, match="older than the replay ledger"):
        process_batch(root / "inbox", load_party(party), root / "out2",
                      group=load_group(root / "group.toml"), now=later)  # fmt: skip
    assert not (root / "out2").exists() or not files(root / "out2")


def test_package_from_the_future_is_refused(template, tmp_path):
    from crossgroup.errors import SecurityError

    root = tmp_path / "b"
    shutil.copytree(template.keys.parent, root)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with pytest.raises(SecurityError, match="in the future"):
        process_batch(root / "inbox", load_party(root / "keys" / "processor"), root / "out",
                      group=load_group(root / "group.toml"), now=earlier)  # fmt: skip


def test_bad_now_is_exit_2_and_maison_keys_exit_3(run_cli, processed, tmp_path):
    root = fresh(processed, tmp_path)
    r = run_cli("purge", "--out", root / "out", "--keys", root / "keys" / "processor",
                "--now", "tomorrow")  # fmt: skip
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("purge", "--out", root / "out", "--keys", root / "keys" / "aurelle",
                "--pipeline", root / "group.toml")  # fmt: skip
    assert r.exit_code == 3 and "not the processor" in r.stderr


def test_processor_suppression_key_is_allowed_but_a_disguised_secret_is_not(template, tmp_path):
    from crossgroup.crypto.keys import load_party, require_processor_keys
    from crossgroup.errors import InputError, SecurityError

    root = tmp_path / "k"
    shutil.copytree(template.keys, root)
    processor = root / "processor"
    keys = load_party(processor)
    assert keys.suppression_key and len(keys.suppression_key) == 32
    require_processor_keys(keys, processor)  # its own suppression key: fine
    shutil.copy(root / "aurelle" / "local.secret", processor / "suppression.key")
    with pytest.raises(InputError, match="not a crossgroup suppression secret"):
        load_party(processor)  # a local secret under the suppression key's name
    with pytest.raises(SecurityError, match="secret file"):
        require_processor_keys(keys, processor)


REPLAY_DAYS = 5


def test_replay_window_has_no_gap_when_a_package_is_dated_ahead_by_the_clock_skew(
    template, tmp_path
):
    """A package dated CLOCK_SKEW ahead, accepted at t0, then `purge` every day: each replay is
    refused (exit 3), as a replay while the ledger keeps its id, then for its age; never
    accepted again (the ledger used to drop it at t0 + max_age, a day before the age check
    refused it)."""
    from crossgroup.crypto.package import seal_package
    from crossgroup.errors import SecurityError
    from crossgroup.group.retention import CLOCK_SKEW
    from crossgroup.group.retention import purge as run_purge

    root = tmp_path / "b"
    shutil.copytree(template.keys.parent, root)
    pipeline = root / "group.toml"
    pipeline.write_text(
        pipeline.read_text() + f"[retention]\nreplay_ledger_days = {REPLAY_DAYS}\n", "utf-8"
    )
    group, processor = load_group(pipeline), root / "keys" / "processor"
    t0 = dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)
    for package in (root / "inbox").iterdir():
        package.unlink()
    for maison, tables in template.tables.items():
        keys = load_party(root / "keys" / maison)
        seal_package(root / "inbox", kind="export", sender=keys, recipient="processor",
                     tables=tables, batch_id="2026-06", as_of=AS_OF,
                     matching_key_id=keys.matching.key_id, now=t0 + CLOCK_SKEW)  # fmt: skip
    shutil.copytree(root / "inbox", root / "inbox-copy")
    process_batch(root / "inbox", load_party(processor), root / "out", group=group, now=t0)
    ledger = processor / "ledger.jsonl"
    assert len(ledger.read_text().splitlines()) == 3

    last_day_of_age = REPLAY_DAYS + 1  # now - created_at reaches max_age on this day
    for day in range(REPLAY_DAYS + 4):
        now = t0 + dt.timedelta(days=day)
        run_purge(root / "out", load_party(processor), group, now=now)
        kept = len(ledger.read_text().splitlines())
        assert kept == (3 if day <= last_day_of_age else 0), day  # kept a skew past the age
        shutil.copytree(root / "inbox-copy", root / "inbox", dirs_exist_ok=True)
        with pytest.raises(SecurityError) as refused:
            process_batch(root / "inbox", load_party(processor), root / f"again-{day}",
                          group=group, now=now)  # fmt: skip
        assert refused.value.exit_code == 3
        why = "replayed package" if day <= last_day_of_age else "older than the replay ledger"
        assert why in str(refused.value), (day, str(refused.value))
        assert not (root / f"again-{day}").exists()


@pytest.mark.parametrize(
    ("after", "kept"),
    [(dt.timedelta(days=REPLAY_DAYS + 2, seconds=-1), 1), (dt.timedelta(days=REPLAY_DAYS + 2), 0)],
    ids=["just-before", "at-expiry"],
)
def test_old_ledger_line_without_created_at_is_kept_two_skews_past_the_window(
    tmp_path, after, kept
):
    """Lines written before created_at was recorded: their package may have been dated up to
    one skew after acceptance, so they are kept max_age + 2 * CLOCK_SKEW after accepted_at."""
    from crossgroup.group.retention import purge_ledgers

    pipeline = tmp_path / "group.toml"
    pipeline.write_text(
        f'[batch]\nmaisons = ["aurelle"]\n[retention]\nreplay_ledger_days = {REPLAY_DAYS}\n',
        encoding="utf-8",
    )
    accepted = dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)
    line = {"package_id": "ab" * 16, "kind": "export", "sender": "aurelle",
            "batch_id": "2026-06", "accepted_at": accepted.isoformat()}  # fmt: skip
    (tmp_path / "ledger.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    with (
        party_session(tmp_path, party="processor", command="purge"),
        transaction(tmp_path) as tx,
    ):
        purge_ledgers(tx, tmp_path, load_group(pipeline), accepted + after)
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == kept


def test_a_tampered_audit_log_stops_purge_before_any_deletion(
    run_cli, processed, processed_at, tmp_path
):
    """Deletions are recorded in the log, so a log that is not intact refuses purge (exit 3)
    before a single expired file goes: none may vanish unrecorded."""
    root = fresh(processed, tmp_path)
    log = root / "out" / "audit.jsonl"
    entry = json.loads(log.read_text().splitlines()[0])
    entry["counts"]["packages"] = 99
    log.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    before = files(root)
    result = purge(run_cli, root, 400, processed_at)
    assert result.exit_code == 3, result.stderr
    assert "audit log is not intact" in result.stderr
    assert files(root) == before
