"""The error contract: one line on stderr, no traceback, exit 2 for bad input, 3 for security."""

import pytest
import typer

from crossgroup.cli import app as app_module
from crossgroup.errors import InputError, SecurityError


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
