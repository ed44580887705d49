"""Shared fixtures: the repository's pipelines, an in-process CLI runner and how to meet file
modes as root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PIPELINES = REPO / "pipelines"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run `crossgroup ARGS...` in-process through the real entry point, exit code included."""
    from crossgroup.cli.app import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["crossgroup", *map(str, args)])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def pipelines() -> Path:
    return PIPELINES


# -- file modes as root ------------------------------------------------------------------------

# util-linux `setpriv` (Debian package util-linux, in every base image) runs a command without
# the two capabilities that let root ignore file modes; root is then refused like any owner.
DAC_CAPS = "-dac_override,-dac_read_search"
SETPRIV_ARGS = (f"--bounding-set={DAC_CAPS}", f"--inh-caps={DAC_CAPS}")

_DENIED_PROBE = (
    "import sys\n"
    "try:\n"
    "    open(sys.argv[1], 'rb').close()\n"
    "except PermissionError:\n"
    "    sys.exit(0)\n"
    "sys.exit(1)\n"
)


@pytest.fixture(scope="session")
def permissions_enforced(tmp_path_factory) -> list[str] | None:
    """How to run a command that must meet a permission denied on a mode-000 file, found by
    trying (not assumed from the uid): None when this process is refused already (run it
    in-process); else a `setpriv` prefix for a child `[*prefix, sys.executable, ...]` that
    drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (root in CI); else the test is skipped,
    naming what is missing."""
    probe = tmp_path_factory.mktemp("permissions") / "mode-000"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        probe.read_bytes()
    except PermissionError:
        return None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "permissions are not enforced for this user (root) and setpriv (util-linux) "
            "is not on PATH to drop CAP_DAC_OVERRIDE"
        )
    prefix = [setpriv, *SETPRIV_ARGS]
    child = subprocess.run(
        [*prefix, sys.executable, "-c", _DENIED_PROBE, str(probe)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if child.returncode != 0:
        pytest.skip(
            "permissions are not enforced for this user (root) and setpriv could not drop "
            f"CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH: {child.stderr.strip() or 'file still read'}"
        )
    return prefix
