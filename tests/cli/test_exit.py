"""Interpreter exit: the heap the libraries built is frozen so finalization does not walk it,
without DuckDB's bindings reporting leaks (issue 13, the fixed cost of every command)."""

from __future__ import annotations

import subprocess
import sys

_CHILD = """
import gc, sys
from crossgroup.cli import app
sys.argv = ["crossgroup", *sys.argv[1:]]
{before}
app.main()
"""


def _run(before: str, *args: str) -> subprocess.CompletedProcess:
    code = _CHILD.format(before=before)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_a_command_loading_duckdb_exits_with_a_frozen_heap_and_no_leak_report(tmp_path):
    """The heap is frozen as DuckDB is first imported, and DuckDB's own objects stay
    collectable: nanobind finds nothing leaked at exit and prints nothing."""
    # a monkeypatched command: import the engine, run one query, report the freeze count
    before = (
        "import typer\n"
        "def probe():\n"
        "    from crossgroup.engine import DuckDBEngine\n"
        "    with DuckDBEngine() as e: assert e.scalar('SELECT 42') == 42\n"
        "    print('frozen', gc.get_freeze_count())\n"
        "app.app = typer.Typer(); app.app.command('probe')(probe); app.app.command('x')(probe)"
    )
    done = _run(before, "probe")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 10_000  # the libraries loaded before DuckDB
    assert done.stderr == ""  # no nanobind "leaked types/functions" report


def test_the_freeze_hook_goes_with_the_command():
    """Run in-process, a command that loads no DuckDB leaves no hook behind: the caller's
    own later `import duckdb` does not freeze its heap."""
    before = (
        "import typer\napp.app = typer.Typer()\n"
        "app.app.command('a')(lambda: None); app.app.command('b')(lambda: None)"
    )
    code = _CHILD.format(before=before).replace(
        "app.main()",
        "try:\n    app.main()\nexcept SystemExit:\n    pass\n"
        "import duckdb\nprint('frozen', gc.get_freeze_count())",
    )
    done = subprocess.run([sys.executable, "-c", code, "a"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "0"
