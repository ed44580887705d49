"""`crossgroup export` from the command line: bad input is one line and exit 2, nothing written."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest


@pytest.fixture
def files(tmp_path, crm):
    """Valid inputs as Parquet; tests overwrite one of them with a doctored version."""
    c, p = crm.customer, crm.purchase
    customers = crm.write(tmp_path / "customers.parquet", [c("A"), c("B")], crm.customer_schema)
    purchases = crm.write(
        tmp_path / "purchases.parquet",
        [p("A", "o1", date(2026, 1, 5)), p("B", "o2", date(2026, 2, 5))],
        crm.purchase_schema,
    )
    return customers, purchases


def export(run_cli, keydir, out, customers, purchases, *extra):
    return run_cli(
        "export", "--maison", "aurelle", "--customers", customers, "--purchases", purchases,
        "--as-of", "2026-09-30", "--keys", keydir / "aurelle", "--out", out, *extra,
    )  # fmt: skip


def assert_refused(result, out, code=2, needle=""):
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crossgroup: error:"), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_export_prints_summary_and_writes_package(run_cli, keydir, tmp_path, files):
    out = tmp_path / "out"
    result = export(run_cli, keydir, out, *files)
    assert result.exit_code == 0, result.stderr
    assert "Customers read" in result.stdout and "EUR total" in result.stdout
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and written[1] == written[0] + ".summary.json"
    assert written[0].endswith(".cgpkg")


def frame_of(path):
    return pl.read_parquet(path)


@pytest.mark.parametrize(
    ("which", "doctor", "needle"),
    [
        ("customers", lambda f: f.drop("cross_group_consent"), "missing required column(s) "
         "cross_group_consent"),
        ("customers", lambda f: f.with_columns(pl.lit(7).alias("customer_id")),
         "column customer_id is Int32, expected text"),
        ("customers", lambda f: pl.concat([f, f.head(1)]), "1 duplicate customer_id"),
        ("customers", lambda f: f.head(0), "has no rows"),
        ("purchases", lambda f: f.head(0), "has no rows"),
        ("purchases", lambda f: f.with_columns(currency=pl.lit("XYZ")), "unknown currency 'XYZ'"),
        ("purchases", lambda f: f.with_columns(channel=pl.lit("phone")), "unknown channel 'phone'"),
        ("purchases", lambda f: f.with_columns(amount=pl.lit("12,5€")),
         "column amount has 2 value(s) that cannot be parsed as a number"),
        ("purchases", lambda f: f.with_columns(order_id=pl.lit(None, pl.String)),
         "have no order_id"),
        ("purchases", lambda f: f.with_columns(currency=pl.lit("a@b.example")),
         "unknown currency a non-code value"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(run_cli, keydir, tmp_path, files, which, doctor, needle):
    customers, purchases = files
    target = customers if which == "customers" else purchases
    doctor(frame_of(target)).write_parquet(target)
    out = tmp_path / "out"
    assert_refused(export(run_cli, keydir, out, customers, purchases), out, 2, needle)


def test_unparseable_csv_dates(run_cli, keydir, tmp_path, files):
    customers, _ = files
    purchases = tmp_path / "purchases.csv"
    purchases.write_text(
        "customer_id,order_id,purchased_at,category,amount,currency,channel\n"
        "A,o1,2026-01-05,Bagues,100,EUR,boutique\n"
        "B,o2,31/02/2026,Bagues,100,EUR,online\n"
    )
    out = tmp_path / "out"
    result = export(run_cli, keydir, out, customers, purchases)
    assert_refused(result, out, 2, "column purchased_at has 1 value(s) that cannot be parsed")


def opened_tables(package, keydir, work) -> dict[str, pl.DataFrame]:
    """The package's tables as the processor decrypts them, rows in a fixed order."""
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import open_package

    work.mkdir()
    opened = open_package(package, load_party(keydir / "processor"), work, kind="export")
    return {n: pl.read_parquet(p).sort(pl.all()) for n, p in opened.tables.items()}


