"""Outputs appear whole or not at all; private working folders are private and temporary."""

import stat
from pathlib import Path

import polars as pl
import pytest

from crossgroup.errors import InputError
from crossgroup.io import private_workdir, scan_table, staged_output, write_private_bytes


def test_staged_output_moves_files_only_on_success(tmp_path: Path):
    out = tmp_path / "out"
    with staged_output(out) as staging:
        (staging / "a.txt").write_text("a")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.txt").write_text("b")
    assert (out / "a.txt").read_text() == "a"
    assert (out / "sub" / "b.txt").read_text() == "b"
    assert [p.name for p in out.iterdir() if p.name.startswith(".staging")] == []


def test_staged_output_leaves_nothing_on_failure(tmp_path: Path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_output(out) as staging:
        (staging / "partial.parquet").write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(out.iterdir()) == []


def test_private_workdir_is_0700_and_removed_even_on_failure(tmp_path: Path):
    with pytest.raises(ValueError), private_workdir(tmp_path) as work:
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        (work / "plain.parquet").write_bytes(b"secret-ish")
        raise ValueError
    assert not work.exists()


def test_write_private_bytes_is_0600(tmp_path: Path):
    target = tmp_path / "key.bin"
    write_private_bytes(target, b"k" * 32)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"k" * 32


def test_scan_table_by_extension(tmp_path: Path):
    frame = pl.DataFrame({"customer_id": ["c1", "c2"], "n": [1, 2]})
    frame.write_parquet(tmp_path / "t.parquet")
    frame.write_csv(tmp_path / "t.csv")
    assert scan_table(tmp_path / "t.parquet").collect().equals(frame)
    from_csv = scan_table(tmp_path / "t.csv").collect()
    assert from_csv["customer_id"].to_list() == ["c1", "c2"]
    assert from_csv.schema["n"] == pl.String  # CSV is typed later, column by column
    (tmp_path / "t.xlsx").write_bytes(b"")
    with pytest.raises(InputError, match=r"expected a \.parquet or \.csv"):
        scan_table(tmp_path / "t.xlsx")
    with pytest.raises(InputError, match="not found"):
        scan_table(tmp_path / "nope.parquet", label="customers")


def test_background_writer_keeps_every_chunk_in_order(tmp_path: Path):
    from crossgroup.io import BackgroundWriter

    chunks = [bytes([i]) * (1000 + i) for i in range(50)]
    with open(tmp_path / "f", "wb") as f, BackgroundWriter(f, depth=2) as w:
        for c in chunks:
            w.write(memoryview(c))
    assert (tmp_path / "f").read_bytes() == b"".join(chunks)


def test_background_writer_surfaces_write_errors():
    from crossgroup.io import BackgroundWriter

    class Full:
        def write(self, _):
            raise OSError(28, "No space left on device")

    writer = BackgroundWriter(Full(), depth=1)
    with pytest.raises(OSError, match="No space"):
        for _ in range(10):
            writer.write(b"x")
        writer.close()
