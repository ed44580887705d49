"""Each privacy invariant of DESIGN §5, broken on purpose by a small change to the product,
must make its test fail: the tests prove the invariants, not merely agree with the code.

Slow (one pytest child per mutation, about a minute in all): `pytest -m slow
tests/test_invariant_mutations.py`. Each mutation edits a copy of `src/`, never the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# (invariant, what is broken, [(file, old text, new text)], the test that must then fail)
# fmt: off
MUTATIONS = [
    (1, "consent ignored", [
        ("src/crossgroup/maison/export_rules.py",
         "WHEN cross_group_consent IS NOT TRUE THEN 'no_consent'", "WHEN FALSE THEN 'no_consent'")],
     "tests/export/test_rules.py::test_consent_restriction_and_consent_after_as_of"),
    (2, "window of 4 years", [
        ("src/crossgroup/maison/export_rules.py",
         "return as_of.replace(year=as_of.year - WINDOW_YEARS)",
         "return as_of.replace(year=as_of.year - WINDOW_YEARS - 1)")],
     "tests/export/test_rules.py::test_exact_three_year_boundary"),
    (3, "e-mail and phone shapes never match", [
        ("src/crossgroup/privacy/export_checks.py",
         'EMAIL_SHAPED = r"[^\\s@]@[^\\s@]"', 'EMAIL_SHAPED = r"[^\\s\\S]"'),
        ("src/crossgroup/privacy/export_checks.py",
         'PHONE_SHAPED = r"\\+?\\d(?:[\\s().\\/-]{0,2}\\d){6,}"', 'PHONE_SHAPED = r"[^\\s\\S]"')],
     "tests/export/test_invariant3_identifying.py::test_identifying_group_category_is_refused_exit_3"),
    (4, "secret files allowed in the processor dir", [
        ("src/crossgroup/crypto/keys.py",
         'if path.suffix == ".secret" or (kind is not None and not (',
         'if False and (kind is not None and not (')],
     "tests/group/test_ingest.py::test_secret_copied_into_processor_dir_is_refused"),
    (5, "return carries every maison's customers, check off", [
        ("src/crossgroup/group/release.py",
         "WHERE n.maison = ?", "WHERE n.maison = ? OR TRUE"),
        ("src/crossgroup/privacy/release_checks.py",
         "    if foreign:\n", "    if False:\n")],
     "tests/group/test_process_cli.py::test_each_return_holds_only_its_own_customers"),
    (6, "k-anonymity at k=1, check at k=1", [
        ("src/crossgroup/group/generalize.py",
         "anonymize_classes(classes, specs, k=policy.k,",
         "anonymize_classes(classes, specs, k=1,"),
        ("src/crossgroup/privacy/release_checks.py", "    k = policy.k\n", "    k = 1\n")],
     "tests/group/test_process_cli.py::test_every_returned_combination_covers_k_persons"),
    (6, "second_sector released as computed, not as generalized; check blind to it", [
        ("src/crossgroup/group/kanonymity.py",
         "    for h, labels, _step, _shift in specs:\n        code = pl.col(h.name)\n",
         "    for h, labels, _step, _shift in specs:\n        code = pl.col(h.name)\n"
         '        if h.name == "second_sector":\n'
         '            code = pl.col("origin") // (1 << _shift) % (1 << _bits(h))\n'),
        ("src/crossgroup/privacy/release_checks.py",
         "SELECT {columns} FROM persons GROUP BY {columns} HAVING",
         "SELECT 1 FROM persons GROUP BY {columns.replace(', second_sector', '')} HAVING")],
     "tests/group/test_process_cli.py::test_every_returned_combination_covers_k_persons"),
    (7, "no cell suppression, check at 1", [
        ("src/crossgroup/group/cells.py", "    k = int(k_aggregate)\n", "    k = 1\n"),
        ("src/crossgroup/privacy/release_checks.py",
         "maison, k_aggregate, maison_names = release.maison, policy.k_aggregate,",
         "maison, k_aggregate, maison_names = release.maison, 1,"),
        ("src/crossgroup/group/pipeline.py",
         "release.reports, k_aggregate=policy.k_aggregate, group_figures",
         "release.reports, k_aggregate=1, group_figures")],
     "tests/contracts/test_return_contract.py::test_every_return_aggregate_follows_the_cell_rule"),
    (7, "affinity cells keyed by pooled sectors; check blind to sector keys", [
        ("src/crossgroup/group/release.py",
         "partial(affinity_flags, sector_columns=sector_columns, released_sectors=released)",
         "partial(affinity_flags, sector_columns=sector_columns, released_sectors={})"),
        ("src/crossgroup/group/release.py",
         "names = released_names(sectors, policy.released_sectors)\n",
         "names = released_names(sectors, {})\n"),
        ("src/crossgroup/privacy/release_checks.py",
         "    aggregates = _sector_keys(release.aggregates)\n",
         "    aggregates = pl.DataFrame()\n"),
        ("src/crossgroup/privacy/release_checks.py",
         "    keys = _sector_keys(release.aggregates)\n", "    keys = pl.DataFrame()\n")],
     "tests/group/test_process_cli.py::test_affinity_cells_name_no_sector_released_under_a_coarser_name"),
    (8, "placeholder guard off", [
        ("src/crossgroup/group/resolve.py", "limit = int(max_records_per_token)", "limit = 10**9"),
        ("src/crossgroup/group/resolve.py", "limit = int(max_records_per_token)", "limit = 10**9")],
     "tests/group/test_resolve.py::test_placeholder_shared_by_four_records_of_one_maison_links_nobody"),
    (9, "working folder kept after the run", [
        ("src/crossgroup/io.py",
         "    try:\n        yield path\n    finally:\n"
         "        shutil.rmtree(path, ignore_errors=True)\n",
         "    yield path\n")],
     "tests/group/test_process_cli.py::test_only_encrypted_returns_reports_and_audit_remain"),
    (10, "DP mode publishes the exact counts under a stated margin", [
        ("src/crossgroup/privacy/noise.py",
         "return np.asarray(_measurement(self.scale, self.delta)(values), dtype=float)",
         "return np.asarray(values, dtype=float)")],
     "tests/group/test_dp_mode.py::test_two_runs_of_one_batch_draw_fresh_noise"),
    (10, "noisy cells released without their margin, check blind to it", [
        ("src/crossgroup/group/noisy_cells.py",
         'pl.lit(margin).alias("margin"),', 'pl.lit(None, dtype=pl.Float64).alias("margin"),'),
        ("src/crossgroup/privacy/release_checks.py",
         "problems += noise_problems(where, release.aggregates, policy.group_f",
         "problems += [] if 1 else noise_problems(where, release.aggregates, policy.group_f")],
     "tests/group/test_dp_mode.py::test_every_group_wide_cell_is_noisy_the_same_for_all_and_own_cells_stay_exact"),
    (10, "noise calibrated on the partition tables alone", [
        ("src/crossgroup/privacy/noise.py",
         "return math.sqrt(partitions + 2 * flags_per_person + other)",
         "return math.sqrt(partitions)")],
     "tests/group/test_dp_mode.py::test_one_person_moves_the_noisy_figures_no_more_than_the_noise_is_calibrated_for"),
    (10, "the yearly budget never refuses", [
        ("src/crossgroup/privacy/budget.py",
         "over = sorted(r for r, e in so_far.items() if e + epsilon > budget + 1e-9)",
         "over = []")],
     "tests/group/test_dp_mode.py::test_a_release_over_the_yearly_budget_is_refused_and_leaves_everything_as_it_was"),
]
# fmt: on


@pytest.mark.slow
@pytest.mark.parametrize(
    ("number", "what", "edits", "test"), MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS]
)
def test_breaking_an_invariant_fails_its_test(tmp_path, number, what, edits, test):
    src = Path(shutil.copytree(REPO / "src", tmp_path / "src"))
    for file, old, new in edits:
        path = tmp_path / file
        text = path.read_text(encoding="utf-8")
        assert old in text, f"invariant {number}: {file} no longer holds the mutated text"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-p",
         "no:cacheprovider", test],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(src)},
    )  # fmt: skip
    assert child.returncode == 1, (
        f"invariant {number} broken ({what}) and {test} still passes:\n{child.stdout[-2000:]}"
    )
    # failed on its own assertion, not errored on something the mutation broke by the way
    out = child.stdout
    assert f"FAILED {test}" in out and "ERROR " not in out, out[-2000:]
    assert any(w in out for w in ("AssertionError", "E       assert", "DID NOT RAISE")), out[-2000:]
    broken = ("SyntaxError", "ImportError", "NameError", "AttributeError", "TypeError")
    assert not any(f"E   {w}" in out or f"E       {w}" in out for w in broken), out[-2000:]
