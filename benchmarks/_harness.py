"""Shared benchmark helpers: measure a child process from outside, and cache synthetic data.

Every figure the benchmarks report for a stage comes from outside the stage's process: wall
time from the parent's clock, CPU time and peak RSS from `os.wait4` (the child's own usage
plus that of the descendants it reaped, e.g. a phone-parsing pool, and of those it left
running, e.g. Spark's JVM, which this process adopts as their subreaper and reaps), and the
sampled PSS sum over the child's process tree (psutil, when installed) for stages that fork
workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


@dataclass(frozen=True)
class Measured:
    """What one child process cost, seen from its parent."""

    command: str  # the sub-command or script, for the record (no paths, no secrets)
    wall_s: float
    cpu_s: float  # user + system, child and reaped descendants
    peak_rss_bytes: int  # largest single process (wait4 ru_maxrss)
    tree_pss_bytes: int  # sampled sum of PSS over the live process tree (0 without psutil)
    returncode: int
    stdout: str
    stderr: str

    @property
    def peak_bytes(self) -> int:
        """The conservative peak: the larger of the two memory figures."""
        return max(self.peak_rss_bytes, self.tree_pss_bytes)

    def record(self) -> dict:
        """The figures, without the captured output."""
        out = asdict(self)
        del out["stdout"], out["stderr"]
        return {**out, "wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3)}


def crossgroup_cmd(*args: object) -> list[str]:
    """`crossgroup ARGS` run by this interpreter (the installed entry point's module)."""
    return [sys.executable, "-m", "crossgroup", *map(str, args)]


def _tree_pss(proc) -> int:
    import psutil

    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    # PSS counts a page shared by forked workers once in total, where summing RSS would
    # count it in every worker; fall back to RSS where the kernel gives no PSS.
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            info = p.memory_full_info()
            total += getattr(info, "pss", info.rss)
    return total


def _adopt_orphans() -> bool:
    """Become the subreaper of this process's descendants (Linux prctl), so a grandchild that
    outlives its parent is reparented here rather than to init, and its usage can be counted."""
    PR_SET_CHILD_SUBREAPER = 36
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def _reap_adopted(psutil, known: set[int], timeout_s: float = 60.0) -> tuple[float, int]:
    """(CPU seconds, largest RSS in bytes) of the adopted descendants, once they have exited:
    Spark's JVM exits by itself when its Python parent's pipe closes."""
    cpu, rss = 0.0, 0
    deadline = time.monotonic() + timeout_s
    for orphan in psutil.Process().children():
        if orphan.pid in known:
            continue
        while True:
            try:
                pid, _, usage = os.wait4(orphan.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                cpu, rss = cpu + usage.ru_utime + usage.ru_stime, max(rss, usage.ru_maxrss * 1024)
                break
            if time.monotonic() > deadline:
                break  # still running: left to init, its usage uncounted
            time.sleep(0.05)
    return cpu, rss


def measure(
    command: list[str],
    *,
    label: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    sample_s: float = 0.05,
    check: bool = True,
) -> Measured:
    """Run `command` as a child; wall, CPU and peak RSS measured from outside.

    Output goes to temporary files, not pipes, so a chatty child never blocks on a full pipe.
    With check=True a non-zero exit raises SystemExit with the tail of the child's stderr.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the dev extra
        psutil = None
    label = label or " ".join(command[2:4] if command[1:2] == ["-m"] else command[1:2])
    adopting = psutil is not None and _adopt_orphans()
    known = {c.pid for c in psutil.Process().children()} if adopting else set()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=cwd or ROOT, env={**os.environ, **(env or {})}
        )
        watched = psutil.Process(child.pid) if psutil else None
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if watched is not None:
                tree_peak = max(tree_peak, _tree_pss(watched))
            time.sleep(sample_s)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        adopted_cpu, adopted_rss = _reap_adopted(psutil, known) if adopting else (0.0, 0)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = Measured(
        command=label,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime + adopted_cpu,
        peak_rss_bytes=max(usage.ru_maxrss * 1024, adopted_rss),  # KiB on Linux
        tree_pss_bytes=tree_peak,
        returncode=child.returncode,
        stdout=stdout,
        stderr=stderr,
    )
    if check and child.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {child.returncode}:\n{stderr[-3000:]}")
    return result


def parquet_rows(path: Path) -> int:
    """Row count from the Parquet footer (no data read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def synth_maisons(data: Path) -> list[str]:
    """The maison ids of a synth folder, in name order."""
    return sorted(p.name for p in data.iterdir() if (p / "maison.toml").is_file())


def ensure_synth(data: Path, persons: int, maisons: int, seed: int, as_of: date) -> dict:
    """Generate the synthetic group with `crossgroup synth` unless `data` holds that one.

    The stamp records the arguments and what the generation cost; a folder with a matching
    stamp is reused as it is (generation is never part of a timed stage).
    """
    stamp = data / "bench-stamp.json"
    wanted = {"persons": persons, "maisons": maisons, "seed": seed, "as_of": as_of.isoformat()}
    if stamp.is_file():
        known = json.loads(stamp.read_text())
        if {k: known.get(k) for k in wanted} == wanted:
            return known
    data.parent.mkdir(parents=True, exist_ok=True)
    cmd = crossgroup_cmd(
        "synth",
        "--out",
        data,
        "--persons",
        persons,
        "--maisons",
        maisons,
        "--seed",
        seed,
        "--as-of",
        as_of.isoformat(),
    )
    print(f"synth: generating {persons:,} persons into {data} (not timed)", file=sys.stderr)
    run = measure(cmd, label="synth")
    ids = synth_maisons(data)
    known = {
        **wanted,
        "customers": sum(parquet_rows(data / m / "customers.parquet") for m in ids),
        "purchase_lines": sum(parquet_rows(data / m / "purchases.parquet") for m in ids),
        "synth": run.record(),
    }
    stamp.write_text(json.dumps(known, indent=2) + "\n")
    return known
