"""Bad inputs from a clumsy operator or an attacker (issue 12): each is refused with one line
on stderr, exit 2 (exit 3 for a private key file that cannot be read), no traceback, nothing
in --out and no key, ledger or audit file touched.

Rows that need a permission denied run in-process where file modes are enforced, and as root
(CI) in a child without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (`setpriv`, see the
`permissions_enforced` fixture); rows with a FIFO run in a subprocess with a timeout, so a
regression hangs no test run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from crossgroup.text import REPLACEMENT

REPO = Path(__file__).resolve().parents[2]
BOX_CHARACTERS = ("╭", "│", "╰")
CHILD_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def keys_template(tmp_path_factory) -> Path:
    from crossgroup.crypto.keys import init_keys

    root = tmp_path_factory.mktemp("bad-inputs") / "keys"
    init_keys(root, ["aurelle", "kessler"])
    return root


def _crm(folder: Path, categories: list[str] | None = None) -> None:
    """Small valid Aurelle extracts: each case fails on its one bad input alone."""
    n = 8
    ids = [f"AU-{i:06d}" for i in range(n)]
    pl.DataFrame(
        {
            "customer_id": ids,
            "email": [f"c{i}@example.org" for i in range(n)],
            "phone": [None] * n,
            "country": ["FR"] * n,
            "cross_group_consent": [True] * n,
            "consent_updated_at": [datetime(2024, 1, 1, 9, 30)] * n,
            "restricted": [False] * n,
        },
        schema_overrides={"phone": pl.String},
    ).write_parquet(folder / "customers.parquet")
    labels = categories or ["Bagues"]
    rows = [(cid, label) for cid in ids for label in labels]
    pl.DataFrame(
        {
            "customer_id": [cid for cid, _ in rows],
            "order_id": [f"o{i}" for i in range(len(rows))],
            "purchased_at": [datetime(2026, 3, 5, 12)] * len(rows),
            "category": [label for _, label in rows],
            "amount": [100.0] * len(rows),
            "currency": ["EUR"] * len(rows),
            "channel": ["boutique"] * len(rows),
        }
    ).write_parquet(folder / "purchases.parquet")


@pytest.fixture
def world(tmp_path, keys_template):
    """A private copy of the keys (state files live there) and the CRM extracts."""
    shutil.copytree(keys_template, tmp_path / "keys")
    _crm(tmp_path)
    (tmp_path / "ids.txt").write_text("AU-000001\n")
    shutil.copy(REPO / "pipelines" / "maisons" / "aurelle.toml", tmp_path / "aurelle.toml")
    shutil.copy(REPO / "pipelines" / "fx.toml", tmp_path / "fx.toml")
    (tmp_path / "return.cgpkg").write_bytes(b"never read: another input is bad")
    yield tmp_path
    for path in tmp_path.rglob("*"):  # give back what `deny` took, so tmp can be removed
        if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) in (0, 0o555):
            path.chmod(0o700 if path.is_dir() else 0o600)


# -- how each row spoils one input ------------------------------------------------------------


@dataclass(frozen=True)
class Denied:
    """A `prepare` that takes a permission away: its row runs where file modes are enforced
    (in-process, or as root in a child without the capabilities that bypass them)."""

    prepare: Callable[[Path], None]

    def __call__(self, root: Path) -> None:
        self.prepare(root)


def deny(relative: str) -> Denied:
    """Make a file unreadable (mode 000)."""
    return Denied(lambda root: (root / relative).chmod(0))


def read_only_folder(relative: str) -> Denied:
    def prepare(root: Path) -> None:
        folder = root / relative
        folder.mkdir()
        folder.chmod(0o555)

    return Denied(prepare)


def fifo(relative: str) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        (root / relative).unlink(missing_ok=True)
        os.mkfifo(root / relative)

    return prepare


def folder(relative: str) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        path = root / relative
        if path.is_file():
            path.unlink()
        path.mkdir()

    return prepare


def regular_file(relative: str) -> Callable[[Path], None]:
    return lambda root: (root / relative).write_text("a file, not a folder\n")


def nothing(root: Path) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """`crossgroup ARGS...` after `prepare` spoiled one input; {w} is the world folder."""

    name: str
    args: tuple[str, ...]
    prepare: Callable[[Path], None]
    code: int
    needle: str
    subprocess: bool = False  # a FIFO: guarded by a timeout in a child process


# fmt: off
EXPORT = ("export", "--maison", "aurelle", "--customers", "{w}/customers.parquet",
          "--purchases", "{w}/purchases.parquet", "--as-of", "2026-09-30",
          "--keys", "{w}/keys/aurelle", "--out", "{w}/out")
ACCESS = ("access", "--maison", "aurelle", "--customer-id", "AU-000001",
          "--customers", "{w}/customers.parquet", "--purchases", "{w}/purchases.parquet",
          "--as-of", "2026-09-30", "--keys", "{w}/keys/aurelle", "--out", "{w}/out")
IMPORT = ("import", "--maison", "aurelle", "--package", "{w}/return.cgpkg",
          "--customers", "{w}/customers.parquet", "--keys", "{w}/keys/aurelle", "--out", "{w}/out")
OPEN = ("open", "--package", "{w}/return.cgpkg", "--keys", "{w}/keys/aurelle", "--out", "{w}/out")
ERASE = ("erase", "--maison", "aurelle", "--customers", "{w}/customers.parquet",
         "--ids", "{w}/ids.txt", "--keys", "{w}/keys/aurelle", "--out", "{w}/out")
# fmt: on


def with_(args: tuple[str, ...], option: str, value: str) -> tuple[str, ...]:
    i = args.index(option)
    return (*args[: i + 1], value, *args[i + 2 :])


# fmt: off
CASES = [
    # --as-of whose window (or look-back) falls before year 1, or past the calendar
    Case("export as-of 0001-01-01", with_(EXPORT, "--as-of", "0001-01-01"), nothing, 2,
         "--as-of 0001-01-01 is out of range"),
    Case("export as-of 0003-12-31", with_(EXPORT, "--as-of", "0003-12-31"), nothing, 2,
         "out of range"),
    Case("export as-of 9999-12-31", with_(EXPORT, "--as-of", "9999-12-31"), nothing, 2,
         "out of range"),
    Case("access as-of 0001-01-01", with_(ACCESS, "--as-of", "0001-01-01"), nothing, 2,
         "--as-of"),
    Case("synth as-of 0003-01-01", ("synth", "--out", "{w}/out", "--as-of", "0003-01-01"),
         nothing, 2, "--as-of"),
    Case("purge now 0001-01-01",
         ("purge", "--out", "{w}", "--keys", "{w}/keys/processor", "--now", "0001-01-01"),
         nothing, 2, "--now"),
    # unreadable inputs: exit 2 naming the file and the reason
    Case("unreadable customers", EXPORT, deny("customers.parquet"), 2,
         "cannot read customers file {w}/customers.parquet: Permission denied"),
    Case("unreadable purchases", EXPORT, deny("purchases.parquet"), 2,
         "cannot read purchases file {w}/purchases.parquet: Permission denied"),
    Case("unreadable maison config", (*EXPORT, "--config", "{w}/aurelle.toml"),
         deny("aurelle.toml"), 2, "aurelle.toml: Permission denied"),
    Case("unreadable fx", (*EXPORT, "--fx", "{w}/fx.toml"), deny("fx.toml"), 2,
         "fx.toml: Permission denied"),
    Case("unreadable registry", EXPORT, deny("keys/aurelle/registry.toml"), 2,
         "registry.toml: Permission denied"),
    Case("unreadable import customers", IMPORT, deny("customers.parquet"), 2,
         "Permission denied"),
    Case("unreadable package", OPEN, deny("return.cgpkg"), 2, "Permission denied"),
    Case("unreadable ids", ERASE, deny("ids.txt"), 2, "ids.txt: Permission denied"),
    # unreadable secrets: a security refusal, never "not a crossgroup secret file"
    Case("unreadable local secret", EXPORT, deny("keys/aurelle/local.secret"), 3,
         "cannot read key file {w}/keys/aurelle/local.secret: Permission denied"),
    Case("unreadable signing key", EXPORT, deny("keys/aurelle/signing.pem"), 3,
         "signing.pem: Permission denied"),
    Case("local secret is a folder", EXPORT, folder("keys/aurelle/local.secret"), 3,
         "key file {w}/keys/aurelle/local.secret is a directory, expected a file"),
    # a folder where a file is expected
    Case("folder as --customers", EXPORT, folder("customers.parquet"), 2,
         "customers file {w}/customers.parquet is a directory, expected a file"),
    Case("folder as --purchases", EXPORT, folder("purchases.parquet"), 2,
         "is a directory, expected a file"),
    Case("folder as --package", OPEN, folder("return.cgpkg"), 2,
         "is a directory, expected a file"),
    Case("folder as import --customers", IMPORT, folder("customers.parquet"), 2,
         "is a directory, expected a file"),
    Case("folder as import --previous", (*IMPORT, "--previous", "{w}/previous.parquet"),
         folder("previous.parquet"), 2,
         "previous segments file {w}/previous.parquet is a directory, expected a file"),
    # FIFOs are refused before anything opens them (opening one blocks for ever)
    Case("FIFO as open --package", with_(OPEN, "--package", "{w}/pipe.cgpkg"),
         fifo("pipe.cgpkg"), 2, "is a FIFO (named pipe), expected a file", subprocess=True),
    Case("FIFO as import --package", with_(IMPORT, "--package", "{w}/pipe.cgpkg"),
         fifo("pipe.cgpkg"), 2, "is a FIFO", subprocess=True),
    Case("FIFO as import --customers", with_(IMPORT, "--customers", "{w}/pipe.parquet"),
         fifo("pipe.parquet"), 2, "is a FIFO", subprocess=True),
    Case("FIFO as import --previous", (*IMPORT, "--previous", "{w}/pipe.parquet"),
         fifo("pipe.parquet"), 2, "is a FIFO", subprocess=True),
    Case("FIFO as export --customers", with_(EXPORT, "--customers", "{w}/pipe.parquet"),
         fifo("pipe.parquet"), 2, "is a FIFO", subprocess=True),
    Case("FIFO as --config", (*EXPORT, "--config", "{w}/pipe.toml"), fifo("pipe.toml"), 2,
         "is a FIFO", subprocess=True),
    Case("FIFO as --ids", with_(ERASE, "--ids", "{w}/pipe.txt"), fifo("pipe.txt"), 2,
         "is a FIFO", subprocess=True),
    Case("FIFO as signing key", EXPORT, fifo("keys/aurelle/signing.pem"), 3,
         "key file {w}/keys/aurelle/signing.pem is a FIFO", subprocess=True),
    # output errors: a file as --out's parent, a read-only --out parent
    Case("file as --out parent", with_(EXPORT, "--out", "{w}/taken/out"), regular_file("taken"),
         2, "{w}/taken/out"),
    Case("read-only --out parent", with_(EXPORT, "--out", "{w}/locked/out"),
         read_only_folder("locked"), 2, "Permission denied"),
]
# fmt: on


def _state(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under `root` by (mode, size, mtime): stat only, so no FIFO is opened. The
    party lock's file and the empty journal folder are bookkeeping, not state."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISDIR(st.st_mode) or path.name.endswith(".lock"):
            continue
        found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def _run(case: Case, args: list[str], run_cli, prefix: list[str] | None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr), in-process or in a child with a timeout: for a FIFO, or
    behind `prefix` (setpriv dropping the capabilities that let root ignore file modes)."""
    if not case.subprocess and prefix is None:
        result = run_cli(*args)
        return result.exit_code, result.stdout, result.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("CROSSGROUP_DEBUG", None)
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "crossgroup", *args],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env, cwd=REPO,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_is_one_line_an_exit_code_and_nothing_written(
    run_cli, monkeypatch, request, world, case: Case
):
    monkeypatch.delenv("CROSSGROUP_DEBUG", raising=False)
    denied = isinstance(case.prepare, Denied)
    prefix = request.getfixturevalue("permissions_enforced") if denied else None
    case.prepare(world)
    before = _state(world / "keys")

    code, stdout, stderr = _run(case, [a.format(w=world) for a in case.args], run_cli, prefix)

    lines = stderr.strip().splitlines()
    assert code == case.code, stderr
    assert len(lines) == 1 and lines[0].startswith("crossgroup: error: "), stderr
    assert case.needle.format(w=world) in lines[0]
    assert "Traceback" not in stderr + stdout
    assert not any(c in stderr for c in BOX_CHARACTERS)
    for out in (world / "out", world / "locked" / "out", world / "taken" / "out"):
        assert not out.is_dir() or not any(out.iterdir()), f"{out} was written"
    assert _state(world / "keys") == before  # no key, ledger or audit file changed


