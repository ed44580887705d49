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

from process_batch import build_batch

from crossgroup import audit
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
def processed(template, tmp_path_factory):
    """One batch processed today with retention periods set; inputs kept 10 days."""
    root = tmp_path_factory.mktemp("processed") / "batch"
    shutil.copytree(template.keys.parent, root)
    pipeline = root / "group.toml"
    pipeline.write_text(pipeline.read_text() + RETENTION, encoding="utf-8")
    copy = root / "inbox-copy"
    shutil.copytree(root / "inbox", copy)
    process_batch(root / "inbox", load_party(root / "keys" / "processor"), root / "out",
                  group=load_group(pipeline))  # fmt: skip
    return root


def fresh(processed: Path, tmp_path: Path) -> Path:
    root = tmp_path / "w"
    shutil.copytree(processed, root)
    return root


def purge(run_cli, root: Path, days: int):
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()
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


def test_inputs_are_retained_with_their_accept_date(processed):
    today = dt.datetime.now(dt.UTC).date().isoformat()
    kept = files(processed / "out" / "retained")
    assert len(kept) == 3 and all(k.startswith(f"{today}/export-") for k in kept)
    assert not list((processed / "inbox").glob("*.cgpkg"))


def test_nothing_is_purged_before_its_period(run_cli, processed, tmp_path):
    root = fresh(processed, tmp_path)
    before = files(root / "out")
    r = purge(run_cli, root, 5)
    assert r.exit_code == 0, r.stderr
    assert files(root / "out") == [*before]  # the audit log gained no entry either
    assert len(audit.read_entries(root / "out" / "audit.jsonl")) == 1


def test_retained_inputs_then_returns_are_purged_each_with_an_audit_entry(
    run_cli, processed, tmp_path
):
    root = fresh(processed, tmp_path)
    retained = {f: audit.file_digest(root / "out" / "retained" / f)
                for f in files(root / "out" / "retained")}  # fmt: skip
    r = purge(run_cli, root, 11)
    assert r.exit_code == 0, r.stderr
    assert not (root / "out" / "retained").exists() or not files(root / "out" / "retained")
    assert files(root / "out" / "returns")  # returns are kept 30 days
    entries = audit.read_entries(root / "out" / "audit.jsonl")
    purged = [e for e in entries if e["command"] == "purge"]
    assert len(purged) == 3
    assert {o["sha256"] for e in purged for o in e["outputs"]} == set(retained.values())
    assert all(e["counts"]["removed"] == "retained input" for e in purged)
    r = purge(run_cli, root, 31)
    assert r.exit_code == 0, r.stderr
    assert files(root / "out") == [".audit.jsonl.lock", "audit.jsonl", "audit.jsonl.head"]
    assert audit.verify_chain(root / "out" / "audit.jsonl") == []
    registry = load_registry(root / "keys" / "registry.toml")  # purge entries sign the head
    assert audit.verify_log(root / "out" / "audit.jsonl", registry=registry) == []
    assert len(audit.read_entries(root / "out" / "audit.jsonl")) == 1 + 3 + 3 + 5


def test_ledgers_are_purged_and_old_packages_are_refused_not_replayed(
    run_cli, processed, template, tmp_path
):
    root = fresh(processed, tmp_path)
    party = root / "keys" / "processor"
    old = (dt.date.today() - dt.timedelta(days=150)).isoformat()
    (party / SUPPRESSION_LEDGER).write_text(
        json.dumps({"digest": "ab" * 16, "added": old})
        + "\n"
        + json.dumps({"digest": "cd" * 16, "added": dt.date.today().isoformat()})
        + "\n",
        encoding="utf-8",
    )
    assert len((party / "ledger.jsonl").read_text().splitlines()) == 3
    r = purge(run_cli, root, 61)
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
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=61)
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
