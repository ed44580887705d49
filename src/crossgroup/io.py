"""Reading inputs and writing outputs atomically.

Every user-given file is checked by `require_readable_file` before anything opens it: a
folder, FIFO or device is refused (a FIFO would block a reader for ever), and so is a file
this user cannot read, each with one line naming the file.

Every command writes into a staging folder beside its output and moves the finished files in
only when the whole command succeeded, so a failure never leaves partial output. Plaintext
that must touch disk lives in a private working directory (mode 0700) removed on exit.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import re
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import polars as pl

from crossgroup.errors import CrossgroupError, InputError

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def require_readable_file(
    path: Path | str, label: str, *, refusal: type[CrossgroupError] = InputError
) -> Path:
    """Refuse a user-given file that is missing, not a regular file, or unreadable, before
    anything reads it: reading a FIFO or a device would hang or never end, and a permission
    error deep in a reader would surface as an unclear message.

    `os.stat` follows symlinks and never blocks. A missing file is always InputError; the
    other refusals raise `refusal` (SecurityError for a private key file).
    Example: require_readable_file(Path("crm/customers.parquet"), "customers")
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{label} file not found: {path}") from None
    except OSError as e:
        raise refusal(f"cannot read {label} file {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
        raise refusal(f"{label} file {path} is {kind}, expected a file")
    try:  # a regular file: opening it cannot block (O_NONBLOCK in case it was swapped)
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as e:
        raise refusal(f"cannot read {label} file {path}: {e.strerror}") from None
    return path


def scan_table(path: Path | str, *, label: str = "input") -> pl.LazyFrame:
    """Lazily scan a Parquet or CSV file, chosen by its extension."""
    path = require_readable_file(path, label)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.scan_parquet(path)
        if suffix == ".csv":
            return pl.scan_csv(path, infer_schema=False)  # typed later, column by column
    except Exception as e:  # polars raises several types for unreadable files
        raise InputError(f"{label} file {path} cannot be read: {_first_line(e)}") from None
    raise InputError(f"{label} file {path}: expected a .parquet or .csv file")


def table_columns(lf: pl.LazyFrame, path: Path | str, *, label: str = "input") -> dict:
    """The schema of a scanned file, turning unreadable files into one clear line."""
    try:
        return dict(lf.collect_schema())
    except Exception as e:
        raise InputError(f"{label} file {path} cannot be read: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


OWNER_FILE = ".owner"  # in every working and staging folder: who made it, to tell if stale
WORKDIR_PREFIX = "crossgroup-"
STAGING_PREFIX = ".staging-"


def _process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, from /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22 of proc(5), after the command name


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _this_machine() -> dict:
    return {"host": socket.gethostname(), "boot": _boot_id()}


def _alive(owner: dict) -> bool:
    """Whether the process that made a folder may still run. A folder made on another host
    (a shared --out) is never judged from here; one from before a reboot is stale."""
    here = _this_machine()
    if owner.get("host", here["host"]) != here["host"]:
        return True
    if owner.get("boot") and here["boot"] and owner["boot"] != here["boot"]:
        return False
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    start = owner.get("start")
    return start is None or _process_start(owner["pid"]) in (None, start)


def owned_dir(parent: Path | str | None, prefix: str, **owner: str) -> Path:
    """A new mode-0700 folder named after this process, with an owner file saying who made it
    (pid, its start time, host and boot), so that a later run can tell it is stale.

    `owner` adds what the stale-folder sweep matches on (the party, a journal path). The path
    is absolute: a journal that names it must not depend on the working directory.
    """
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent.absolute()))
    os.chmod(path, 0o700)
    record = {"pid": os.getpid(), "start": _process_start(os.getpid()), **_this_machine(), **owner}
    (path / OWNER_FILE).write_text(json.dumps(record), encoding="utf-8")
    return path


def _owner(path: Path, prefix: str) -> dict | None:
    """The owner record of a folder `owned_dir` made, or None when it is not clearly ours.

    Without an owner file (a run killed right after mkdtemp), only an empty folder whose name
    is exactly PREFIX<pid>-<8 mkdtemp characters> counts: a user's "crossgroup-notes" is kept.
    """
    try:
        record = json.loads((path / OWNER_FILE).read_text(encoding="utf-8"))
        if isinstance(record, dict) and isinstance(record.get("pid"), int):
            return record
    except (OSError, ValueError):
        pass
    match = re.fullmatch(rf"{re.escape(prefix)}\w*?-?(\d+)-[a-z0-9_]{{8}}", path.name)
    try:
        empty = not any(path.iterdir())
    except OSError:
        return None
    return {"pid": int(match.group(1)), "start": None} if match and empty else None