def test_csv_inputs_export(run_cli, keydir, fresh_keys, tmp_path, crm):
    """CSV inputs give the same package content as the same rows in Parquet."""
    customers, purchases = (tmp_path / "customers.csv", tmp_path / "purchases.csv")
    customers.write_text(
        "customer_id,last_name,email,phone,country,cross_group_consent,consent_updated_at\n"
        "A,Durand,a@example.org,,FR,true,2024-01-01\n"
        "B,Martin, B@Example.org ,06 12 34 56 78,FR,true,2024-01-01T09:30:00\n"
        "C,Petit,c@example.org,,FR,false,2024-01-01\n"
    )
    purchases.write_text(
        "customer_id,order_id,purchased_at,category,amount,currency,channel\n"
        "A,o1,2026-01-05T10:00:00,Bagues,100.50,EUR,Boutique\n"
        "B,o2,2026-03-05T10:00:00,Bagues,250,USD,online\n"
        "B,o3,2025-11-20T18:30:00,Bagues,80.25,EUR,boutique\n"
        "C,o4,2026-02-05T10:00:00,Bagues,90,EUR,boutique\n"
    )
    c, p = crm.customer, crm.purchase
    at = datetime(2024, 1, 1)
    pq_customers = crm.write(tmp_path / "customers.parquet", [
        c("A", email="a@example.org", consent_updated_at=at),
        c("B", email=" B@Example.org ", phone="06 12 34 56 78",
          consent_updated_at=datetime(2024, 1, 1, 9, 30)),
        c("C", email="c@example.org", cross_group_consent=False, consent_updated_at=at),
    ], crm.customer_schema)  # fmt: skip
    pq_purchases = crm.write(tmp_path / "purchases.parquet", [
        p("A", "o1", datetime(2026, 1, 5, 10), amount=100.5, channel="Boutique"),
        p("B", "o2", datetime(2026, 3, 5, 10), amount=250.0, currency="USD", channel="online"),
        p("B", "o3", datetime(2025, 11, 20, 18, 30), amount=80.25),
        p("C", "o4", datetime(2026, 2, 5, 10), amount=90.0),
    ], crm.purchase_schema)  # fmt: skip
    result = export(run_cli, keydir, tmp_path / "out", customers, purchases)
    assert result.exit_code == 0, result.stderr
    # the same keys, a ledger of its own: the Parquet export is not a second export of a batch
    pq_keys = Path(shutil.copytree(fresh_keys, tmp_path / "pq-keys"))
    reference = export(run_cli, pq_keys, tmp_path / "pq-out", pq_customers, pq_purchases)
    assert reference.exit_code == 0, reference.stderr
    (from_csv,) = (tmp_path / "out").glob("*.cgpkg")
    (from_parquet,) = (tmp_path / "pq-out").glob("*.cgpkg")
    got = opened_tables(from_csv, keydir, tmp_path / "open-csv")
    want = opened_tables(from_parquet, pq_keys, tmp_path / "open-parquet")
    assert set(got) == set(want) == {"identities", "activity"}
    assert want["identities"].height == 2  # A and B consent, C does not
    assert want["identities"]["phone_token"].null_count() == 1  # B's phone only
    assert want["activity"].height >= 2
    for name in want:
        assert got[name].equals(want[name]), name


def test_missing_file_and_bad_options(run_cli, keydir, tmp_path, files):
    customers, purchases = files
    out = tmp_path / "out"
    assert_refused(
        export(run_cli, keydir, out, tmp_path / "nope.parquet", purchases), out, 2, "not found"
    )
    result = run_cli(
        "export", "--maison", "aurelle", "--customers", customers, "--purchases", purchases,
        "--as-of", "30/09/2026", "--keys", keydir / "aurelle", "--out", out,
    )  # fmt: skip
    assert_refused(result, out, 2, "--as-of")


