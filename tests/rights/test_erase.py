"""Withdrawal and erasure end to end (issue 7, item 1): a real synthetic world, real exports,
an erasure package sealed by the maison, applied by the processor before its next batch.

Assertions are on what the processor keeps (byte scan of its out dir, key dir and retained
inputs) and on what the maisons decrypt from their returns, never on internals.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # leak_scan

from crossgroup import audit
from crossgroup.config import load_maison, maison_config_path
from crossgroup.crypto.keys import load_party, load_registry
from crossgroup.crypto.package import open_package
from crossgroup.crypto.tokens import maison_refs
from crossgroup.maison.erase import erasure_identities
from leak_scan import crm_needles, scan

MAISONS = ["aurelle", "kessler", "vautrin"]
AS_OF = "2026-06-30"
PIPELINE = """[batch]
maisons = ["aurelle", "kessler", "vautrin"]
[privacy]
k = 5
k_aggregate = 20
[segmentation]
n_segments = 3
min_segments = 2
max_segments = 4
sample_size = 5000
[engine]
memory_limit = "1GB"
threads = 1
[retention]
input_packages_days = 30
returns_days = 90
suppression_ledger_days = 1095
replay_ledger_days = 400
"""


def export_all(cli, root: Path, batch_id: str) -> None:
    for m in MAISONS:
        r = cli(
            "export", "--maison", m, "--as-of", AS_OF, "--batch-id", batch_id,
            "--customers", root / "synth" / m / "customers.parquet",
            "--purchases", root / "synth" / m / "purchases.parquet",
            "--keys", root / "keys" / m, "--out", root / "inbox",
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr


def process(cli, root: Path):
    return cli(
        "process", "--inbox", root / "inbox", "--keys", root / "keys" / "processor",
        "--out", root / "out", "--pipeline", root / "group.toml",
    )  # fmt: skip


def returned_refs(root: Path, maison: str, batch_id: str, tmp: Path) -> pl.Series:
    package = root / "out" / "returns" / maison / f"return-processor-to-{maison}-{batch_id}.cgpkg"
    target = tmp / f"opened-{maison}-{batch_id}"
    target.mkdir()
    opened = open_package(package, load_party(root / "keys" / maison), target, kind="return")
    return pl.read_parquet(opened.tables["segments"])["maison_ref"]


def refs_of(root: Path, maison: str) -> pl.DataFrame:
    crm = pl.read_parquet(root / "synth" / maison / "customers.parquet")
    keys = load_party(root / "keys" / maison)
    return crm.select(
        "customer_id", maison_refs(keys.local_secret, crm["customer_id"]).alias("ref")
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Batch b1 processed (inputs retained), then X erased at aurelle, then a stale batch b2."""
    root = tmp_path_factory.mktemp("erase")
    cli = _runner()
    assert cli("synth", "--out", root / "synth", "--maisons", "3", "--persons", "1500",
               "--seed", "3", "--as-of", AS_OF).exit_code == 0  # fmt: skip
    assert (
        cli("keys", "init", "--dir", root / "keys", "--maisons", ",".join(MAISONS)).exit_code == 0
    )
    (root / "group.toml").write_text(PIPELINE, encoding="utf-8")
    export_all(cli, root, "b1")
    first = process(cli, root)
    assert first.exit_code == 0, first.stderr
    # X: a person returned to both aurelle and kessler (so linked across the two maisons)
    truth = pl.read_parquet(root / "synth" / "truth.parquet")
    tmp = root / "opened"
    tmp.mkdir()
    seen = {}
    for m in ("aurelle", "kessler"):
        back = returned_refs(root, m, "b1", tmp)
        seen[m] = truth.filter(pl.col("maison") == m).join(refs_of(root, m), on="customer_id")
        seen[m] = seen[m].filter(pl.col("ref").is_in(back.implode()))
    both = seen["aurelle"].join(seen["kessler"], on="person_id", suffix="_k")
    x = both.row(0, named=True)
    ids = root / "withdrawn.txt"
    ids.write_text(f"{x['customer_id']}\nNOT-A-CUSTOMER\n", encoding="utf-8")
    retained_before = sorted(p.name for p in (root / "out" / "retained").rglob("*.cgpkg"))
    erase = cli("erase", "--maison", "aurelle", "--ids", ids, "--keys", root / "keys" / "aurelle",
                "--customers", root / "synth" / "aurelle" / "customers.parquet",
                "--out", root / "inbox", "--batch-id", "withdrawals-1")  # fmt: skip
    assert erase.exit_code == 0, erase.stderr
    # the maison's CRM still says X consents: its stale export lists X again
    export_all(cli, root, "b2")
    second = process(cli, root)
    assert second.exit_code == 0, second.stderr
    crm = pl.read_parquet(root / "synth" / "aurelle" / "customers.parquet")
    cfg = load_maison(maison_config_path("aurelle"))
    erased, _ = erasure_identities(
        crm.select("customer_id", "email", "phone", "country"),
        pl.Series([x["customer_id"]]), load_party(root / "keys" / "aurelle"), cfg,
    )  # fmt: skip
    return {"root": root, "x": x, "erased": erased, "cli": cli, "erase": erase,
            "second": second, "retained_before": retained_before, "tmp": tmp}  # fmt: skip