def test_an_output_that_cannot_be_placed_is_exit_2_naming_the_file(run_cli, monkeypatch, world):
    """An OSError no command foresaw (here: the package's name is taken by a folder) is one
    line naming the file and the reason, never "exit 1 unexpected", and no state changes."""
    monkeypatch.delenv("CROSSGROUP_DEBUG", raising=False)
    blocker = world / "out" / "export-aurelle-to-processor-2026-09.cgpkg"
    blocker.mkdir(parents=True)
    before = _state(world / "keys")

    result = run_cli(*[a.format(w=world) for a in EXPORT])

    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("crossgroup: error: "), result.stderr
    assert "export-aurelle-to-processor-2026-09.cgpkg" in lines[0]
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    assert sorted(p.name for p in (world / "out").iterdir()) == [blocker.name]
    assert not any(blocker.iterdir())
    assert _state(world / "keys") == before


def _hidden(text: str) -> list[str]:
    """Characters that would hide, reorder or forge a line (line breaks of the output aside)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}]


def test_unmapped_labels_reach_screen_and_summary_without_control_or_bidi_characters(
    run_cli, world
):
    rtl = "Broches\u202egnp.exe"  # would read "Brochesexe.png" reversed on a terminal
    zero_width = "Pen\u200bdentifs"
    phone = "06\u200b12\u200b34\u200b56\u200b78"  # a phone number once the ZW chars are gone
    bidi = "\u2066Montres\u2069 \u200fvintage\ufeff\x1b[31m"
    _crm(world, ["Bagues", rtl, zero_width, phone, bidi])

    result = run_cli(*[a.format(w=world) for a in EXPORT])

    assert result.exit_code == 0, result.stderr
    (summary_file,) = (world / "out").glob("*.summary.json")
    summary = summary_file.read_text(encoding="utf-8")
    named = {u["category"] for u in json.loads(summary)["unmapped_categories"]["labels"]}
    assert named == {
        f"Broches{REPLACEMENT}gnp.exe",
        f"Pen{REPLACEMENT}dentifs",
        f"{REPLACEMENT}Montres{REPLACEMENT} {REPLACEMENT}vintage{REPLACEMENT}{REPLACEMENT}[31m",
    }
    assert not _hidden(summary)
    assert not _hidden(result.stdout) and not _hidden(result.stderr)
    assert "Broches" in result.stdout
    for text in (summary, result.stdout):
        assert "0612345678" not in text and "06" + REPLACEMENT + "12" not in text
