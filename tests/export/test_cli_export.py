"""`crossgroup export` from the command line: bad input is one line and exit 2, nothing written."""

from __future__ import annotations

from datetime import date, datetime

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


def test_csv_inputs_export(run_cli, keydir, tmp_path, files):
    customers, purchases = (tmp_path / "customers.csv", tmp_path / "purchases.csv")
    customers.write_text(
        "customer_id,last_name,email,phone,country,cross_group_consent,consent_updated_at\n"
        "A,Durand,a@example.org,,FR,true,2024-01-01\n"
    )
    purchases.write_text(
        "customer_id,order_id,purchased_at,category,amount,currency,channel\n"
        "A,o1,2026-01-05T10:00:00,Bagues,100.50,EUR,Boutique\n"
    )
    result = export(run_cli, keydir, tmp_path / "out", customers, purchases)
    assert result.exit_code == 0, result.stderr


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
