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
import os
import queue
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
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


@contextlib.contextmanager
def staged_output(out_dir: Path | str) -> Iterator[Path]:
    """Yield a staging folder; on success move its content into `out_dir`, else remove it.

    Files already in `out_dir` are replaced one by one with `os.replace`, which is atomic per
    file on the same filesystem.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output folder {out_dir}: {e.strerror}") from None
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield staging
        for src in sorted(staging.rglob("*")):
            rel = src.relative_to(staging)
            dst = out_dir / rel
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def private_workdir(
    parent: Path | str | None = None, prefix: str = "crossgroup-"
) -> Iterator[Path]:
    """A mode-0700 working directory for plaintext, removed on exit whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o700)
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
