"""DP mode's pieces (DESIGN §5.10): OpenDP's calibration, the noisy group cells, the release
check that refuses an exact group cell in DP mode, and the rolling privacy budget."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest

from crossgroup.errors import PrivacyCheckError
from crossgroup.group.noisy_cells import noisy_group_cells
from crossgroup.privacy import budget
from crossgroup.privacy.noise import calibrate, cells_sensitivity
from crossgroup.privacy.release_checks import noise_problems

SECTORS = ["Fashion", "Beauty", "Wines"]
K_AGG = 50


def counted(sizes: dict[tuple[str, str], int]) -> pl.DataFrame:
    """Counted persons: (segment, sector with an affinity) -> persons; one band each else."""
    return pl.DataFrame(
        [
            {"segment_label": seg, "value_tier": "Core", "channel_preference": "Boutique",
             "breadth": "1 maison", **{s: s == sector for s in SECTORS}, "weight": n}
            for (seg, sector), n in sizes.items()
        ]
    )  # fmt: skip


def grid(segments=("A", "B", "C")) -> pl.DataFrame:
    rows = [("segment_mix", s, "") for s in segments]
    rows += [("value_tiers", v, "") for v in ("Entry", "Core", "High", "Top")]
    rows += [("channel_mix", v, "") for v in ("Boutique", "Online", "Omnichannel")]
    rows += [("breadth", v, "") for v in ("1 maison", "2 maisons", "3+ maisons")]
    rows += [("sector_affinity", s, "") for s in SECTORS]
    rows += [("segment_sector_affinity", g, s) for g in segments for s in SECTORS]
    return pl.DataFrame(rows, schema=["table", "row_key", "col_key"], orient="row")


NOISE = calibrate(0.5, 1e-9, cells_sensitivity(4, len(SECTORS)))


def test_opendp_calibrates_to_the_asked_epsilon_and_states_the_margin():
    assert NOISE.epsilon <= 0.5 and NOISE.epsilon == pytest.approx(0.5, rel=1e-3)
    assert NOISE.sensitivity == pytest.approx(math.sqrt(4 + 2 * 3))
    # 95 % of Gaussian draws lie within 1.96 standard deviations
    assert NOISE.margin == pytest.approx(1.96 * NOISE.scale, rel=0.01)
    # more epsilon, less noise; one more affinity flag, more noise
    assert calibrate(1.0, 1e-9, NOISE.sensitivity).scale < NOISE.scale
    assert calibrate(0.5, 1e-9, cells_sensitivity(4, 4)).scale > NOISE.scale


def test_the_noise_is_centred_with_the_stated_spread():
    draws = NOISE.noisy([1000.0] * 20_000) - 1000.0
    assert abs(draws.mean()) < 5 * NOISE.scale / math.sqrt(draws.size)
    inside = np.mean(np.abs(draws) <= NOISE.margin)
    assert 0.94 < inside < 0.96


def test_every_public_key_is_a_cell_whoever_is_in_the_batch():
    """The set of cells published or withheld never depends on who is in the data: a key with
    nobody is a noisy zero, withheld like any small cell, and says so."""
    big = noisy_group_cells(counted({("A", "Fashion"): 5000}), grid(), SECTORS, NOISE, K_AGG)
    other = noisy_group_cells(counted({("C", "Wines"): 300}), grid(), SECTORS, NOISE, K_AGG)
    keys = ["table", "row_key", "col_key"]
    cells = [f.filter(pl.col("table") != "suppression").select(keys) for f in (big, other)]
    assert cells[0].equals(cells[1]) and cells[0].height == grid().height
    empty = big.filter((pl.col("table") == "segment_mix") & (pl.col("row_key") == "B")).row(
        0, named=True
    )
    assert empty["suppressed"] and empty["persons"] is None and "noisy count" in empty["note"]


def test_a_cell_is_published_only_at_k_aggregate_plus_the_margin_with_shares_of_noisy_totals():
    cells = noisy_group_cells(
        counted({("A", "Fashion"): 5000, ("B", "Beauty"): 3000, ("C", "Wines"): 40}),
        grid(), SECTORS, NOISE, K_AGG,
    )  # fmt: skip
    body = cells.filter(pl.col("table") != "suppression")
    published = body.filter(~pl.col("suppressed"))
    assert (published["persons"] >= K_AGG + NOISE.margin - 0.5).all()
    assert (body["margin"] == NOISE.margin).all()
    mix = published.filter(pl.col("table") == "segment_mix")
    assert set(mix["row_key"]) == {"A", "B"}  # C's 40 persons are under the noisy threshold
    assert mix["share"].sum() == pytest.approx(1.0, abs=0.05)
    # an affinity row of a withheld segment is withheld with it
    c_rows = body.filter(
        (pl.col("table") == "segment_sector_affinity") & (pl.col("row_key") == "C")
    )
    assert c_rows["suppressed"].all()
    said = cells.filter(pl.col("table") == "suppression")
    assert set(said["row_key"]) >= {"segment_mix", "segment_sector_affinity"}
    assert said["note"].str.contains("withheld: noisy count under").all()


def test_the_release_check_refuses_an_exact_group_cell_in_dp_mode_and_a_margin_in_threshold():
    noisy = noisy_group_cells(counted({("A", "Fashion"): 5000}), grid(), SECTORS, NOISE, K_AGG)
    assert noise_problems("return", noisy, "dp", K_AGG) == []
    exact = noisy.with_columns(margin=pl.lit(None, dtype=pl.Float64))
    assert "without noise in DP mode (10)" in noise_problems("return", exact, "dp", K_AGG)[0]
    assert "exact cell(s) carry a margin" in noise_problems("return", noisy, "threshold", K_AGG)[0]
    low = noisy.with_columns(
        persons=pl.when(pl.col("suppressed")).then(None).otherwise(K_AGG)
    )  # published at k_aggregate: under the noisy threshold
    assert "under the noisy threshold" in noise_problems("return", low, "dp", K_AGG)[-1]


# -- the rolling budget ---------------------------------------------------------------------


def spend(party, as_of: str, epsilon: float, recipients=("aurelle", budget.GROUP)):
    lines = budget.records(
        batch_id=as_of[:7], as_of=dt.date.fromisoformat(as_of),
        spends=dict.fromkeys(recipients, epsilon),
        noise={"delta": 1e-9, "mechanism": "test", "noise_scale": 1.0},
        now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    with (party / budget.LEDGER).open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in lines)


def test_the_budget_counts_releases_less_than_a_year_away_on_either_side(tmp_path):
    spend(tmp_path, "2025-06-30", 3.0)  # exactly 365 days before: out of the window
    spend(tmp_path, "2025-07-01", 1.0)
    spend(tmp_path, "2027-06-29", 2.0)  # a later batch processed first: in the window
    spent = budget.spent(tmp_path, ["aurelle", "kessler"], dt.date(2026, 6, 30))
    assert spent == {"aurelle": 3.0, "kessler": 0.0}
    budget.refuse_over_budget(
        tmp_path, ["aurelle"], dt.date(2026, 6, 30), epsilon=3.0, budget=6.0
    )  # 3 + 3 fits exactly
    with pytest.raises(PrivacyCheckError) as e:
        budget.refuse_over_budget(
            tmp_path, ["kessler", "aurelle"], dt.date(2026, 6, 30), epsilon=3.5, budget=6.0
        )
    assert e.value.exit_code == 3 and "would take aurelle past the yearly budget of 6" in str(
        e.value
    )


def test_a_damaged_budget_ledger_refuses_rather_than_reads_as_empty(tmp_path):
    (tmp_path / budget.LEDGER).write_text('{"recipient": "aurelle"}\n', "utf-8")
    with pytest.raises(Exception, match=r"privacy-budget ledger .* is damaged at line 1"):
        budget.spent(tmp_path, ["aurelle"], dt.date(2026, 6, 30))


def test_the_register_summary_totals_the_year_and_all_time(tmp_path):
    spend(tmp_path, "2025-05-31", 0.5)
    spend(tmp_path, "2026-05-31", 0.5)
    spend(tmp_path, "2026-06-30", 0.5, recipients=("aurelle",))
    summary = budget.spend_summary(tmp_path)
    assert summary["latest_as_of"] == "2026-06-30"
    assert summary["by_recipient"]["aurelle"] == {
        "releases": 3, "epsilon_total": 1.5, "epsilon_within_a_year": 1.0,
    }  # fmt: skip
    assert summary["by_recipient"][budget.GROUP]["epsilon_within_a_year"] == 0.5


def test_other_sector_spend_is_noisy_in_dp_mode_with_shares_of_the_noisy_base():
    """A maison's customers' spend at the other maisons: counts, summed shares and the base are
    each noised; a sector is published at k_aggregate plus the margin, with share in [0, 1]."""
    from crossgroup.group.cells import other_sector_cells
    from crossgroup.group.noisy_cells import noisy_other_sector

    spend = pl.DataFrame(
        {"sector": ["Fashion", "Beauty", "Wines"], "persons": [1800, 900, 10],
         "share_sum": [700.0, 250.0, 1.5], "base": [2000, 2000, 2000]}
    )  # fmt: skip
    noise = calibrate(0.5, 1e-9, cells_sensitivity(4, 3, other_sectors=2))
    cells = noisy_other_sector(other_sector_cells(spend, "Fashion"), noise, K_AGG)
    body = cells.filter(pl.col("table") == "other_sector_spend").sort("row_key")
    assert body["row_key"].to_list() == ["Beauty", "Wines"]  # its own sector left out
    beauty, wines = body.rows(named=True)
    assert not beauty["suppressed"] and abs(beauty["persons"] - 900) < 6 * noise.scale
    assert abs(beauty["share"] - 250 / 2000) < 0.1 and beauty["margin"] == noise.margin
    assert wines["suppressed"] and wines["persons"] is None and wines["share"] is None
    assert noise_problems("return", cells, "dp", K_AGG) == []
    assert "own customers carry noise" not in " ".join(noise_problems("return", cells, "dp", K_AGG))
    exact = cells.with_columns(margin=pl.lit(None, dtype=pl.Float64))
    assert "without noise in DP mode" in noise_problems("return", exact, "dp", K_AGG)[0]


def test_a_release_recorded_within_the_year_counts_whatever_its_as_of_date(tmp_path):
    """An as-of date set far from the others cannot slip a release past the budget: what was
    recorded less than a year before now counts too."""
    spend(tmp_path, "2026-06-30", 5.5)  # recorded 2026-12-01
    far = dt.date(2028, 1, 31)
    assert budget.spent(tmp_path, ["aurelle"], far) == {"aurelle": 0.0}
    now = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    assert budget.spent(tmp_path, ["aurelle"], far, now) == {"aurelle": 5.5}
    with pytest.raises(PrivacyCheckError, match="past the yearly budget of 6"):
        budget.refuse_over_budget(tmp_path, ["aurelle"], far, epsilon=0.6, budget=6.0, now=now)
    later = dt.datetime(2027, 12, 2, tzinfo=dt.UTC)
    assert budget.spent(tmp_path, ["aurelle"], far, later) == {"aurelle": 0.0}


def test_an_exact_release_within_a_year_of_a_dp_one_is_refused(tmp_path):
    """Switching to threshold mode would publish the exact counts the noise protected."""
    from types import SimpleNamespace

    spend(tmp_path, "2026-06-30", 0.5)
    batch = SimpleNamespace(maisons=("aurelle",), as_of=dt.date(2026, 7, 31))
    exact = SimpleNamespace(group_figures="threshold")
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    with pytest.raises(PrivacyCheckError, match="an exact release now would undo"):
        budget.refuse_release(tmp_path, batch, exact, now)
    a_year_on = SimpleNamespace(maisons=("aurelle",), as_of=dt.date(2027, 8, 31))
    budget.refuse_release(tmp_path, a_year_on, exact, dt.datetime(2027, 12, 2, tzinfo=dt.UTC))
