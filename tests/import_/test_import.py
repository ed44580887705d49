"""`crossgroup import`: exact relinking, refusals (exit 3), bad input (exit 2), nothing partial."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
from import_world import MAISON, N_DELETED, N_RETURNED, OTHER

from crossgroup.report.maison_report import IDENTIFIER_COLUMNS


def _import(run_cli, world, package, out, *extra, customers=None, maison=MAISON, keys=MAISON):
    return run_cli(
        "import", "--maison", maison, "--package", package,
        "--customers", customers or world.customers,
        "--keys", world.keydir / keys, "--out", out, *extra,
    )  # fmt: skip


def test_import_relinks_every_ref_to_its_customer(run_cli, world, tmp_path):
    package = world.seal_return()
    out = tmp_path / "analyst"
    result = _import(run_cli, world, package, out, "--csv")
    assert result.exit_code == 0, result.stderr
    segments = pl.read_parquet(out / "segments.parquet")
    # every returned ref of a current customer maps to exactly the right customer_id
    assert segments.height == N_RETURNED
    assert segments["customer_id"].is_unique().all()
    joined = world.expected.join(segments, on="customer_id", how="full", suffix="_got")
    assert joined.height == N_RETURNED
    assert joined["segment"].eq_missing(joined["segment_got"]).all()
    assert joined["value_tier"].eq_missing(joined["value_tier_got"]).all()
    assert segments.columns[0] == "customer_id"
    assert not set(IDENTIFIER_COLUMNS[:1] + IDENTIFIER_COLUMNS[2:]) & set(segments.columns)
    assert {"segment_label", "generalized", "lead_sector"} <= set(segments.columns)
    csv = pl.read_csv(out / "segments.csv", infer_schema=False)
    assert csv["customer_id"].to_list() == segments["customer_id"].to_list()
    page = (out / "report.html").read_text()
    assert "Aurelle" in page and "What was held back, and why" in page
    assert "(k = 10)" in page and "(k_aggregate = 50)" in page  # read from the processor's notes
    for line in (f"{N_RETURNED + N_DELETED:,}", f"{N_RETURNED:,}", f"{N_DELETED:,}"):
        assert line in result.stdout
    assert "Dropped (no longer in the CRM)" in result.stdout


def test_replayed_return_is_refused(run_cli, world, tmp_path):
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import verify_package

    package = world.seal_return()
    manifest = verify_package(package, load_party(world.keydir / MAISON))
    assert _import(run_cli, world, package, tmp_path / "first").exit_code == 0
    again = _import(run_cli, world, package, tmp_path / "second")
    assert again.exit_code == 3
    assert "replayed" in again.stderr
    assert not (tmp_path / "second" / "segments.parquet").exists()
    # the maison's ledger line carries what the replay window needs (crypto/ledger.py)
    lines = (world.keydir / MAISON / "ledger.jsonl").read_text().splitlines()
    (line,) = [json.loads(x) for x in lines if manifest.package_id in x]
    assert dt.datetime.fromisoformat(line["created_at"]) == manifest.created_at


def test_package_for_another_maison_is_refused(run_cli, world, tmp_path):
    package = world.seal_return(recipient=OTHER)
    result = _import(run_cli, world, package, tmp_path / "out")
    assert result.exit_code == 3
    assert "wrong recipient" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "segments.parquet").exists()


def test_keys_of_another_maison_are_refused(run_cli, world, tmp_path):
    package = world.seal_return()
    result = _import(run_cli, world, package, tmp_path / "out", maison=OTHER)
    assert result.exit_code == 3  # a key mismatch is a security refusal, as in export
    assert "holds the keys of 'aurelle', not 'kessler'" in result.stderr


def test_missing_customers_file_is_bad_input(run_cli, world, tmp_path):
    package = world.seal_return()
    result = _import(run_cli, world, package, tmp_path / "out", customers=tmp_path / "nope.csv")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"crossgroup: error: customers file not found: {tmp_path / 'nope.csv'}"
    ]
    # nothing was written and the package was not spent: a corrected run succeeds
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert _import(run_cli, world, package, tmp_path / "out").exit_code == 0


def test_customers_without_customer_id_is_bad_input(run_cli, world, tmp_path):
    package = world.seal_return()
    crm = tmp_path / "crm.csv"
    crm.write_text("client,country\nAU-000001,FR\n")
    result = _import(run_cli, world, package, tmp_path / "out", customers=crm)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing required column customer_id" in lines[0]


def test_duplicate_customer_ids_are_refused_not_guessed(run_cli, world, tmp_path):
    package = world.seal_return()
    crm = tmp_path / "crm.csv"
    crm.write_text("customer_id\nAU-000001\nAU-000001\n")
    result = _import(run_cli, world, package, tmp_path / "out", customers=crm)
    assert result.exit_code == 2
    assert "1 duplicate customer_id value(s)" in result.stderr


def test_tampered_package_is_refused(run_cli, world, tmp_path):
    package = world.seal_return()
    data = bytearray(package.read_bytes())
    data[-100] ^= 0x01  # inside the encrypted payload
    package.write_bytes(bytes(data))
    result = _import(run_cli, world, package, tmp_path / "out")
    assert result.exit_code == 3
    assert not (tmp_path / "out" / "segments.parquet").exists()


def _modes(folder) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}


def test_analyst_files_are_owner_only_whatever_the_umask(run_cli, world, tmp_path):
    import os

    old = os.umask(0o022)  # a lax umask: the files must not follow it
    try:
        out = tmp_path / "analyst"
        assert _import(run_cli, world, world.seal_return(), out, "--csv").exit_code == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o700
    assert set(_modes(out).values()) == {0o600}, _modes(out)


def test_mode_shares_the_files_on_purpose_and_a_shared_folder_needs_it(run_cli, world, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    package = world.seal_return()
    refused = _import(run_cli, world, package, shared)
    assert refused.exit_code == 2 and "open to other users (mode 750)" in refused.stderr
    assert list(shared.iterdir()) == []
    result = _import(run_cli, world, package, shared, "--mode", "0640")
    assert result.exit_code == 0, result.stderr
    assert set(_modes(shared).values()) == {0o640}
    fresh = _import(run_cli, world, world.seal_return(name="r2"), tmp_path / "new", "--mode", "640")
    assert fresh.exit_code == 0, fresh.stderr
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o750


def test_a_mode_that_gives_away_write_or_execute_is_refused(run_cli, world, tmp_path):
    for mode in ("0666", "0700", "0400", "rw-r-----"):
        result = _import(run_cli, world, world.seal_return(), tmp_path / "o", "--mode", mode)
        assert result.exit_code == 2 and "--mode" in result.stderr, (mode, result.stderr)
        assert not (tmp_path / "o").exists()


def test_import_loads_neither_numpy_pyarrow_nor_duckdb(world, tmp_path):
    """Start-up is most of a small import (issue 13): below the compiled kernel's batch size
    the refs are hashed by the standard library, so the command loads no array library."""
    import subprocess
    import sys

    package = world.seal_return()
    args = ["import", "--maison", MAISON, "--package", package, "--customers", world.customers,
            "--keys", world.keydir / MAISON, "--out", tmp_path / "analyst"]  # fmt: skip
    code = (
        "import atexit, runpy, sys; "
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'numpy', 'pyarrow', 'duckdb', 'numba'}), file=sys.stderr)); "
        "sys.argv = ['crossgroup', *sys.argv[1:]]; runpy.run_module('crossgroup', "
        "run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "analyst" / "segments.parquet").exists()
