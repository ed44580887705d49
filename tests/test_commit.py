"""One command's changes as one commit (crossgroup.commit): all or, after a crash past the
commit point, finished by the party's next run; the lock; stale folders swept."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from crossgroup import audit, commit, io
from crossgroup.errors import InputError, SecurityError

PARTY = "aurelle"


class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` and no cleanup of ours may catch it."""


def fields(n: int) -> dict:
    return {"party": PARTY, "command": "import", "counts": {"n": n}}


def run_command(party_dir: Path, out: Path, n: int) -> None:
    """A command's commit: an output file, a ledger line, a state file, an audit entry, and
    its input package (if there is one in the inbox beside the party folder) kept under
    retention in `out`."""
    with (
        commit.party_session(party_dir, party=PARTY, command="import"),
        commit.transaction(party_dir) as tx,
    ):
        if (package := party_dir.parent / "inbox" / f"p{n}.cgpkg").exists():
            tx.move(package, out / "retained" / package.name)
        stage = tx.stage_output(out, mode=0o600)
        (stage / "segments.parquet").write_bytes(b"rows %d" % n)
        (stage / "sub").mkdir()
        (stage / "sub" / "report.html").write_text("page")
        tx.append(party_dir / "ledger.jsonl", [{"package_id": f"p{n}"}])
        tx.put(party_dir / "exports" / f"p{n}.refs", b"\x01" * 16)
        tx.audit(party_dir / "audit.jsonl", **fields(n))


def state(*folders: Path) -> dict[str, bytes]:
    """Files by content; the audit log (times differ between runs) is compared by entries."""
    return {
        str(p.relative_to(folder.parent)): p.read_bytes()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock") and not p.name.startswith("audit.jsonl")
    }


def audit_commands(party_dir: Path) -> list[int]:
    return [e["counts"]["n"] for e in audit.read_entries(party_dir / "audit.jsonl")]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    party_dir, out = tmp_path / "party", tmp_path / "out"
    party_dir.mkdir()
    run_command(party_dir, out, 1)  # some history
    return party_dir, out


def test_a_commit_lands_whole(dirs):
    party_dir, out = dirs
    assert (out / "segments.parquet").read_bytes() == b"rows 1"
    assert (out / "sub" / "report.html").read_text() == "page"
    assert oct((out / "segments.parquet").stat().st_mode & 0o777) == oct(0o600)
    assert (party_dir / "exports" / "p1.refs").stat().st_mode & 0o077 == 0
    assert audit.verify_log(party_dir / "audit.jsonl") == []
    assert not list(out.glob(".staging-*")) and not any((party_dir / ".journal").iterdir())


def test_a_failure_before_the_commit_point_changes_nothing(dirs):
    party_dir, out = dirs
    before = state(party_dir, out)
    with (
        pytest.raises(RuntimeError, match="boom"),
        commit.party_session(party_dir, party=PARTY, command="import"),
        commit.transaction(party_dir) as tx,
    ):
        (tx.stage_output(out) / "segments.parquet").write_bytes(b"half")
        tx.append(party_dir / "ledger.jsonl", [{"package_id": "p2"}])
        tx.audit(party_dir / "audit.jsonl", **fields(2))
        raise RuntimeError("boom")
    assert state(party_dir, out) == before
    assert not list(out.glob(".staging-*")) and not any((party_dir / ".journal").iterdir())


@pytest.mark.parametrize("dies_at", range(5))  # before each of the five steps
def test_a_crash_while_applying_is_finished_by_the_next_run(dirs, tmp_path, monkeypatch, dies_at):
    party_dir, out = dirs
    reference = tmp_path / "reference"
    reference.mkdir()
    ref_party, ref_out = reference / "party", reference / "out"
    shutil.copytree(party_dir, ref_party)
    shutil.copytree(out, ref_out)
    run_command(ref_party, ref_out, 2)  # what an uninterrupted run leaves

    real_apply, done = commit._apply, []

    def dying_apply(step, **kwargs):
        if len(done) == dies_at:
            raise Killed
        real_apply(step, **kwargs)
        done.append(step["do"])

    monkeypatch.setattr(commit, "_apply", dying_apply)
    with pytest.raises(Killed):
        run_command(party_dir, out, 2)
    monkeypatch.setattr(commit, "_apply", real_apply)
    assert list((party_dir / ".journal").glob("*.json")), "the commit point was passed"

    with commit.party_session(party_dir, party=PARTY, command="export"):  # the next run
        pass
    assert state(party_dir, out) == {
        k.replace("reference/", ""): v for k, v in state(ref_party, ref_out).items()
    }
    assert audit_commands(party_dir) == [1, 2]
    assert audit.verify_log(party_dir / "audit.jsonl") == []
    assert not list(out.glob(".staging-*")) and not any((party_dir / ".journal").iterdir())


