"""A small world for crash and race tests: the session's demo keys and maisons, copied per
test, with a fresh batch of exports in the processor's inbox and a return not yet imported.

Commands run as child processes (`python -m crossgroup`), with TMPDIR inside the world, so a
`kill -9` hits a real process and whatever it leaves on disk can be inspected.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
BATCH = "2026-r1"
HEX_ID = re.compile(r"[0-9a-f]{16,}")


@dataclass(frozen=True)
class World:
    root: Path

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def maison(self, m: str) -> Path:
        return self.root / "maisons" / m

    def maisons(self) -> list[str]:
        return sorted(p.name for p in (self.root / "maisons").iterdir())

    def export_args(self, m: str, batch: str, out: str = "outbox") -> list[str]:
        folder = self.maison(m)
        return ["export", "--maison", m, "--customers", str(folder / "customers.parquet"),
                "--purchases", str(folder / "purchases.parquet"), "--as-of", as_of(self),
                "--keys", str(self.keys / m), "--config", str(folder / "maison.toml"),
                "--batch-id", batch, "--out", str(self.root / out)]  # fmt: skip

    def process_args(self, out: str = "group") -> list[str]:
        return ["process", "--inbox", str(self.root / "inbox"), "--keys",
                str(self.keys / "processor"), "--out", str(self.root / out)]  # fmt: skip

    def import_args(self, m: str, out: str = "analyst") -> list[str]:
        package = next((self.root / "group" / "returns" / m).glob("*.cgpkg"))
        return ["import", "--maison", m, "--package", str(package), "--customers",
                str(self.maison(m) / "customers.parquet"), "--keys", str(self.keys / m),
                "--out", str(self.root / out)]  # fmt: skip

    def start(self, args: list[str]) -> subprocess.Popen:
        self.tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(self.tmp), "PYTHONPATH": str(SRC)}
        env.pop("CROSSGROUP_DEBUG", None)
        return subprocess.Popen(
            [sys.executable, "-m", "crossgroup", *args], env=env, cwd=self.root,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def run(self, args: list[str], timeout: float = 300) -> tuple[int, str, float]:
        started = time.perf_counter()
        child = self.start(args)
        _, err = child.communicate(timeout=timeout)
        return child.returncode, err, time.perf_counter() - started

    def kill_after(self, args: list[str], seconds: float) -> int | None:
        """Start a command and SIGKILL it after `seconds` (None: it finished before)."""
        child = self.start(args)
        try:
            child.wait(timeout=seconds)
            child.communicate()
            return None
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.communicate()
            return child.returncode

    def kill_on_line(self, args: list[str], line: str, delay: float) -> dict:
        """Start a command and SIGKILL it `delay` seconds after it prints `line` on stderr (a
        stage starting); the processes it had started by then (a Spark JVM, PySpark's Python
        workers), each with its name."""
        import psutil

        child = self.start(args)
        assert child.stderr is not None
        for printed in child.stderr:
            if printed.strip() == line:
                break
        else:
            raise AssertionError(f"{line!r} never printed: {child.wait()}")
        time.sleep(delay)
        started = {}
        for p in psutil.Process(child.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):  # one that just ended
                started[p] = p.name()
        child.send_signal(signal.SIGKILL)
        child.wait()  # not its pipes' end: a surviving JVM would hold them open
        child.stdout.close()
        child.stderr.close()
        return started

    def live_processes(self, started: dict | None = None) -> list[str]:
        """Processes still running (zombies aside) among `started` and among all whose
        command line names a path in this world (a JVM names its working directory)."""
        import psutil

        def running(p: psutil.Process) -> bool:
            try:
                return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        found = [f"{p.pid} {name}" for p, name in (started or {}).items() if running(p)]
        for p in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if str(self.root) in cmdline and running(p):
                found.append(f"{p.pid} {cmdline[:200]}")
        return found


def as_of(world: World) -> str:
    return json.loads((world.root / "demo-summary.json").read_text())["as_of"]


def copy_world(template: Path, dest: Path) -> World:
    shutil.copytree(template, dest, symlinks=True)
    return World(dest)


def make_template(demo: Path, dest: Path) -> Path:
    """Demo keys and maison inputs, plus a new batch's exports and its processed returns."""
    dest.mkdir(parents=True)
    shutil.copytree(demo / "keys", dest / "keys")
    shutil.copy(demo / "demo-summary.json", dest)
    for folder in sorted((demo / "maisons").iterdir()):
        target = dest / "maisons" / folder.name
        target.mkdir(parents=True)
        for name in ("customers.parquet", "purchases.parquet", "maison.toml"):
            shutil.copy(folder / name, target / name)
    world = World(dest)
    for m in world.maisons():
        code, err, _ = world.run(world.export_args(m, BATCH, out="inbox"))
        assert code == 0, err
    return dest


def processed_template(template: Path, dest: Path) -> Path:
    """The template after a clean `process`: returns to import, inbox emptied."""
    world = copy_world(template, dest)
    code, err, _ = world.run(world.process_args())
    assert code == 0, err
    return dest


def disk_state(world: World) -> dict:
    """What a run leaves, comparable across runs: file paths (ids masked), ledger line
    counts and audit commands; random bytes (nonces, ids, times) are not compared."""
    files, ledgers = [], {}
    for path in sorted(world.root.rglob("*")):
        rel = str(path.relative_to(world.root))
        if path.is_dir() or path.name.endswith(".lock") or rel.startswith("tmp/"):
            continue
        files.append(HEX_ID.sub("<id>", rel))
        if path.suffix == ".jsonl":
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            ledgers[rel] = [x.get("command", "line") for x in lines]
    return {"files": sorted(files), "ledgers": ledgers}


def leftovers(world: World) -> list[str]:
    """Staging folders, unapplied journals and working folders: what no run may leave."""
    found = [str(p) for p in world.root.rglob(".staging-*")]
    found += [str(p) for p in world.root.rglob(".journal/*")]
    if world.tmp.is_dir():
        found += [str(p) for p in world.tmp.iterdir()]
    return found


def readable_by_others(world: World, since: float) -> list[str]:
    """Files written since `since` that another user could read, and folders crossgroup made
    (working, staging, journal) that are not 0700: plaintext is private from its first byte."""
    found = []
    for path in world.root.rglob("*"):
        if path.is_symlink() or path.name.endswith(".lock"):
            continue
        st = path.stat()
        mode = st.st_mode & 0o777
        ours = path.name.startswith((".staging-", "crossgroup-", ".journal"))
        if (path.is_file() and st.st_mtime >= since and mode & 0o077) or (
            path.is_dir() and ours and mode != 0o700
        ):
            found.append(f"{path.relative_to(world.root)} {mode:o}")
    return found