def _runner():
    """An in-process CLI runner usable from a module fixture (run_cli is function-scoped)."""
    import contextlib
    import io
    import sys
    from types import SimpleNamespace

    from crossgroup.cli.app import main

    def run(*args) -> SimpleNamespace:
        out, err = io.StringIO(), io.StringIO()
        argv = sys.argv
        sys.argv = ["crossgroup", *map(str, args)]
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
        finally:
            sys.argv = argv
        return SimpleNamespace(exit_code=code, stdout=out.getvalue(), stderr=err.getvalue())

    return run


def erased_needles(world) -> set[bytes]:
    """X's ref and tokens at aurelle, computed from the CRM row and key files with hmac and
    HKDF from the spec (tests/leak_scan.py), not by crossgroup; what the erasure package
    listed (the product's view) must be among them."""
    root, cid = world["root"], world["x"]["customer_id"]
    crm = pl.read_parquet(root / "synth" / "aurelle" / "customers.parquet")
    row = crm.filter(pl.col("customer_id") == cid).select("customer_id", "email", "phone",
                                                           "country").to_dicts()  # fmt: skip
    keys = load_party(root / "keys" / "aurelle")  # key bytes only
    refs, tokens = crm_needles(
        row,
        local_secret=keys.local_secret,
        matching_secret=keys.matching.secret,
        epoch=keys.matching.epoch,
    )
    listed = {v for c in world["erased"].columns for v in world["erased"][c].drop_nulls()}
    assert len(refs) == 1 and tokens and listed <= refs | tokens
    return refs | tokens


def test_erase_prints_counts_and_seals_an_erasure_package(world):
    out = world["erase"].stdout
    assert "Erasure of 2 customer(s) of aurelle" in out and "1 not in the customers file" in out
    assert world["x"]["customer_id"] not in out


def test_erase_is_recorded_in_the_maisons_audit_log_without_identifiers(world):
    log = world["root"] / "keys" / "aurelle" / "audit.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    erase_entries = [e for e in entries if e["command"] == "erase"]
    assert len(erase_entries) == 1
    assert erase_entries[0]["counts"]["not_in_customers_file"] == 1
    assert audit.verify_log(log) == []
    raw = log.read_bytes()
    assert world["x"]["customer_id"].encode() not in raw
    assert scan([log], erased_needles(world)).hits == []


def test_next_return_no_longer_carries_the_erased_customer(world, tmp_path):
    root, x = world["root"], world["x"]
    back = returned_refs(root, "aurelle", "b2", tmp_path)
    assert back.len() > 100
    assert x["ref"] not in back.to_list()
    # scoped to aurelle: kessler's record of the same person is still processed and returned
    assert x["ref_k"] in returned_refs(root, "kessler", "b2", tmp_path).to_list()


