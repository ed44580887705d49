"""`crossgroup synth` through the real entry point: determinism, summary, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

ARGS = ("--persons", "1200", "--maisons", "4", "--chunk-persons", "500", "--seed", "5")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(run_cli, tmp_path):
    first = run_cli("synth", "--out", tmp_path / "a", *ARGS)
    again = run_cli("synth", "--out", tmp_path / "b", *ARGS)
    assert first.exit_code == again.exit_code == 0, first.stderr
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == 4 * 3 + 1
    assert a == b
    other = run_cli("synth", "--out", tmp_path / "c", *ARGS[:-1], "6")
    assert other.exit_code == 0
    c = _files(tmp_path / "c")
    for name in a:
        if name.endswith(".parquet"):
            assert a[name] != c[name], name


def test_summary_lists_every_maison_and_progress_goes_to_stderr(run_cli, tmp_path):
    result = run_cli("synth", "--out", tmp_path / "w", *ARGS)
    assert result.exit_code == 0
    out = result.stdout
    for maison in ("aurelle", "kessler", "vautrin", "harrow", "total"):
        assert maison in out
    assert "1,200 persons" in out
    assert "chunks" in result.stderr and "chunks" not in out
    assert not list((tmp_path / "w").glob(".staging-*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--maisons", "9"), "--maisons"),
        (("--maisons", "0"), "--maisons"),
        (("--persons", "0"), "--persons"),
        (("--seed", "-1"), "--seed"),
        (("--as-of", "2026-02-30"), "--as-of"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(run_cli, tmp_path, args, message):
    out = tmp_path / "never"
    result = run_cli("synth", "--out", out, *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crossgroup: error:") and message in lines[0]
    assert not out.exists()


def test_failure_midway_leaves_no_partial_output(run_cli, tmp_path, monkeypatch):
    from crossgroup.errors import InputError
    from crossgroup.synth import writer

    real = writer.generate_purchases
    calls = []

    def fail_on_second_chunk(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise InputError("simulated failure in chunk 2")
        return real(*a, **k)

    monkeypatch.setattr(writer, "generate_purchases", fail_on_second_chunk)
    out = tmp_path / "w"
    result = run_cli("synth", "--out", out, *ARGS)
    assert result.exit_code == 2
    assert list(out.rglob("*")) == []


def test_help_has_an_example(run_cli):
    result = run_cli("synth", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "crossgroup synth --out" in result.stdout
