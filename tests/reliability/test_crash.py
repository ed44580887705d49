"""`kill -9` at any point of export, process or import, then a rerun: the disk ends exactly
as after one clean run, and no plaintext is ever readable by another user (docs/reliability.md).

Each command is first run cleanly to learn its duration and final state; then fresh copies
of the world are killed at spread fractions of that duration (start-up, reading, the work,
sealing, the commit) and rerun. A rerun after a kill that came after the commit point finds
the work done (the commit is finished by the rerun itself) and says so: exit 3 for a
consumed package, 2 for an exported batch or an inbox already emptied.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from world import BATCH, World, copy_world, disk_state, leftovers, readable_by_others

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
FRACTIONS = (0.2, 0.45, 0.7, 0.85, 0.95)
DONE = ("already", "holds no .cgpkg packages")  # what a rerun says when the work was done
SLOW_FRACTIONS = tuple(i / 20 for i in range(1, 20))
# `process --engine spark` is killed at moments of its own (a stage starting, plus a delay),
# not at fractions of a clean Spark run, which would cost a run of its own: in the middle of
# the resolution's rounds (Spark's shuffle and checkpoint files on disk); with -m slow also
# as Spark starts reading the decrypted inputs and while the return tables are written
SPARK_KILLS = [
    pytest.param("decrypt ...", 1.0, id="reading", marks=pytest.mark.slow),
    pytest.param("resolve ...", 3.0, id="resolving"),
    pytest.param("release ...", 0.5, id="releasing", marks=pytest.mark.slow),
]


def command_args(world, command: str) -> list[str]:
    m = world.maisons()[0]
    if command == "export":
        return world.export_args(m, f"{BATCH}-x")
    if command == "process-dp":  # DP mode: the privacy-budget ledger's lines commit too
        pipeline = world.root / "group-dp.toml"
        shipped = (PIPELINES / "group.toml").read_text(encoding="utf-8")
        pipeline.write_text(shipped.replace('= "threshold"', '= "dp"', 1), encoding="utf-8")
        pipeline.chmod(0o600)  # the test's own file: not what the scan of others' reads is for
        return [*world.process_args(), "--pipeline", str(pipeline)]
    return world.process_args() if command == "process" else world.import_args(m)


def crash_and_rerun(base, tmp_path, command: str, fractions) -> dict:
    """The disk a clean run leaves, which every killed run's rerun must leave too."""
    clean = copy_world(base, tmp_path / "clean")
    code, err, seconds = clean.run(command_args(clean, command))
    assert code == 0, err
    expected = disk_state(clean)
    assert leftovers(clean) == []
    for i, fraction in enumerate(fractions):
        world = copy_world(base, tmp_path / f"kill-{i}")
        since = time.time() - 1
        world.kill_after(command_args(world, command), seconds * fraction)
        assert readable_by_others(world, since) == [], f"{command} killed at {fraction:.0%}"
        code, err, _ = world.run(command_args(world, command))
        if code != 0:  # the first run had committed: the rerun says so and redoes nothing
            last = err.strip().splitlines()[-1]
            assert code in (2, 3) and "Traceback" not in err, err
            assert last.startswith("crossgroup: error:") and any(d in last for d in DONE), err
        assert disk_state(world) == expected, f"{command} killed at {fraction:.0%}"
        assert leftovers(world) == [], f"{command} killed at {fraction:.0%}"
        assert readable_by_others(world, since) == []
    return expected


@pytest.mark.parametrize("command", ["export", "process", "process-dp", "import"])
def test_a_rerun_after_kill_9_leaves_what_a_clean_run_leaves(
    template, processed, tmp_path, command
):
    """Also in DP mode: the budget ledger's lines land with the batch, once, or not at all."""
    base = processed if command == "import" else template
    expected = crash_and_rerun(base, tmp_path, command, FRACTIONS)
    if command == "process-dp":
        assert expected["ledgers"]["keys/processor/privacy-budget.jsonl"] == ["line"] * 9


@pytest.mark.slow
@pytest.mark.parametrize("command", ["export", "process", "import"])
def test_kill_9_at_every_twentieth_of_the_run(template, processed, tmp_path, command):
    base = processed if command == "import" else template
    crash_and_rerun(base, tmp_path, command, SLOW_FRACTIONS)


@pytest.mark.spark
@pytest.mark.parametrize(("line", "delay"), SPARK_KILLS)
def test_kill_9_during_a_spark_run_leaves_no_jvm_and_a_rerun_cleans_up(
    template, processed, tmp_path, line, delay
):
    """The driver JVM and PySpark's Python workers die with the killed command (the JVM reads
    its stdin, the command's pipe, to its end, then exits; the workers follow their JVM),
    nothing they wrote is readable by others, and a rerun leaves exactly what a clean run
    leaves. The rerun and the clean run use the embedded engine: what is checked is the
    recovery from what the Spark run left, and a Spark run costs seconds."""
    pytest.importorskip("pyspark")
    expected = disk_state(World(processed))
    world = copy_world(template, tmp_path / "kill")
    since = time.time() - 1
    started = world.kill_on_line([*world.process_args(), "--engine", "spark"], line, delay)
    assert "java" in started.values()  # the JVM was up when the command was killed
    deadline = time.monotonic() + 30
    while world.live_processes(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert world.live_processes(started) == []
    assert readable_by_others(world, since) == []
    code, err, _ = world.run(world.process_args())
    assert code == 0, err
    assert disk_state(world) == expected
    assert leftovers(world) == []
    assert readable_by_others(world, since) == []