def test_stale_export_records_are_counted_as_suppressed(world):
    entries = audit.read_entries(world["root"] / "out" / "audit.jsonl")
    assert [e["command"] for e in entries] == ["process", "erasure", "process"]
    assert audit.verify_chain(world["root"] / "out" / "audit.jsonl") == []
    registry = load_registry(world["root"] / "keys" / "registry.toml")  # the head is signed
    assert audit.verify_log(world["root"] / "out" / "audit.jsonl", registry=registry) == []
    assert entries[1]["counts"]["customers_listed"] == {"aurelle": 2}
    assert entries[1]["counts"]["retained_packages_deleted"] == 1
    assert entries[2]["counts"]["records_suppressed"] == {"aurelle": 1, "kessler": 0, "vautrin": 0}
    after = {i["sender"]: i["after_run"] for i in entries[2]["inputs"]}
    assert after["aurelle"] == "deleted"  # it carried the erased record: never retained
    assert after["kessler"].startswith("retained/")


def test_no_file_the_processor_keeps_contains_the_erased_refs_or_tokens(world):
    root = world["root"]
    keep = [root / "out", root / "keys" / "processor", root / "inbox"]
    found = scan(keep, erased_needles(world))
    assert found.hits == []
    assert len(found.files) > 10
    assert {"parquet", "json", "package", "bytes"} <= set(found.files.values())
    assert (root / "keys" / "processor" / "suppression-ledger.jsonl").stat().st_size > 0


def test_retained_inputs_hold_no_erased_record(world):
    root = world["root"]
    retained = sorted(p.name for p in (root / "out" / "retained").rglob("*.cgpkg"))
    assert "export-aurelle-to-processor-b1.cgpkg" in world["retained_before"]
    assert not [n for n in retained if "aurelle" in n]
    assert "export-kessler-to-processor-b2.cgpkg" in retained
    assert not list((root / "inbox").glob("*.cgpkg"))  # all consumed


def test_erasure_only_run_updates_the_ledger_and_writes_no_return(world, tmp_path):
    # on a copy: the shared world stays as the fixture left it for the other tests
    root, cli = Path(shutil.copytree(world["root"], tmp_path / "world")), world["cli"]
    ledger = root / "keys" / "processor" / "suppression-ledger.jsonl"
    before = len(ledger.read_text().splitlines())
    returns = {p: audit.file_digest(p) for p in (root / "out" / "returns").rglob("*.cgpkg")}
    ids = tmp_path / "ids.csv"
    kessler = pl.read_parquet(root / "synth" / "kessler" / "customers.parquet")
    pl.DataFrame({"customer_id": kessler["customer_id"][:3]}).write_csv(ids)
    r = cli("erase", "--maison", "kessler", "--ids", ids, "--keys", root / "keys" / "kessler",
            "--customers", root / "synth" / "kessler" / "customers.parquet",
            "--out", root / "inbox", "--batch-id", "withdrawals-2")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    package = next((root / "inbox").glob("erasure-kessler-*.cgpkg"))
    copy = tmp_path / package.name
    shutil.copy(package, copy)
    done = process(cli, root)
    assert done.exit_code == 0, done.stderr
    assert "no return written" in done.stdout
    assert len(ledger.read_text().splitlines()) > before
    assert {p: audit.file_digest(p) for p in (root / "out" / "returns").rglob("*.cgpkg")} == returns
    assert audit.read_entries(root / "out" / "audit.jsonl")[-1]["command"] == "erasure"
    # the same erasure package again is a replay
    shutil.copy(copy, root / "inbox" / copy.name)
    again = process(cli, root)
    assert again.exit_code == 3 and "replayed package" in again.stderr
    (root / "inbox" / copy.name).unlink()


def test_ledger_stores_only_keyed_digests(world):
    lines = (world["root"] / "keys" / "processor" / "suppression-ledger.jsonl").read_text()
    for line in lines.splitlines():
        entry = json.loads(line)
        assert set(entry) == {"digest", "added"} and len(entry["digest"]) == 32