def remove_stale(
    parent: Path | str | None, prefix: str, *, keep: Callable[[dict], bool] = lambda _: False
) -> list[Path]:
    """Remove folders under `parent` that `owned_dir` made for a process now gone.

    A crash (kill -9, power loss) skips every `finally`; the next command sweeps what it left.
    Only this user's real folders (no symlink) are considered. `keep(owner)` spares a folder,
    e.g. another party's or one a commit journal still needs.
    """
    parent = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for path in candidates:
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        owner = _owner(path, prefix)
        if owner is None or _alive(owner) or keep(owner):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def move_file(src: Path, dst: Path) -> None:
    """Move one file into place, atomically on one filesystem, by copy, fsync and rename
    across two (a subfolder of --out mounted elsewhere). Done already when `src` is gone.
    New folders on the way are created 0700, like what they will hold."""
    if not src.exists():
        return
    missing = [p for p in [dst.parent, *dst.parent.parents] if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copy2(src, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
        src.unlink()


def move_tree(staging: Path, out_dir: Path) -> None:
    """Move a staging folder's files into `out_dir`, then drop it. Safe to repeat after a
    crash: files already moved are simply no longer there."""
    if staging.is_dir():
        for src in sorted(staging.rglob("*")):
            rel = src.relative_to(staging)
            if rel != Path(OWNER_FILE) and not src.is_dir():
                move_file(src, out_dir / rel)
    shutil.rmtree(staging, ignore_errors=True)


def output_folder(out_dir: Path | str, *, mode: int | None = None) -> Path:
    """Create the output folder; with `mode` (files holding decrypted data), it must not be
    more open than those files: created 0700 (plus x where `mode` shares r), an existing
    folder open to more users refused."""
    out_dir = Path(out_dir)
    folder_mode = 0o700 if mode is None else 0o700 | (mode & 0o044) | ((mode & 0o044) >> 2)
    try:
        created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True, mode=folder_mode)
        if created:
            os.chmod(out_dir, folder_mode)  # not narrowed by the umask: `mode` is deliberate
    except FileExistsError:
        raise InputError(f"output folder {out_dir} is a file") from None
    except OSError as e:
        raise InputError(f"cannot create output folder {out_dir}: {e.strerror}") from None
    if mode is not None and out_dir.stat().st_mode & 0o077 & ~folder_mode:
        raise InputError(
            f"output folder {out_dir} is open to other users (mode "
            f"{out_dir.stat().st_mode & 0o777:o}) but will hold decrypted data: make it private "
            "(chmod 700) or choose another; import and open share files on purpose with --mode"
        )
    return out_dir


def chmod_files(folder: Path, mode: int) -> None:
    """Give every file under `folder` exactly `mode` (independent of the umask)."""
    for path in folder.rglob("*"):
        if path.is_file() and path.name != OWNER_FILE:
            os.chmod(path, mode)


def new_staging(out_dir: Path | str, *, mode: int | None = None, **owner: str) -> tuple[Path, Path]:
    """(the output folder, a new staging folder in it), after checking the folder for `mode`
    and removing staging folders a killed run left there (unless a journal still needs one).
    `owner` goes into the staging folder's owner file (the party, a journal path)."""
    out_dir = output_folder(Path(out_dir).absolute(), mode=mode)
    remove_stale(out_dir, STAGING_PREFIX, keep=journal_pending)
    return out_dir, owned_dir(out_dir, STAGING_PREFIX, **owner)


@contextlib.contextmanager
def staged_output(
    out_dir: Path | str, *, mode: int | None = None, party: str = ""
) -> Iterator[Path]:
    """Yield a staging folder; on success move its content into `out_dir`, else remove it.

    Files already in `out_dir` are replaced one by one with `os.replace`, which is atomic per
    file on the same filesystem. With `mode`, every file gets it and the folder is checked
    (`output_folder`). Staging folders a killed run left in `out_dir` are removed first.
    For commands that also change a party's state, see `crossgroup.commit`.
    """
    out_dir, staging = new_staging(out_dir, mode=mode, party=party)
    try:
        yield staging
        if mode is not None:
            chmod_files(staging, mode)
        move_tree(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def journal_pending(owner: dict) -> bool:
    """A staging folder whose commit journal still exists is finished by its party's next run."""
    journal = owner.get("journal")
    try:
        return bool(journal) and Path(journal).exists()
    except OSError:
        return True


def remove_stale_workdirs(parent: Path | str | None, party: str) -> list[Path]:
    """Remove the working folders a killed run of `party` left under `parent` (TMPDIR)."""
    return remove_stale(
        parent, WORKDIR_PREFIX, keep=lambda owner: owner.get("party", party) != party
    )


@contextlib.contextmanager
def private_workdir(
    parent: Path | str | None = None, prefix: str = WORKDIR_PREFIX, *, party: str = ""
) -> Iterator[Path]:
    """A mode-0700 working directory for plaintext, removed on exit whatever happens.

    Folders of the same party left by a killed run (owner pid gone) are removed first.
    """
    remove_stale_workdirs(parent, party)
    path = owned_dir(parent, prefix, party=party)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (mode 0600), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class BackgroundWriter:
    """Write chunks to a file from one helper thread, so encryption overlaps disk writes.

    At most `depth` chunks wait in memory, so memory stays flat whatever the file size. Chunks
    must not change after `write` (bytes, or views of bytes). `close` waits for the last write
    and re-raises any write error.
    """

    def __init__(self, sink: BinaryIO, *, depth: int = 4) -> None:
        self._sink = sink
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so a blocked producer is released
            try:
                self._sink.write(chunk)
            except BaseException as e:
                self._error = e

    def write(self, chunk: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
