"""`crossgroup process` in a child process, for what an in-process run cannot show: the whole
console (a Spark driver JVM writes to the file descriptors, not to `sys.stderr`) and every
folder the child may write to (a private TMPDIR and working directory; /tmp read-only where a
mount namespace can be had, so that a write there fails the run instead of passing unseen).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# The JDK prints this itself when Spark's launcher adds the module, before any logging
# configuration can apply; it names a JDK module and nothing of the data.
JDK_NOTICE = "WARNING: Using incubator modules: jdk.incubator.vector"
PROGRESS = re.compile(r"\w+ (\.\.\.|done in \d+\.\d\d s)")

# /tmp read-only for the child and its JVM, `$0` (the run's folder, maybe inside /tmp) writable
_READONLY_TMP = (
    'mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && mount --bind "$0" "$0" && '
    'mount -o remount,bind,rw "$0" && exec "$@"'
)
_PROBE = (
    "import os, sys; sys.exit(os.access('/tmp', os.W_OK) or not os.access(sys.argv[1], os.W_OK))"
)


def readonly_tmp_prefix(writable: Path) -> list[str] | None:
    """A command prefix that runs a child in its own mount namespace with /tmp read-only and
    `writable` writable (util-linux `unshare`, as root, as in CI); None where this machine
    does not allow it, found by trying."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--mount", "--propagation", "private", "sh", "-c", _READONLY_TMP]
    prefix.append(str(writable))
    try:
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", _PROBE, str(writable)],
            capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


def run_process(args: list[str], root: Path) -> tuple[subprocess.CompletedProcess, bool]:
    """`python -m crossgroup ARGS` with TMPDIR root/tmp, working in root/cwd (both made empty
    here), and /tmp read-only where this machine allows it (the bool says whether it did)."""
    for name in ("tmp", "cwd"):
        (root / name).mkdir()
    prefix = readonly_tmp_prefix(root)
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "PYTHONPATH": str(SRC)}
    env.pop("CROSSGROUP_DEBUG", None)
    child = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "crossgroup", *map(str, args)],
        cwd=root / "cwd", env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return child, prefix is not None


def foreign_lines(stderr: str) -> list[str]:
    """stderr lines that are neither crossgroup's stage progress nor the JDK's notice."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return [x for x in lines if not PROGRESS.fullmatch(x) and x != JDK_NOTICE]
