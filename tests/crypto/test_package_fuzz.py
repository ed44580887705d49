"""Mutated packages through the commands that consume them (issue 12: "a tampered package is
never accepted; one clear line; nothing partial written").

A valid return and a valid export are sealed once for the module, with 1 KiB chunks so each
payload is many chunks. Hypothesis mutates them: flip, overwrite, insert, delete or truncate
at an offset inside one region (framing, header, signature, first, middle or last payload
chunk: the last one carries the final-chunk flag), swap, drop or repeat whole chunks, or
append garbage. Each mutant goes through the real CLI in-process (`import` and `open` for
the return, `process` for the export in an inbox) and must be a security refusal: exit 3,
exactly one "crossgroup: error: ..." line and no traceback, nothing in --out, the party's
replay ledger and audit log byte for byte as they were, no plaintext left in a work dir.

Every mutant is exit 3, never 2: even a file truncated to nothing is a package that was
tampered with on the way ("not a crossgroup package (bad magic)" is a SecurityError), not a
user's bad option. A few hundred mutants run by default (< 60 s); thousands with -m slow.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "group"))
sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from process_batch import AS_OF, build_batch
from return_payload import GLOSSARY, make_aggregates, make_segments

MAISON = "aurelle"
CHUNK = 1024  # the smallest chunk size: many chunks in a small payload
TAG = 16  # STREAM tag per chunk (crypto/_primitives.py)
SIGNATURE = 64


def fuzz_settings(examples: int) -> settings:
    """Reproducible in CI: derandomized, no example database, no deadline (runs vary)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# ---------------------------------------------------------------- mutations

REGIONS = ("framing", "header", "signature", "first chunk", "middle chunks", "last chunk")


@dataclass(frozen=True)
class Mutation:
    """An edit described independently of the file; `apply` places it in a real package."""

    kind: str
    region: str = "header"
    at: int = 0  # position inside the region, taken modulo its length
    data: bytes = b"\x01"
    length: int = 1
    other: int = 0  # picks the second chunk of a swap, never the first one

    def apply(self, package: bytes) -> bytes:
        regions, chunks = package_regions(package)
        start, end = regions[self.region]
        offset = start + self.at % max(end - start, 1)
        if self.kind == "flip":
            return (
                package[:offset] + bytes([package[offset] ^ self.data[0]]) + package[offset + 1 :]
            )
        if self.kind == "overwrite":
            return package[:offset] + self.data + package[offset + len(self.data) :]
        if self.kind == "insert":
            return package[:offset] + self.data + package[offset:]
        if self.kind == "delete":
            return package[:offset] + package[offset + self.length :]
        if self.kind == "truncate":
            return package[:offset]
        if self.kind == "append":
            return package + self.data
        head, pieces = package[: chunks[0][0]], [package[a:b] for a, b in chunks]
        i = self.at % len(pieces)
        j = (i + 1 + self.other % (len(pieces) - 1)) % len(pieces)
        if self.kind == "swap chunks":
            pieces[i], pieces[j] = pieces[j], pieces[i]
        elif self.kind == "drop chunk":
            del pieces[i]
        elif self.kind == "repeat chunk":
            pieces.insert(i, pieces[i])
        return head + b"".join(pieces)


def package_regions(package: bytes) -> tuple[dict[str, tuple[int, int]], list[tuple[int, int]]]:
    """Byte ranges of the framing, header, signature and payload chunks (package-format.md)."""
    sender_len = package[8]
    header_start = 9 + sender_len + 4
    (header_len,) = struct.unpack(">I", package[9 + sender_len : header_start])
    signature = header_start + header_len
    payload = signature + SIGNATURE
    step = CHUNK + TAG
    chunks = [(a, min(a + step, len(package))) for a in range(payload, len(package), step)]
    assert len(chunks) >= 3, "the fixture package must span several chunks"
    regions = {
        "framing": (0, header_start),
        "header": (header_start, signature),
        "signature": (signature, payload),
        "first chunk": chunks[0],
        "middle chunks": (chunks[1][0], chunks[-1][0]),
        "last chunk": chunks[-1],
    }
    return regions, chunks


