"""The record of processing activities follows the configuration and the code's constants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossgroup.contracts import EXPORT, RETURN
from crossgroup.crypto.keys import init_keys, load_registry
from crossgroup.crypto.package import CHUNK_SIZE, suite_name
from crossgroup.report.register import UNDOCUMENTED

SEGMENTS_COLUMNS = RETURN["segments"].names


def write_register(run_cli, pipeline: Path, out: Path, *extra) -> tuple[str, dict]:
    result = run_cli("register", "--pipeline", pipeline, "--out", out, *extra)
    assert result.exit_code == 0, result.stderr
    return (out / "register.md").read_text(), json.loads((out / "register.json").read_text())


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    keydir = tmp_path_factory.mktemp("register-keys") / "keys"
    init_keys(keydir, ["aurelle", "kessler", "vautrin"])
    return keydir


def test_every_exported_and_returned_column_is_in_the_register(run_cli, pipelines, tmp_path):
    md, reg = write_register(run_cli, pipelines / "group.toml", tmp_path / "r")
    sent = reg["personal_data"]["sent_to_processor"]
    assert {t: [c["column"] for c in cols] for t, cols in sent.items()} == {
        t: list(contract.names) for t, contract in EXPORT.items()
    }
    returned = reg["personal_data"]["returned_to_each_maison"]
    assert [c["column"] for c in returned["segments"]] == list(SEGMENTS_COLUMNS)
    assert [c["column"] for c in returned["aggregates"]] == list(RETURN["aggregates"].names)
    for column in {*(c for t in EXPORT.values() for c in t.names), *SEGMENTS_COLUMNS}:
        assert f"`{column}`" in md
    assert UNDOCUMENTED not in md, "a column has no meaning in report/register.py"


def test_register_changes_with_the_pipeline(run_cli, pipelines, tmp_path):
    base = (pipelines / "group.toml").read_text()
    changed = tmp_path / "group.toml"
    changed.write_text(
        base.replace("k = 10", "k = 25")
        .replace("k_aggregate = 50", "k_aggregate = 80")
        .replace("returns_days = 90", "returns_days = 30")
    )
    md0, reg0 = write_register(run_cli, pipelines / "group.toml", tmp_path / "a")
    md1, reg1 = write_register(run_cli, changed, tmp_path / "b")
    assert reg0["privacy_thresholds"]["k"] == 10 and reg1["privacy_thresholds"]["k"] == 25
    assert reg1["privacy_thresholds"]["k_aggregate"] == 80
    assert reg0["retention_days"]["returns_days"] == 90
    assert reg1["retention_days"]["returns_days"] == 30
    assert "k = 25" in md1 and "k_aggregate = 80" in md1 and "returns: 30 days" in md1
    assert "k = 25" not in md0


def test_controllers_names_and_crypto_come_from_the_registry(run_cli, keydir, tmp_path):
    pipeline = tmp_path / "group.toml"
    pipeline.write_text(
        '[batch]\nmaisons = ["aurelle", "vautrin"]\n[retention]\nreturns_days = 7\n'
    )
    md, reg = write_register(
        run_cli, pipeline, tmp_path / "r", "--registry", keydir / "registry.toml"
    )
    registry = load_registry(keydir / "registry.toml")
    assert [c["id"] for c in reg["controllers"]] == ["aurelle", "vautrin"]
    for c in reg["controllers"]:
        assert c["name"] == registry.party(c["id"]).name and c["name"] in md
    kem = registry.party("processor").hpke_kem
    assert reg["security_measures"]["package_suite"] == suite_name(kem, CHUNK_SIZE)
    assert "kessler" not in json.dumps(reg["controllers"])


def test_automated_decision_statement_and_stdout_mode(run_cli, pipelines):
    result = run_cli("register", "--pipeline", pipelines / "group.toml")
    assert result.exit_code == 0, result.stderr
    assert "art. 22" in result.stdout and "legal or similarly significant" in result.stdout
    assert "Record of processing activities" in result.stdout


def test_maison_missing_from_the_registry_is_bad_input(run_cli, keydir, tmp_path):
    pipeline = tmp_path / "group.toml"
    pipeline.write_text('[batch]\nmaisons = ["aurelle", "orval"]\n')
    result = run_cli("register", "--pipeline", pipeline, "--registry", keydir / "registry.toml")
    assert result.exit_code == 2 and "orval" in result.stderr
