"""Two runs of one party at once: one wins, the other is refused (exit 3) before it writes
anything, and the ledgers and the audit log record the work once (docs/reliability.md)."""

from __future__ import annotations

import json

import pytest
from world import copy_world, disk_state, leftovers

from crossgroup.commit import party_session


def entries(log) -> list[str]:
    return [json.loads(x)["command"] for x in log.read_text().splitlines() if x.strip()]


def race(world, first: list[str], second: list[str]) -> list[tuple[int, str]]:
    children = [world.start(first), world.start(second)]
    return [(c.wait(timeout=300), c.communicate()[1]) for c in children]


@pytest.mark.parametrize("round_", range(2))
def test_two_imports_of_one_package_import_it_once(processed, tmp_path, round_):
    world = copy_world(processed, tmp_path / "w")
    m = world.maisons()[0]
    log, ledger = world.keys / m / "audit.jsonl", world.keys / m / "ledger.jsonl"
    imports_before = entries(log).count("import")
    results = race(world, world.import_args(m, out="a"), world.import_args(m, out="b"))

    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    loser = "ab"[[code for code, _ in results].index(3)]
    err = results["ab".index(loser)][1]
    assert err.strip().startswith("crossgroup: error:") and len(err.strip().splitlines()) == 1
    assert "in use by" in err or "replayed package" in err, err
    out = world.root / loser
    assert not out.exists() or not any(out.iterdir()), f"the refused run wrote {out}"
    assert entries(log).count("import") == imports_before + 1
    package_id = json.loads(ledger.read_text().splitlines()[-1])["package_id"]
    assert [json.loads(x)["package_id"] for x in ledger.read_text().splitlines()].count(
        package_id
    ) == 1
    assert leftovers(world) == []


def test_two_process_runs_into_one_out_record_the_batch_once(template, tmp_path):
    clean = copy_world(template, tmp_path / "clean")
    assert clean.run(clean.process_args())[0] == 0
    world = copy_world(template, tmp_path / "w")
    results = race(world, world.process_args(), world.process_args())

    assert sorted(code for code, _ in results) == [0, 3], results
    err = next(err for code, err in results if code == 3)
    assert err.strip().splitlines()[-1].startswith("crossgroup: error:"), err
    assert entries(world.root / "group" / "audit.jsonl").count("process") == 1
    assert disk_state(world) == disk_state(clean)  # exactly one batch's outputs and ledger lines
    assert leftovers(world) == []


def test_a_run_refused_by_the_lock_names_the_holder_and_writes_nothing(processed, tmp_path):
    world = copy_world(processed, tmp_path / "w")
    m = world.maisons()[0]
    before = disk_state(world)
    with party_session(world.keys / m, party=m, command="import"):
        code, err, _ = world.run(world.import_args(m))
    assert code == 3, err
    assert "in use by crossgroup import (pid" in err and "nothing was written" in err
    assert disk_state(world) == before
    assert not (world.root / "analyst").exists()