def mutations() -> st.SearchStrategy[Mutation]:
    region, at = st.sampled_from(REGIONS), st.integers(0, 1 << 20)
    garbage = st.binary(min_size=1, max_size=48)
    mask = st.integers(1, 255).map(lambda b: bytes([b]))  # never 0: a flip always changes
    chunk_edits = st.sampled_from(["swap chunks", "drop chunk", "repeat chunk"])
    return st.one_of(
        st.builds(Mutation, st.just("flip"), region, at, mask),
        st.builds(Mutation, st.just("overwrite"), region, at, garbage),
        st.builds(Mutation, st.just("insert"), region, at, garbage),
        st.builds(Mutation, st.just("delete"), region, at, length=st.integers(1, 96)),
        st.builds(Mutation, st.just("truncate"), region, at),
        st.builds(Mutation, st.just("append"), data=garbage),
        st.builds(Mutation, chunk_edits, at=at, other=at),
    )


# ---------------------------------------------------------------- the CLI, in-process


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


def crossgroup(*args: object) -> Run:
    """`crossgroup ARGS...` through the real entry point, without pytest's per-test capture
    (hypothesis runs many examples inside one test)."""
    from crossgroup.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.object(sys, "argv", ["crossgroup", *map(str, args)]),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Run(code, out.getvalue(), err.getvalue())


def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders, by path, with its bytes (lock files are not state)."""
    return {
        str(p): p.read_bytes()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def assert_refused(run: Run, *, progress_lines: bool = False) -> None:
    lines = run.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("crossgroup: error: ")]
    assert run.exit_code == 3, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert len(errors) == 1 and lines[-1] == errors[0], run.stderr
    if progress_lines:  # `process` reports its stages on stderr before the error
        assert all(" ..." in line or " done in " in line for line in lines[:-1]), run.stderr
    else:
        assert len(lines) == 1, run.stderr


# ---------------------------------------------------------------- packages, sealed once


@dataclass
class FuzzWorld:
    root: Path
    keys: Path
    customers: Path
    pipeline: Path
    returned: bytes  # a valid return package for MAISON, never imported
    exported: bytes  # a valid export package for the processor, never processed


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> FuzzWorld:
    """Keys, a CRM, one return already imported and one batch already processed (so the
    ledgers and audit logs hold lines to compare), then a fresh return and export to mutate."""
    from crossgroup.crypto.keys import load_party
    from crossgroup.crypto.package import seal_package
    from crossgroup.crypto.tokens import maison_refs

    root = tmp_path_factory.mktemp("fuzz")
    batch = build_batch(root / "batch", n_persons=120)
    ids = pl.Series(
        "customer_id", [f"AU-{i:06d}" for i in range(267)]
    )  # make_segments(267, 11) infers String tiers
    customers = root / "customers.parquet"
    pl.DataFrame({"customer_id": ids}).write_parquet(customers)
    processor, maison = load_party(batch.keys / "processor"), load_party(batch.keys / MAISON)

    def seal_return(name: str) -> Path:
        segments = make_segments(ids.len(), seed=11).with_columns(
            maison_ref=maison_refs(maison.local_secret, ids)
        )
        folder = root / f"return-tables-{name}"
        folder.mkdir()
        tables = {"segments": segments, "aggregates": make_aggregates(segments),
                  "glossary": GLOSSARY}  # fmt: skip
        for table, frame in tables.items():
            frame.write_parquet(folder / f"{table}.parquet")
        path, _ = seal_package(
            root / f"return-{name}", kind="return", sender=processor, recipient=MAISON,
            tables={t: folder / f"{t}.parquet" for t in tables}, batch_id=name, as_of=AS_OF,
            matching_key_id=processor.registry.matching_key_id, chunk_size=CHUNK,
        )  # fmt: skip
        return path

    imported = crossgroup("import", "--maison", MAISON, "--package", seal_return("first"),
                          "--customers", customers, "--keys", batch.keys / MAISON,
                          "--out", root / "imported")  # fmt: skip
    assert imported.exit_code == 0, imported.stderr

    fuzzed = batch.inbox / f"export-{MAISON}-to-processor-2026-06.cgpkg"
    held_back = root / "export-to-fuzz"
    shutil.move(fuzzed, held_back)  # the others make the processor's first batch
    (root / "work").mkdir()
    processed = crossgroup("process", "--inbox", batch.inbox, "--keys", batch.keys / "processor",
                           "--out", root / "processed", "--pipeline", batch.pipeline,
                           "--work-dir", root / "work", "--allow-missing")  # fmt: skip
    assert processed.exit_code == 0, processed.stderr
    exported, _ = seal_package(
        held_back.parent / "resealed", kind="export", sender=maison, recipient="processor",
        tables=batch.tables[MAISON], batch_id="2026-06", as_of=AS_OF,
        matching_key_id=maison.matching.key_id, chunk_size=CHUNK,
        now=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    return FuzzWorld(root, batch.keys, customers, batch.pipeline,
                     seal_return("second").read_bytes(), exported.read_bytes())  # fmt: skip


def import_and_open(world: FuzzWorld, package: bytes, tag: str) -> tuple[Run, Run]:
    path = world.root / "mutants" / f"return-{tag}.cgpkg"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(package)
    imported = crossgroup("import", "--maison", MAISON, "--package", path,
                          "--customers", world.customers, "--keys", world.keys / MAISON,
                          "--out", world.root / f"out-import-{tag}")  # fmt: skip
    opened = crossgroup("open", "--package", path, "--keys", world.keys / MAISON,
                        "--out", world.root / f"out-open-{tag}")  # fmt: skip
    return imported, opened


def process_inbox(world: FuzzWorld, package: bytes, tag: str, *extra: str) -> Run:
    inbox = world.root / f"inbox-{tag}"
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir()
    (inbox / f"export-{MAISON}-to-processor-2026-06.cgpkg").write_bytes(package)
    # one maison's export alone: the pipeline's other maisons are allowed to be missing
    return crossgroup("process", "--inbox", inbox, "--keys", world.keys / "processor",
                      "--out", world.root / "processed", "--pipeline", world.pipeline,
                      "--work-dir", world.root / "work", "--allow-missing", *extra)  # fmt: skip


def test_the_unmutated_packages_are_accepted(world, tmp_path):
    """The control: the fuzzed packages are valid, so every refusal below is the mutation's."""
    copy = tmp_path / "copy"
    shutil.copytree(world.root, copy, ignore=shutil.ignore_patterns("out-*", "inbox-*"))
    fresh = FuzzWorld(copy, copy / "batch" / "keys", copy / "customers.parquet",
                      copy / "batch" / "group.toml", world.returned, world.exported)  # fmt: skip
    imported, opened = import_and_open(fresh, world.returned, "control")
    assert (imported.exit_code, opened.exit_code) == (0, 0), imported.stderr + opened.stderr
    processed = process_inbox(fresh, world.exported, "control")
    assert processed.exit_code == 0, processed.stderr


