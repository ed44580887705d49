"""Docs are tested: every command explains itself with an example and is in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from crossgroup.cli.app import app

REPO = Path(__file__).resolve().parents[2]


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    found = []

    def walk(prefix: str, command) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its click)
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", root)
    return found


COMMANDS = _commands()


def test_the_cli_has_commands():
    assert {name.split()[0] for name, _ in COMMANDS} >= {"synth"}


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_with_an_example(name: str, command):
    text = command.help or ""
    assert len(text.strip()) > 40, f"`crossgroup {name}` needs a real docstring"
    assert f"crossgroup {name}" in text, f"`crossgroup {name}` help needs an example"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_is_documented_in_the_readme(name: str, command):
    assert f"crossgroup {name}" in (REPO / "README.md").read_text()


def test_help_runs(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    for name, _ in COMMANDS:
        assert name.split()[0] in result.stdout