def test_applying_a_journal_twice_changes_nothing_more(dirs, monkeypatch):
    party_dir, out = dirs
    journals = []
    real = commit.apply_journal

    def keep_a_copy(journal, **kwargs):
        journals.append((journal, journal.read_bytes()))
        real(journal, **kwargs)

    monkeypatch.setattr(commit, "apply_journal", keep_a_copy)
    run_command(party_dir, out, 2)
    after = state(party_dir, out)
    journal, data = journals[0]
    journal.write_bytes(data)
    journal.chmod(0o600)
    real(journal)
    assert state(party_dir, out) == after and audit_commands(party_dir) == [1, 2]
    assert audit.verify_log(party_dir / "audit.jsonl") == []


def test_a_target_in_the_way_is_refused_before_the_commit(dirs):
    party_dir, out = dirs
    (out / "segments.parquet").unlink()
    (out / "segments.parquet").mkdir()  # a folder where the file must go
    before = state(party_dir, out)
    with pytest.raises(InputError, match=r"segments\.parquet: a folder of that name is in the way"):
        run_command(party_dir, out, 2)
    assert state(party_dir, out) == before
    assert not any((party_dir / ".journal").iterdir())


# As root (CI) the commit runs in a child without the capabilities that bypass file modes: it
# imports `run_command` from this file and reports an InputError as one line and exit 2.
_COMMIT_IN_A_CHILD = """\
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from crossgroup.errors import InputError
from test_commit import run_command
try:
    run_command(Path(sys.argv[2]), Path(sys.argv[3]), 2)
except InputError as e:
    print(f"InputError: {e}", file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.parametrize(
    ("read_only", "refused"),
    [
        ("party/ledger.jsonl", r"ledger\.jsonl: Permission denied"),  # a state file
        ("out/sub", r"in .*out/sub: Permission denied"),  # a folder an output goes into
        ("inbox", r"in .*inbox: Permission denied"),  # where an input must leave from
    ],
)
def test_what_cannot_be_written_is_refused_before_the_commit(
    dirs, permissions_enforced, read_only, refused
):
    party_dir, out = dirs
    (party_dir.parent / "inbox").mkdir()
    (party_dir.parent / "inbox" / "p2.cgpkg").write_bytes(b"sealed")
    target = party_dir.parent / read_only
    target.chmod(0o500 if target.is_dir() else 0o400)
    before = state(party_dir, out, party_dir.parent / "inbox")
    if permissions_enforced is None:
        with pytest.raises(InputError, match=refused):
            run_command(party_dir, out, 2)
    else:
        child = subprocess.run(
            [*permissions_enforced, sys.executable, "-c", _COMMIT_IN_A_CHILD,
             str(Path(__file__).parent), str(party_dir), str(out)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(commit.__file__).parents[1])},
        )  # fmt: skip
        lines = child.stderr.strip().splitlines()
        assert child.returncode == 2 and len(lines) == 1, child.stderr
        assert re.search(rf"^InputError: .*{refused}", lines[0]), child.stderr
    assert state(party_dir, out, party_dir.parent / "inbox") == before
    assert not any((party_dir / ".journal").iterdir())


def test_a_subfolder_of_out_on_another_filesystem_is_written_across(dirs, tmp_path):
    """os.replace cannot cross filesystems (EXDEV): the file is copied, fsynced and renamed."""
    party_dir, out = dirs
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem (/dev/shm) to cross to")
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        shutil.rmtree(out / "sub")
        (out / "sub").symlink_to(elsewhere)
        run_command(party_dir, out, 2)
        assert (elsewhere / "report.html").read_text() == "page"
        assert not list(out.glob(".staging-*"))
    finally:
        shutil.rmtree(elsewhere)


def test_a_damaged_journal_is_a_security_refusal(dirs):
    party_dir, _ = dirs
    damaged = party_dir / ".journal" / "20260101T000000-00000000.json"
    damaged.write_text("{not json")
    damaged.chmod(0o600)
    with (
        pytest.raises(SecurityError, match=r"commit journal .* is damaged"),
        commit.party_session(party_dir, party=PARTY, command="import"),
    ):
        pass


def test_the_lock_refuses_a_second_holder_naming_the_first(dirs):
    party_dir, _ = dirs
    code = (
        "import sys; from pathlib import Path; from crossgroup import commit\n"
        f"with commit.party_session(Path({str(party_dir)!r}), party='aurelle', command='x'):\n"
        "    pass\n"
    )
    with commit.party_session(party_dir, party=PARTY, command="process"):
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(commit.__file__).parents[1])},
        )  # fmt: skip
    assert child.returncode != 0
    assert f"in use by crossgroup process (pid {os.getpid()}" in child.stderr


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def fake_dir(parent: Path, name: str, **owner) -> Path:
    path = parent / name
    path.mkdir(mode=0o700)
    (path / io.OWNER_FILE).write_text(json.dumps(owner))
    (path / "identities.parquet").write_bytes(b"plaintext")
    return path


def test_stale_working_folders_of_the_party_are_removed_others_kept(tmp_path):
    dead = dead_pid()
    stale = fake_dir(tmp_path, f"crossgroup-import-{dead}-aaaa", pid=dead, party=PARTY)
    nameless = tmp_path / f"crossgroup-export-{dead}-bbbbbbbb"  # killed before its owner file
    nameless.mkdir()
    notes = tmp_path / f"crossgroup-notes-{dead}-jan"  # a user's folder that looks like ours
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    elsewhere = fake_dir(  # made on another host sharing the folder: never judged from here
        tmp_path, f"crossgroup-import-{dead}-ffff", pid=dead, host="another-host", party=PARTY
    )
    other_party = fake_dir(tmp_path, f"crossgroup-import-{dead}-cccc", pid=dead, party="kessler")
    alive = fake_dir(
        tmp_path, f"crossgroup-import-{os.getpid()}-dddd", pid=os.getpid(), party=PARTY
    )
    reused = fake_dir(  # a live pid that started at another time: a reused pid, so stale
        tmp_path, f"crossgroup-import-{os.getpid()}-eeee", pid=os.getpid(), start="1", party=PARTY
    )
    with io.private_workdir(tmp_path, party=PARTY) as work:
        assert work.stat().st_mode & 0o777 == 0o700
        assert not stale.exists() and not nameless.exists() and not reused.exists()
        assert other_party.exists() and alive.exists() and notes.exists() and elsewhere.exists()
    assert not work.exists()


def test_stale_staging_is_removed_unless_a_journal_still_needs_it(tmp_path):
    dead = dead_pid()
    journal = tmp_path / "journal.json"
    journal.write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    orphan = fake_dir(out, f".staging-{dead}-aaaa", pid=dead)
    pending = fake_dir(out, f".staging-{dead}-bbbb", pid=dead, journal=str(journal))
    with io.staged_output(out) as staging:
        (staging / "x.txt").write_text("x")
    assert not orphan.exists() and pending.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["x.txt"]


@pytest.mark.parametrize(
    "steps",
    [
        [{"do": "remove", "path": "relative/file"}],  # a journal names absolute paths only
        [{"do": "chmod", "path": "/etc/passwd"}],  # no step kind beyond the four
        [{"do": "append", "path": "/tmp/x.jsonl", "lines": [{"not": "a line"}]}],
        {"do": "remove"},
    ],
)
def test_a_malformed_or_foreign_journal_is_refused_not_obeyed(dirs, tmp_path, steps):
    party_dir, _ = dirs
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = party_dir / ".journal" / "20260101T000000-00000001.json"
    planted.write_text(json.dumps({"steps": steps}))
    planted.chmod(0o600)
    with (
        pytest.raises(SecurityError, match="damaged or not this user's own"),
        commit.party_session(party_dir, party=PARTY, command="import"),
    ):
        pass
    planted.write_text(json.dumps({"steps": [{"do": "remove", "path": str(victim)}]}))
    planted.chmod(0o644)  # well formed, but writable by others: not obeyed either
    with (
        pytest.raises(SecurityError, match="damaged or not this user's own"),
        commit.party_session(party_dir, party=PARTY, command="import"),
    ):
        pass
    assert victim.read_text() == "keep me"


def test_a_rerun_from_another_folder_finishes_the_commit_in_place(tmp_path, monkeypatch):
    """Relative --keys and --out: the journal names absolute paths, so a next run started
    elsewhere finishes the commit where it belongs."""
    monkeypatch.chdir(tmp_path)
    Path("party").mkdir()
    real_apply = commit._apply

    def dying_apply(step, **kwargs):
        if step["do"] == "append":
            raise Killed
        real_apply(step, **kwargs)

    monkeypatch.setattr(commit, "_apply", dying_apply)
    with pytest.raises(Killed):
        run_command(Path("party"), Path("out"), 1)
    monkeypatch.setattr(commit, "_apply", real_apply)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with commit.party_session(tmp_path / "party", party=PARTY, command="export"):
        pass
    assert not list(elsewhere.iterdir())
    assert (tmp_path / "party" / "ledger.jsonl").read_text().count("p1") == 1
    assert audit_commands(tmp_path / "party") == [1]
    assert (tmp_path / "out" / "segments.parquet").read_bytes() == b"rows 1"