def check_return_mutation(world: FuzzWorld, mutation: Mutation) -> None:
    mutant = mutation.apply(world.returned)
    if mutant == world.returned:
        return  # an overwrite with the same bytes, a swap of a chunk with itself: no mutation
    party = world.keys / MAISON
    before = snapshot(party)
    imported, opened = import_and_open(world, mutant, "mutant")
    for run in (imported, opened):
        assert_refused(run)
    assert snapshot(party) == before  # ledger, audit log and its head untouched
    assert not (world.root / "out-import-mutant").exists()
    assert not (world.root / "out-open-mutant").exists()


def check_export_mutation(world: FuzzWorld, mutation: Mutation, skip_invalid: bool) -> None:
    """With --skip-invalid the mutant is set aside, at verification or decryption, and the
    inbox is left with nothing to process: a refusal all the same."""
    mutant = mutation.apply(world.exported)
    if mutant == world.exported:
        return
    before = snapshot(world.keys / "processor", world.root / "processed")
    extra = ["--skip-invalid"] if skip_invalid else []
    assert_refused(process_inbox(world, mutant, "mutant", *extra), progress_lines=True)
    assert snapshot(world.keys / "processor", world.root / "processed") == before
    assert list((world.root / "work").iterdir()) == []


@fuzz_settings(300)
@given(mutation=mutations())
def test_mutated_return_is_refused_by_import_and_open(world, mutation):
    check_return_mutation(world, mutation)


@fuzz_settings(100)
@given(mutation=mutations(), skip_invalid=st.booleans())
def test_mutated_export_is_refused_by_process(world, mutation, skip_invalid):
    check_export_mutation(world, mutation, skip_invalid)


@pytest.mark.slow
@fuzz_settings(3000)
@given(mutation=mutations())
def test_many_mutated_returns_are_refused_by_import_and_open(world, mutation):
    check_return_mutation(world, mutation)


@pytest.mark.slow
@fuzz_settings(1000)
@given(mutation=mutations(), skip_invalid=st.booleans())
def test_many_mutated_exports_are_refused_by_process(world, mutation, skip_invalid):
    check_export_mutation(world, mutation, skip_invalid)
