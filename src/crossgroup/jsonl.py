"""Append-only JSON-lines state files: every party's ledgers and audit log use this module.

One JSON object per line. Writers take an exclusive `flock` on a lock file beside the state
file (`.NAME.lock`), so two commands of one party never interleave; `locked` lets a caller
hold it across a read-check-append. Appends are O_APPEND and fsynced, the file mode 0600
from creation; a rewrite (purge, the suppression ledger's merge) replaces the whole file in a
commit (crossgroup.commit). Reading is strict: a damaged line is a SecurityError naming the
file and line, never an empty result, since a skipped line would be a replayable package or a
forgotten erasure. Reads take no lock (an auditor may read a copy in a read-only folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from crossgroup.errors import InputError, SecurityError

T = TypeVar("T")
DAMAGE = (ValueError, KeyError, TypeError)  # what a parse of a damaged record raises

_held = threading.local()  # lock path -> [fd, depth], per thread: `locked` is re-entrant


def dumps(record: Mapping[str, Any]) -> str:
    """The ledgers' line format: sorted keys, json's default separators."""
    return json.dumps(record, sort_keys=True)


def lock_path(path: Path) -> Path:
    """The lock file beside a state file: `.NAME.lock` (mode 0600; empty, except a party's
    lock, which names its holder: crossgroup.commit)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _locks() -> dict[str, list[int]]:
    if not hasattr(_held, "locks"):
        _held.locks = {}
    return _held.locks


def is_locked(path: Path) -> bool:
    """Whether this thread holds `path`'s lock (through `locked`)."""
    return os.path.abspath(lock_path(path)) in _locks()


@contextlib.contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold the exclusive lock of a state file: one writer at a time, across processes.

    Re-entrant within a thread, so a caller holding it can call `append` or `rewrite`.
    Creates the file's folder when missing. With `wait=False`, a lock held by another
    process raises BlockingIOError instead of waiting. Example:
    with locked(log): check(read(log, what="audit log")); append(log, [entry])
    """
    lock = lock_path(path)
    key = os.path.abspath(lock)
    held = _locks()
    if key in held:
        held[key][1] += 1
        try:
            yield
        finally:
            held[key][1] -= 1
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as e:
        raise InputError(f"cannot lock {Path(path)}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        held[key] = [fd, 1]
        try:
            yield
        finally:
            del held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lines(path: Path, what: str) -> Iterator[tuple[int, str, dict]]:
    """(line number, text, object) per non-blank line; nothing when the file is absent."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as e:
        detail = getattr(e, "strerror", None) or "not UTF-8 text"
        raise SecurityError(f"{what} {path} cannot be read: {detail}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise SecurityError(f"{what} {path} is damaged at line {n} (not valid JSON)") from None
        if not isinstance(record, dict):
            raise SecurityError(f"{what} {path} is damaged at line {n} (not a JSON object)")
        yield n, line, record


def read(path: Path, what: str, parse: Callable[[dict], T] | None = None) -> list[T]:
    """Every record, oldest first, through `parse` ([] when the file does not exist).

    `what` names the file in errors ("replay ledger"); `parse` raising ValueError, KeyError
    or TypeError marks its line damaged. Example: read(p, "replay ledger", lambda r:
    str(r["package_id"]))
    """
    records = []
    for n, _, record in _lines(path, what):
        try:
            records.append(parse(record) if parse else record)
        except DAMAGE:
            raise SecurityError(f"{what} {path} is damaged at line {n}") from None
    return records


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append(
    path: Path, records: Iterable[Mapping[str, Any]], *, encode: Callable[[Any], str] = dumps
) -> None:
    """Append one line per record under the lock, fsynced, so it survives a crash."""
    data = "".join(encode(r) + "\n" for r in records).encode()
    if not data:
        return
    with locked(path):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn last line stays damaged; ours stays whole
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def kept_lines(path: Path, keep: Callable[[dict], bool], what: str) -> tuple[int, list[str]]:
    """(lines dropped, the kept lines byte for byte) for the records `keep` accepts; the
    caller writes them back, e.g. in a commit (crossgroup.commit), when a line goes."""
    kept, dropped = [], 0
    for n, text, record in _lines(path, what):
        try:
            if keep(record):
                kept.append(text)
            else:
                dropped += 1
        except DAMAGE:
            raise SecurityError(f"{what} {path} is damaged at line {n}") from None
    return dropped, kept
