"""One command's changes committed as one step, and one command per party at a time.

A command that changes a party's state (a ledger, its audit log, a refs file, its inbox) and
writes outputs runs inside `party_session`: an exclusive lock on the party directory, held
from the replay check until everything is committed, so a second run of the same party is
refused (exit 3) before it writes anything.

Inside, a `Transaction` stages everything first: output files in a staging folder beside
`--out`, whole state files in the party directory's `.journal/` folder, ledger and audit
lines in memory. `commit` then checks every target can be written, fsyncs what was staged and
writes a journal naming each step; the journal's atomic rename is the commit point. Applying
it appends the lines, moves the files in and removes or moves the inputs. Every step is safe
to repeat, so if the run dies while applying, the party's next command (any of them: it runs
`recover` when it takes the lock) finishes the journal. A run that dies before the commit
point leaves only staging folders, which are removed as stale (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from crossgroup import audit, jsonl
from crossgroup.errors import InputError, SecurityError
from crossgroup.io import (
    chmod_files,
    move_file,
    move_tree,
    new_staging,
    remove_stale_workdirs,
    write_private_bytes,
)

PARTY_STATE = "crossgroup"  # locked as a state file: its lock is `.crossgroup.lock`
JOURNAL_DIR = ".journal"

# ---------------------------------------------------------------- the party lock


@contextlib.contextmanager
def party_session(party_dir: Path, *, party: str, command: str) -> Iterator[None]:
    """Hold the party's lock for a whole command, after finishing what a killed run left.

    The lock is `jsonl.locked` on the party directory's `.crossgroup.lock`, taken without
    waiting: when another run of this party holds it, a SecurityError (exit 3) names that
    run, since a consumer that waited would find its package in the ledger anyway and a
    scheduler's retry is clearer than a silent wait. Re-entrant (process -> erasures).
    """
    state = Path(party_dir) / PARTY_STATE
    if jsonl.is_locked(state):
        yield
        return
    lock = jsonl.lock_path(state)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(jsonl.locked(state, wait=False))
        except BlockingIOError:
            raise SecurityError(
                f"{party}'s state in {party_dir} is in use by {_holder(lock)}: nothing was "
                "written; run again when it has finished"
            ) from None
        holder = {"command": command, "pid": os.getpid(),
                  "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
        _name_holder(lock, json.dumps(holder).encode())
        recover(party_dir)
        # a run killed after its commit but before removing its working folder: the
        # rerun may refuse at once (batch already exported), so sweep here, not later
        remove_stale_workdirs(None, party)
        yield


def _name_holder(lock: Path, data: bytes) -> None:
    """Write the holder into the lock file in place: replacing the file would leave the
    lock on the old one and let another run lock the new one."""
    fd = os.open(lock, os.O_WRONLY)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def _holder(lock: Path) -> str:
    """Who holds the lock, as its holder wrote it. The holder writes that just after taking
    the lock, so for a moment the file may be empty or still name the previous, finished
    holder: read again briefly until it names a live process."""
    for _ in range(20):
        try:
            holder = json.loads(lock.read_text(encoding="utf-8"))
            named = f"crossgroup {holder['command']} (pid {holder['pid']}, since {holder['since']})"
            with contextlib.suppress(PermissionError):  # another user's live process
                os.kill(int(holder["pid"]), 0)
            return named
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "another crossgroup run"


def holds(party_dir: Path) -> bool:
    return jsonl.is_locked(Path(party_dir) / PARTY_STATE)


# ---------------------------------------------------------------- journals


def recover(party_dir: Path) -> list[Path]:
    """Finish every commit a killed run left in `party_dir`, oldest first; drop the rest."""
    folder = Path(party_dir) / JOURNAL_DIR
    if not folder.is_dir():
        return []
    journals = sorted(folder.glob("*.json"))
    for journal in journals:
        apply_journal(journal)
    for leftover in folder.iterdir():  # staged state files and journals never committed
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return journals


STEP_PATHS = {"append": ("path",), "move_tree": ("from", "to"), "move": ("from", "to"),
              "remove": ("path",)}  # fmt: skip


def _steps(journal: Path) -> list[dict]:
    """A journal's steps, refused unless it is this user's own private file, well formed,
    with absolute paths: a journal is obeyed, so nobody else may have written it."""
    damaged = SecurityError(
        f"commit journal {journal} is damaged or not this user's own: it cannot be finished "
        "safely; check the ledgers against it before removing it"
    )
    try:
        st = journal.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise damaged
        steps = json.loads(journal.read_text(encoding="utf-8"))["steps"]
        for step in steps:
            paths = [step[key] for key in STEP_PATHS[step["do"]]]
            if not all(isinstance(p, str) and os.path.isabs(p) for p in paths):
                raise damaged
            if step["do"] == "append" and not all(isinstance(x, str) for x in step["lines"]):
                raise damaged
    except (OSError, ValueError, KeyError, TypeError):
        raise damaged from None
    return steps


def apply_journal(journal: Path, *, fresh: bool = False) -> None:
    """Carry out a committed journal's steps, each one safe to repeat, then delete it.

    `fresh`: applied by the run that just wrote it, so no line can be there yet and the
    appended files are not read back; a journal found by `recover` is always checked.
    """
    for step in _steps(journal):
        try:
            _apply(step, fresh=fresh)
        except OSError as e:
            where = e.filename2 or e.filename or step.get("path") or step.get("to")
            raise InputError(
                f"cannot write {where}: {e.strerror}; the commit is recorded in {journal} and "
                "the next crossgroup run of this party finishes it"
            ) from None
    journal.unlink()
    shutil.rmtree(journal.with_suffix(""), ignore_errors=True)


def _apply(step: Mapping[str, Any], *, fresh: bool = False) -> None:
    kind = step["do"]
    if kind == "append":
        path = Path(step["path"])
        present = set() if fresh or not path.exists() else set(path.read_text("utf-8").splitlines())
        missing = [line for line in step["lines"] if line not in present]
        jsonl.append(path, missing, encode=str)
    elif kind == "move_tree":
        move_tree(Path(step["from"]), Path(step["to"]))
    elif kind == "move":
        move_file(Path(step["from"]), Path(step["to"]))
    else:  # "remove"; _steps admits no other kind
        Path(step["path"]).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- transactions


class Transaction:
    """What one command will change, staged; `commit` applies it as one step.

    Example:
    with party_session(d, party="aurelle", command="import"), transaction(d) as tx:
        stage = tx.stage_output(out_dir, mode=0o600); write files into stage
        tx.append(d / "ledger.jsonl", [line]); tx.audit(d / "audit.jsonl", ...)
    """

    def __init__(self, party_dir: Path) -> None:
        self.party_dir = Path(party_dir).absolute()  # every path a journal names is absolute
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.journal = self.party_dir / JOURNAL_DIR / f"{stamp}-{secrets.token_hex(4)}.json"
        self._state = self.journal.with_suffix("")  # whole state files staged for the commit
        self._steps: list[dict] = []
        self._stagings: list[tuple[Path, int | None]] = []
        self._appends: dict[Path, list[str]] = {}
        self._audit: dict[Path, list[dict]] = {}

    def stage_output(self, out_dir: Path, *, mode: int | None = None) -> Path:
        """A staging folder whose files move into `out_dir` at commit (with `mode`, if set)."""
        out_dir, staging = new_staging(out_dir, mode=mode, journal=str(self.journal))
        self._stagings.append((staging, mode))
        self._steps.append({"do": "move_tree", "from": str(staging), "to": str(out_dir)})
        return staging

    def append(self, path: Path, records: Iterable[Mapping[str, Any]]) -> None:
        """Lines to append to a JSONL state file (a ledger)."""
        lines = [jsonl.dumps(r) for r in records]
        if lines:
            self._append_lines(Path(path), lines)

    def _append_lines(self, path: Path, lines: list[str]) -> None:
        path = path.absolute()
        if path not in self._appends:
            self._appends[path] = []
            self._steps.append({"do": "append", "path": str(path), "lines": self._appends[path]})
        self._appends[path].extend(lines)

    def put(self, path: Path, data: bytes) -> Path:
        """A whole state file (mode 0600) written at commit; returns where it is staged."""
        self._state.mkdir(mode=0o700, parents=True, exist_ok=True)
        staged = self._state / f"{len(self._steps)}-{Path(path).name}"
        write_private_bytes(staged, data)
        self._steps.append({"do": "move", "from": str(staged), "to": str(Path(path).absolute())})
        return staged

    def move(self, src: Path, dst: Path) -> None:
        """An input moved at commit (e.g. a package kept under retention)."""
        self._steps.append(
            {"do": "move", "from": str(Path(src).absolute()), "to": str(Path(dst).absolute())}
        )

    def remove(self, path: Path) -> None:
        """An input deleted at commit."""
        self._steps.append({"do": "remove", "path": str(Path(path).absolute())})

    def audit(self, log: Path, **record: Any) -> dict:
        """An audit entry (see `audit.prepare` for the fields), chained after the log and any
        entry this transaction already holds for it; the signed head is rewritten with it."""
        log = Path(log).absolute()
        pending = self._audit.setdefault(log, [])
        if not pending:
            audit.require_intact(log)
        entry, head = audit.prepare(log, pending, **record)
        pending.append(entry)
        self._append_lines(log, [audit.canonical_json(entry).decode()])
        heads = [s for s in self._steps if s.get("to") == str(audit.head_path(log))]
        for step in heads:  # only the newest head is written
            self._steps.remove(step)
        self.put(audit.head_path(log), head)
        return entry

    def commit(self) -> None:
        """Check targets, fsync what was staged, write the journal (the commit point), apply."""
        for path in self._appends:
            _writable(path)
        for step in self._steps:
            _check_step(step, staged_state=self._state)
        for staging, mode in self._stagings:
            if mode is not None:
                chmod_files(staging, mode)
            for path in [*staging.rglob("*"), staging]:
                _fsync(path)
        if self._state.is_dir():
            _fsync(self._state)
        data = json.dumps({"steps": self._steps}, indent=1).encode()
        try:
            write_private_bytes(self.journal, data)  # fsynced, then renamed: the commit point
            _fsync(self.journal.parent)
        except OSError as e:
            raise InputError(f"cannot write {self.journal}: {e.strerror}") from None
        apply_journal(self.journal, fresh=True)

    def discard(self) -> None:
        """Drop everything staged: nothing of this command reaches a file that counts."""
        for staging, _ in self._stagings:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(self._state, ignore_errors=True)


@contextlib.contextmanager
def transaction(party_dir: Path) -> Iterator[Transaction]:
    """A Transaction committed when the block ends normally, discarded otherwise.

    The caller holds `party_session` on the same directory (checked).
    """
    if not holds(party_dir):
        raise RuntimeError(f"transaction({party_dir}) needs party_session on it")
    (Path(party_dir) / JOURNAL_DIR).mkdir(mode=0o700, exist_ok=True)
    tx = Transaction(party_dir)
    try:
        yield tx
        tx.commit()
    except BaseException:
        if not tx.journal.exists():
            tx.discard()
        raise


def _writable(path: Path) -> None:
    """Open a state file for appending (or check its folder) to fail before the commit."""
    if not path.exists():
        _writable_folder(path.parent)
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from None


def _check_step(step: dict, *, staged_state: Path) -> None:
    """Everything applying `step` will need, checked before the commit point: that a file can
    replace each target (nothing of the other kind in the way), that every folder it writes
    into is writable, and that an input it moves or deletes can leave its folder."""
    if step["do"] == "move_tree":
        staging, out_dir = Path(step["from"]), Path(step["to"])
        for src in staging.rglob("*"):
            target = out_dir / src.relative_to(staging)
            _replaceable(target, src.is_dir())
            _writable_folder(target if src.is_dir() else target.parent)
        return
    target = Path(step.get("to") or step["path"])
    _replaceable(target, False)
    _writable_folder(target.parent)
    source = Path(step.get("from") or step["path"])
    if staged_state not in source.parents:
        _writable_folder(source.parent)


def _replaceable(target: Path, is_dir: bool) -> None:
    """A file can replace `target` (or a folder be made there): checked before the commit,
    so that applying it cannot stop half-way on something in the way."""
    if target.is_dir() != is_dir and target.exists():
        kind = "a folder" if target.is_dir() else "a file"
        raise InputError(f"cannot write {target}: {kind} of that name is in the way")


def _writable_folder(folder: Path) -> None:
    """A folder files can be created in and removed from (the nearest existing ancestor when
    it is still to be made)."""
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in {folder}: Permission denied")
