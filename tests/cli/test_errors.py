"""The error contract: one line on stderr, no traceback, exit 2 for bad input, 3 for security."""

import errno

import pytest
import typer

from crossgroup.cli import app as app_module
from crossgroup.engine import EngineError
from crossgroup.errors import CheckFailed, InputError, PrivacyCheckError, SecurityError


@pytest.fixture
def failing_command(monkeypatch):
    def install(error: Exception):
        def boom() -> None:
            """Fail on purpose (test only). Example: crossgroup boom"""
            raise error

        test_app = typer.Typer(pretty_exceptions_enable=False)
        test_app.command("boom")(boom)
        test_app.command("noop")(lambda: None)
        monkeypatch.setattr(app_module, "app", test_app)

    return install


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("customers file x.parquet: missing column customer_id"), 2),
        (SecurityError("package p.cgpkg: bad signature"), 3),
    ],
)
def test_errors_become_one_line_and_an_exit_code(failing_command, run_cli, error, code):
    failing_command(error)
    result = run_cli("boom")
    assert result.exit_code == code
    lines = result.stderr.strip().splitlines()
    assert lines == [f"crossgroup: error: {error}"]
    assert "Traceback" not in result.stderr + result.stdout


def test_unexpected_errors_do_not_print_values(failing_command, run_cli, monkeypatch):
    monkeypatch.delenv("CROSSGROUP_DEBUG", raising=False)
    failing_command(ValueError("alice@example.com"))
    result = run_cli("boom")
    assert result.exit_code == 1
    assert "alice@example.com" not in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(run_cli):
    assert run_cli("no-such-command").exit_code == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (EngineError("step 'matches' failed in DuckDB: Conversion Error"), 2),
        (CheckFailed("link-quality targets missed"), 1),
        (PrivacyCheckError("release refused by the privacy checks"), 3),
    ],
)
def test_every_project_error_has_its_documented_exit_code(failing_command, run_cli, error, code):
    failing_command(error)
    result = run_cli("boom")
    assert result.exit_code == code
    assert result.stderr.strip().splitlines() == [f"crossgroup: error: {error}"]


def test_details_are_indented_lines_under_the_one_line_message(failing_command, run_cli):
    failing_command(SecurityError("audit log a.jsonl is NOT intact: 2 problem(s)",
                                  details=["line 2: edited", "line 3: deleted"]))  # fmt: skip
    result = run_cli("boom")
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        "crossgroup: error: audit log a.jsonl is NOT intact: 2 problem(s)",
        "  line 2: edited",
        "  line 3: deleted",
    ]


def test_usage_errors_are_one_line_pointing_at_help(run_cli, tmp_path):
    result = run_cli("synth", "--out", tmp_path / "s", "--no-such-option")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("crossgroup: error: No such option: --no-such-option")
    assert line.endswith("see crossgroup synth --help")


def test_a_group_without_a_subcommand_shows_its_help_and_exits_2(run_cli):
    result = run_cli("keys")
    assert result.exit_code == 2
    assert "init" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/x/y.cgpkg"),
         "cannot write /x/y.cgpkg: No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied", "out/report.html"),
         "cannot access out/report.html: Permission denied"),
        (OSError(errno.EROFS, "Read-only file system", "out/.staging/a", None, "out/a"),
         "cannot write out/.staging/a -> out/a: Read-only file system"),
        (OSError(errno.ENOSPC, "No space left on device"),
         "cannot write a file: No space left on device"),
    ],
)  # fmt: skip
def test_an_os_error_is_exit_2_naming_the_file(failing_command, run_cli, monkeypatch, error, line):
    monkeypatch.delenv("CROSSGROUP_DEBUG", raising=False)
    failing_command(error)
    result = run_cli("boom")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"crossgroup: error: {line}"]


def test_debug_shows_the_os_error_itself(failing_command, run_cli, monkeypatch):
    monkeypatch.setenv("CROSSGROUP_DEBUG", "1")
    failing_command(OSError(errno.ENOSPC, "No space left on device", "/x/y"))
    with pytest.raises(OSError, match="No space left"):
        run_cli("boom")


def test_error_lines_cannot_be_reordered_or_split_by_what_they_quote(failing_command, run_cli):
    failing_command(InputError("customers file a\u202eb\nc.parquet not found"))
    result = run_cli("boom")
    assert result.stderr.splitlines() == [
        "crossgroup: error: customers file a\ufffdb c.parquet not found"
    ]