def test_erasure_is_scoped_to_the_sending_maison():
    from crossgroup.group.erasure import erased_digests, suppressed_refs

    key = bytes(range(32))
    token, ref_a, ref_b = b"e" * 16, b"a" * 16, b"b" * 16
    erased = pl.DataFrame(
        {"maison_ref": [ref_a], "email_token": [token], "phone_token": [None]},
        schema={c: pl.Binary for c in ("maison_ref", "email_token", "phone_token")},
    )
    ledger = erased_digests(key, "aurelle", erased)
    other_a = pl.DataFrame(
        {"maison_ref": [b"c" * 16], "email_token": [token], "phone_token": [None]},
        schema=erased.schema,
    )
    at_b = other_a.with_columns(maison_ref=pl.lit(ref_b))
    # a new record of aurelle carrying the erased token never links again ...
    assert suppressed_refs(key, "aurelle", other_a, ledger).to_list() == [b"c" * 16]
    # ... while kessler's record with the same token is untouched
    assert suppressed_refs(key, "kessler", at_b, ledger).len() == 0


def test_bad_ids_file_is_one_line_exit_2(world, tmp_path):
    root, cli = world["root"], world["cli"]
    bad = tmp_path / "ids.csv"
    bad.write_text("client\nA1\n", encoding="utf-8")
    r = cli(
        "erase",
        "--maison",
        "aurelle",
        "--ids",
        bad,
        "--keys",
        root / "keys" / "aurelle",
        "--customers",
        root / "synth" / "aurelle" / "customers.parquet",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 2 and "customer_id" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.cgpkg"))


def test_erase_with_another_partys_keys_is_refused(world, tmp_path):
    root, cli = world["root"], world["cli"]
    ids = tmp_path / "ids.txt"
    ids.write_text("A1\n", encoding="utf-8")
    r = cli(
        "erase",
        "--maison",
        "aurelle",
        "--ids",
        ids,
        "--keys",
        root / "keys" / "kessler",
        "--customers",
        root / "synth" / "aurelle" / "customers.parquet",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 3 and len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.cgpkg"))


def test_erasure_manifest_carries_no_counts(tmp_path):
    """The readable manifest of an erasure package says nothing of how many customers asked,
    how many were unknown or had tokens: those counts stay in the local summary JSON."""
    from crossgroup.crypto.keys import init_keys
    from crossgroup.maison.erase import erase_customers

    init_keys(tmp_path / "keys", ["aurelle"])
    customers = tmp_path / "customers.parquet"
    pl.DataFrame(
        {
            "customer_id": ["C-1", "C-2", "C-3"],
            "email": ["one@example.org", None, "three@example.org"],
            "phone": [None, "+33 6 11 22 33 44", None],
            "country": ["FR", "FR", "FR"],
            "cross_group_consent": [True, True, False],
            "consent_updated_at": [None, None, None],
        },
        schema_overrides={"consent_updated_at": pl.Datetime("us")},
    ).write_parquet(customers)
    ids = tmp_path / "ids.txt"
    ids.write_text("C-1\nC-2\nGONE-9\n", encoding="utf-8")
    processor = load_party(tmp_path / "keys" / "processor")
    result = erase_customers(
        customers, ids, keys=load_party(tmp_path / "keys" / "aurelle"),
        config=load_maison(maison_config_path("aurelle")), out_dir=tmp_path / "outbox",
    )  # fmt: skip
    raw = result.package_path.read_bytes()
    for word in (b"not_in_customers_file", b"with_email_token", b"with_phone_token"):
        assert word not in raw
    opened = open_package(result.package_path, processor, tmp_path, kind="erasure")
    assert opened.manifest.summary == {}
    assert opened.manifest.tables["erased"]["rows"] == 3  # what the processor needs
    local = json.loads(
        result.package_path.with_name(result.package_path.name + ".summary.json").read_text()
    )
    assert local == result.summary
    assert local["customers"] == 3 and local["not_in_customers_file"] == 1
    assert local["with_email_token"] == 1 and local["with_phone_token"] == 1
