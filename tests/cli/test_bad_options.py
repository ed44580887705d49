"""Every command refuses a bad option with one line on stderr, its exit code, and no output.

The commands are discovered from the Typer app, so a new command without a case here fails
`test_every_command_has_bad_option_cases`. Exit codes are DESIGN §7: 2 for bad input, 3 for a
security refusal (here: another party's keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

from crossgroup.cli.app import app

UNSET = "CROSSGROUP_TEST_UNSET_PASSPHRASE"


def _commands() -> list[str]:
    found = []

    def walk(prefix: str, command) -> None:
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append(prefix)

    walk("", typer.main.get_command(app))
    return found


@dataclass(frozen=True)
class Case:
    """`crossgroup COMMAND ARGS...`; {keys}, {tmp} and {out} are filled in per test."""

    command: str
    args: tuple[str, ...]
    code: int = 2
    needle: str = ""  # a word the error line must contain (usually the option's name)
    out_exists: bool = False  # the command needs an existing (empty) --out folder


def case(command: str, *args: str, code: int = 2, needle: str = "", out_exists=False) -> Case:
    return Case(command, args, code, needle, out_exists)


# fmt: off
EXPORT = ("--maison", "aurelle", "--customers", "{tmp}/customers.csv",
          "--purchases", "{tmp}/purchases.csv", "--as-of", "2026-09-30",
          "--keys", "{keys}/aurelle", "--out", "{out}")
ERASE = ("--maison", "aurelle", "--customers", "{tmp}/customers.csv", "--ids", "{tmp}/ids.txt",
         "--keys", "{keys}/aurelle", "--out", "{out}")
IMPORT = ("--maison", "aurelle", "--package", "{tmp}/return.cgpkg",
          "--customers", "{tmp}/customers.csv", "--keys", "{keys}/aurelle",
          "--out", "{out}")
ACCESS = ("--maison", "aurelle", "--customer-id", "AU-000001",
          "--customers", "{tmp}/customers.csv", "--purchases", "{tmp}/purchases.csv",
          "--as-of", "2026-09-30", "--keys", "{keys}/aurelle", "--out", "{out}")
PROCESS = ("--inbox", "{tmp}/inbox", "--keys", "{keys}/processor", "--out", "{out}")
OPEN = ("--package", "{tmp}/return.cgpkg", "--keys", "{keys}/processor", "--out", "{out}")
EVALUATE = ("--synth", "{tmp}", "--exports", "{tmp}/inbox", "--keys", "{keys}",
            "--out", "{out}/eval.json")
# fmt: on


def replace(args: tuple[str, ...], option: str, value: str) -> tuple[str, ...]:
    i = args.index(option)
    return (*args[: i + 1], value, *args[i + 2 :])


def drop(args: tuple[str, ...], option: str) -> tuple[str, ...]:
    i = args.index(option)
    return (*args[:i], *args[i + 2 :])


# fmt: off
CASES = [
    case("keys init", "--dir", "{out}", "--maisons", "Aurelle!", needle="--maisons"),
    case("keys init", "--dir", "{out}", "--maisons", "aurelle", "--passphrase-env", UNSET,
         needle="--passphrase-env"),
    case("keys rotate", "--dir", "{tmp}/no-keys", needle="no-keys"),
    case("keys rotate", "--dir", "{keys}", "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("keys show", "--keys", "{tmp}/no-keys", needle="no-keys"),
    case("synth", "--out", "{out}", "--as-of", "2026-02-30", needle="--as-of"),
    case("synth", "--out", "{out}", "--maisons", "many", needle="--maisons"),
    case("export", *replace(EXPORT, "--as-of", "30/09/2026"), needle="--as-of"),
    case("export", *replace(EXPORT, "--maison", "Aurelle"), needle="--maison"),
    case("export", *EXPORT, "--batch-id", "../2026-09", needle="--batch-id"),
    case("export", *EXPORT, "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("export", *replace(EXPORT, "--customers", "{tmp}/missing.csv"), needle="missing.csv"),
    case("export", *replace(EXPORT, "--keys", "{tmp}/no-keys"), needle="no-keys"),
    case("export", *replace(EXPORT, "--keys", "{keys}/kessler"), code=3, needle="kessler"),
    case("export", *drop(EXPORT, "--as-of"), needle="--as-of"),
    case("process", *replace(PROCESS, "--inbox", "{tmp}/no-inbox"), needle="--inbox"),
    case("process", *PROCESS, "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("process", *PROCESS, "--engine", "sparky", needle="--engine 'sparky'"),
    case("process", *replace(PROCESS, "--keys", "{keys}/aurelle"), code=3,
         needle="not the processor"),
    case("erase", *ERASE, "--batch-id", "a/b", needle="--batch-id"),
    case("erase", *replace(ERASE, "--maison", "au relle"), needle="--maison"),
    case("erase", *ERASE, "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("erase", *replace(ERASE, "--ids", "{tmp}/missing-ids.txt"), needle="missing-ids.txt"),
    case("purge", "--out", "{out}", "--keys", "{keys}/processor", "--now", "tomorrow",
         needle="--now", out_exists=True),
    case("purge", "--out", "{tmp}/no-out", "--keys", "{keys}/processor", needle="no-out"),
    case("purge", "--out", "{out}", "--keys", "{keys}/aurelle", code=3,
         needle="not the processor", out_exists=True),
    case("import", *replace(IMPORT, "--package", "{tmp}/missing.cgpkg"), needle="missing.cgpkg"),
    case("import", *replace(IMPORT, "--maison", "-aurelle"), needle="--maison"),
    case("import", *IMPORT, "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("import", *replace(IMPORT, "--keys", "{keys}/kessler"), code=3, needle="kessler"),
    case("open", *replace(OPEN, "--package", "{tmp}/missing.cgpkg"), needle="missing.cgpkg"),
    case("open", *OPEN, "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("access", *replace(ACCESS, "--as-of", "yesterday"), needle="--as-of"),
    case("access", *ACCESS, "--request-id", "DSAR 17", needle="--request-id"),
    case("access", *replace(ACCESS, "--maison", "AU"), needle="--maison"),
    case("access", *replace(ACCESS, "--customer-id", " "), needle="--customer-id"),
    case("access", *ACCESS, "--returns", "{tmp}/no-returns", needle="--returns"),
    case("access", *ACCESS, "--passphrase-env", UNSET, needle="--passphrase-env"),
    case("register", "--pipeline", "{tmp}/missing.toml", "--out", "{out}", needle="missing.toml"),
    case("register", "--registry", "{tmp}/no-registry.toml", "--out", "{out}",
         needle="no-registry.toml"),
    case("audit verify", "--log", "{tmp}/missing.jsonl", needle="missing.jsonl"),
    case("audit verify", "--registry", "{tmp}/r.toml", needle="--log"),
    case("demo", "--out", "{out}", "--persons", "5", needle="--persons"),
    case("demo", "--out", "{out}", "--seed", "seven", needle="--seed"),
    case("evaluate", *EVALUATE, needle="truth"),
    case("evaluate", *replace(EVALUATE, "--keys", "{tmp}/no-keys"), "--pipeline",
         "{tmp}/missing.toml", needle="missing.toml"),
    case("evaluate", *EVALUATE, "--engine", "sparky", needle="--engine 'sparky'"),
]
# fmt: on


def test_every_command_has_bad_option_cases():
    commands = _commands()
    assert len(commands) >= 15
    assert {c.command for c in CASES} == set(commands)


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    from crossgroup.crypto.keys import init_keys

    root = tmp_path_factory.mktemp("bad-options") / "keys"
    init_keys(root, ["aurelle", "kessler"])
    return root


@pytest.fixture
def inputs(tmp_path) -> Path:
    """Small valid CRM files, id list and stand-ins for a package and a registry (files are
    checked while options are parsed), so each case fails on its bad option alone."""
    (tmp_path / "customers.csv").write_text("customer_id,email\nAU-000001,a@example.com\n")
    (tmp_path / "purchases.csv").write_text("customer_id,order_id\nAU-000001,o1\n")
    (tmp_path / "ids.txt").write_text("AU-000001\n")
    (tmp_path / "return.cgpkg").write_bytes(b"not read: another option is bad")
    (tmp_path / "r.toml").write_text("")
    (tmp_path / "inbox").mkdir()
    return tmp_path


@pytest.mark.parametrize("bad", CASES, ids=[f"{c.command}-{i}" for i, c in enumerate(CASES)])
def test_a_bad_option_is_one_line_an_exit_code_and_no_output(
    run_cli, monkeypatch, keydir, inputs, bad: Case
):
    monkeypatch.delenv(UNSET, raising=False)
    monkeypatch.delenv("CROSSGROUP_DEBUG", raising=False)
    out = inputs / "out"
    if bad.out_exists:
        out.mkdir()
    fill = {"keys": str(keydir), "tmp": str(inputs), "out": str(out)}
    args = [a.format(**fill) for a in bad.args]
    before = state_files(keydir)

    result = run_cli(*bad.command.split(), *args)

    lines = result.stderr.strip().splitlines()
    assert result.exit_code == bad.code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("crossgroup: error: "), result.stderr
    assert bad.needle in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists() or not any(out.iterdir())
    assert state_files(keydir) == before  # no key, ledger or log touched


def state_files(keydir: Path) -> dict[str, bytes]:
    """Every key, ledger and log file with its content; lock files are not state."""
    return {
        str(p.relative_to(keydir)): p.read_bytes()
        for p in sorted(keydir.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }
