"""The `crossgroup` Typer application and its error contract.

Exit codes (DESIGN §7): 0 success, 2 bad input or configuration, 3 security refusal; 1 for a
check that did not pass (`evaluate --check`) and for an unexpected error. Every
CrossgroupError becomes one line on stderr (plus its indented details, if any), never a
traceback; so does a usage error (unknown or missing option, a value Typer cannot convert).
An operating-system error no command foresaw (disk full, a read-only or forbidden output
folder) is exit 2, one line naming the file and the reason. An unexpected error also prints
one line (exit 1); set CROSSGROUP_DEBUG=1 to see the traceback of either. Messages pass
through `text.printable`, so a file name or label quoted in one cannot break the line or
reorder it on screen.
"""

from __future__ import annotations

import atexit
import errno
import gc
import importlib.abc
import os
import sys
from collections.abc import Iterable

import typer

# Typer (pinned in pyproject.toml) vendors Click; these are the errors it raises while parsing.
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from crossgroup.errors import CrossgroupError
from crossgroup.text import printable

app = typer.Typer(
    name="crossgroup",
    help=(
        "Pseudonymized cross-brand purchase analytics for a luxury group.\n\n"
        "Maisons export consented, pseudonymized purchase histories; the group processor "
        "returns to each maison only generalized segments about its own customers.\n\n"
        "Start with:  crossgroup demo --out demo-output"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _register() -> None:
    # Each role lives in its own module; registration order is the order of --help.
    from crossgroup.cli import keys, open_

    app.add_typer(keys.keys_app, name="keys")

    from crossgroup.cli import synth

    app.command("synth")(synth.synth)

    from crossgroup.cli import export

    app.command("export")(export.export)

    from crossgroup.cli import process

    app.command("process")(process.process)

    from crossgroup.cli import erase, purge

    app.command("erase")(erase.erase)
    app.command("purge")(purge.purge)

    from crossgroup.cli import import_

    app.command("import")(import_.import_)

    app.command("open")(open_.open_)

    from crossgroup.cli import access, audit, register

    app.command("access")(access.access)
    app.command("register")(register.register)
    app.add_typer(audit.audit_app, name="audit")

    from crossgroup.cli import demo

    app.command("demo")(demo.demo)

    from crossgroup.cli import evaluate

    app.command("evaluate")(evaluate.evaluate)


_register()


def fail(message: str, exit_code: int, details: Iterable[str] = ()) -> None:
    """Print one error line (and any indented details) to stderr and exit."""
    typer.echo(f"crossgroup: error: {printable(message)}", err=True)
    for line in details:
        typer.echo(f"  {printable(line)}", err=True)
    raise SystemExit(exit_code)


# errno values that only a write can cause; any other OSError may come from a read as well
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})


def os_error_line(error: OSError) -> str:
    """An OSError as one line naming the file and the reason, e.g.
    "cannot write out/x.cgpkg: No space left on device"."""
    reason = error.strerror or type(error).__name__
    verb = "write" if error.errno in _WRITE_ERRNOS else "access"
    if error.filename is None:
        return f"cannot {verb} a file: {reason}"
    target = _file_name(error.filename)
    if error.filename2 is not None:  # a rename or link: both ends
        target += f" -> {_file_name(error.filename2)}"
    return f"cannot {verb} {target}: {reason}"


def _file_name(name: object) -> str:
    return os.fsdecode(name) if isinstance(name, str | bytes | os.PathLike) else str(name)


def usage_line(error: ClickException) -> str:
    """A Click usage error as one line that points at the command's --help."""
    message = " ".join(error.format_message().split()).rstrip(".")
    ctx = getattr(error, "ctx", None)
    return f"{message}; see {ctx.command_path} --help" if ctx is not None else message


def _freeze_heap() -> None:
    """Interpreter exit took 0.2-0.3 s (up to 1 s with numba loaded): finalization runs full
    garbage collections over every object the libraries created (~140k after an import) while
    it tears the modules down. Frozen at exit, those objects are out of the collector's reach
    and are freed with the process. Every command closes and fsyncs its files itself
    (commit.py), so no cleanup waits on that final collection.

    Not once DuckDB is loaded: its nanobind bindings check at exit that the collector freed
    their functions and types, and print a "leaked" report on stderr when it did not. The
    heap is then frozen just before DuckDB loads (`_FreezeBeforeDuckDB`) instead, so exit
    only collects what was created after it.
    """
    if "duckdb" not in sys.modules:
        gc.freeze()


class _FreezeBeforeDuckDB(importlib.abc.MetaPathFinder):
    """Freezes the heap as `duckdb` is first imported; finds nothing itself. Asked only until
    the import succeeds (then `duckdb` is in sys.modules), so it freezes once."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "duckdb":
            gc.freeze()


def _dispatch() -> object:
    """Run the command; every error becomes one line and its exit code (the contract above)."""
    try:
        # standalone_mode=False: Typer raises usage errors instead of printing its usage box
        return app(prog_name="crossgroup", standalone_mode=False)
    except CrossgroupError as e:
        fail(str(e), e.exit_code, e.details)
    except NoArgsIsHelpError:
        raise SystemExit(2) from None  # the help was printed, as for a bare `crossgroup`
    except ClickException as e:
        fail(usage_line(e), e.exit_code)
    except KeyboardInterrupt:  # Typer turns one during a command into exit code 130 itself
        fail("interrupted", 130)
    except typer.Abort:
        fail("aborted", 1)
    except OSError as e:  # disk full, read-only or forbidden folder: the user can fix it
        if os.environ.get("CROSSGROUP_DEBUG"):
            raise
        fail(os_error_line(e), 2)
    except Exception as e:
        if os.environ.get("CROSSGROUP_DEBUG"):
            raise
        fail(
            f"unexpected {type(e).__name__}; rerun with CROSSGROUP_DEBUG=1 for details",
            1,
        )


def main() -> None:
    # Plaintext (working tables, DuckDB spill files, decrypted outputs) is owner-only from its
    # first byte; a file meant for others is opened up explicitly (import/open --mode).
    os.umask(0o077)
    # Exit hook, not called here: in-process callers (the tests) keep a collectable heap.
    atexit.unregister(_freeze_heap)
    atexit.register(_freeze_heap)
    # The heap is frozen as the command first imports DuckDB. The hook lasts only as long as
    # the command: a caller running commands in-process (the tests) is frozen at most once,
    # by a command that is the first to load DuckDB, never later by its own imports.
    hook = _FreezeBeforeDuckDB()
    if "duckdb" not in sys.modules:
        sys.meta_path.insert(0, hook)
    try:
        code = _dispatch()
    finally:
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)
    # --help and typer.Exit return their exit code; a command returns None
    sys.exit(code if isinstance(code, int) else 0)