def test_keys_of_another_maison_refused_exit_3(run_cli, keydir, tmp_path, files):
    customers, purchases = files
    out = tmp_path / "out"
    result = run_cli(
        "export", "--maison", "aurelle", "--customers", customers, "--purchases", purchases,
        "--as-of", "2026-09-30", "--keys", keydir / "kessler", "--out", out,
    )  # fmt: skip
    assert_refused(result, out, 3, "kessler")


def test_privacy_refusal_leaves_out_dir_empty(run_cli, keydir, tmp_path, crm):
    """A customer_id equal to a group category would leak through activity: exit 3."""
    c, p = crm.customer, crm.purchase
    customers = crm.write(tmp_path / "c.parquet", [c("Watches"), c("A")], crm.customer_schema)
    purchases = crm.write(
        tmp_path / "p.parquet",
        [p("A", "o1", datetime(2026, 1, 5), category="Montres")],
        crm.purchase_schema,
    )
    out = tmp_path / "out"
    result = export(run_cli, keydir, out, customers, purchases)
    assert_refused(result, out, 3, "activity.group_category: 1 value(s) equal an input customer_id")


def _state(keys_dir) -> dict[str, bytes]:
    return {
        str(p.relative_to(keys_dir)): p.read_bytes()
        for p in sorted(keys_dir.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_an_export_ledger_that_cannot_be_written_ships_nothing(
    run_cli, keydir, tmp_path, files, monkeypatch
):
    """The ledger refuses writes (simulated EACCES, as root ignores file modes): exit 2 naming
    it, and no package, summary, refs file or audit entry, where the package used to ship."""
    import errno
    import os

    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if str(path).endswith("exports.jsonl") and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    (keydir / "aurelle" / "exports.jsonl").write_text("")
    before = _state(keydir)
    monkeypatch.setattr(os, "open", refusing_open)
    out = tmp_path / "out"
    result = export(run_cli, keydir, out, *files)
    monkeypatch.undo()
    assert_refused(result, out, 2, "exports.jsonl: Permission denied")
    assert _state(keydir) == before


def test_a_disk_full_while_committing_is_finished_by_the_next_run(
    run_cli, keydir, tmp_path, files, monkeypatch
):
    """ENOSPC after the commit point (the audit append): exit 2 saying the next run finishes
    the commit; the next command of the maison does, and the batch is exported once."""
    import errno

    from crossgroup import jsonl

    real_write = jsonl._write_all

    def disk_full(fd, data):
        if b'"command"' in data:  # the audit entry
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(jsonl, "_write_all", disk_full)
    out = tmp_path / "out"
    result = export(run_cli, keydir, out, *files)
    monkeypatch.undo()
    assert result.exit_code == 2, result.stderr
    assert "No space left on device" in result.stderr and "finishes it" in result.stderr
    again = export(run_cli, keydir, out, *files)  # the rerun: finishes the commit, then refuses
    assert again.exit_code == 2 and "already exported" in again.stderr, again.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and written[0].endswith(".cgpkg")
    from crossgroup import audit

    log = keydir / "aurelle" / "audit.jsonl"
    assert [e["command"] for e in audit.read_entries(log)] == ["export"]
    assert audit.verify_log(log) == []
    assert len((keydir / "aurelle" / "exports.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("batch_id", ["0612345678", "06.12.34.56.78", "33612345678"])
def test_a_batch_id_that_reads_like_an_identifier_is_refused(
    run_cli, keydir, tmp_path, files, batch_id
):
    """The batch id travels in the package's file name and readable manifest."""
    out = tmp_path / "out"
    result = export(run_cli, keydir, out, *files, "--batch-id", batch_id)
    assert_refused(result, out, 2, "--batch-id reads like a phone number")
    assert batch_id not in result.stderr


@pytest.mark.parametrize(
    "batch_id", ["2026-09.1", "20260930", "20260930-2", "2026093001", "2026-09-30-01", "q3-2026"]
)
def test_an_ordinary_batch_id_with_digits_is_accepted(run_cli, keydir, tmp_path, files, batch_id):
    result = export(run_cli, keydir, tmp_path / "out", *files, "--batch-id", batch_id)
    assert result.exit_code == 0, result.stderr
