"""One segment model across monthly batches: reused, refitted when it should be, matched so
ids survive, saved without anything about a single person (issue 15, DESIGN §5.9)."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_segment import planted

from crossgroup.config import GroupConfig, load_taxonomy
from crossgroup.engine import DuckDBEngine
from crossgroup.group import model_state
from crossgroup.group.model_state import ModelStateError, segment_series
from crossgroup.privacy.policy import ReleasePolicy

GROUP = GroupConfig(maisons=("aurelle",), k=10, min_segments=3, max_segments=6,
                    sample_size=600, random_state=4)  # fmt: skip
SEPTEMBER, OCTOBER = date(2026, 9, 30), date(2026, 10, 31)


def run(features: pl.DataFrame, saved, *, as_of=SEPTEMBER, group=GROUP):
    """One batch's segment stage over a processor state holding `saved` (or nothing); its
    persons' segments, and the outcome."""
    with tempfile.TemporaryDirectory() as party, DuckDBEngine() as engine:
        if saved is not None:
            model_state.state_path(Path(party)).write_bytes(model_state.encode(saved))
        engine.register("features", features)
        taxonomy = load_taxonomy()
        policy = ReleasePolicy.for_batch(group, taxonomy, sector_maisons=None, maison_names={})
        outcome = segment_series(engine, "features", group=group, policy=policy,
                                 taxonomy=taxonomy, party_dir=Path(party), as_of=as_of)  # fmt: skip
        got = engine.to_polars(f"SELECT person_id, segment FROM {outcome.segments}")
    return got.sort("person_id"), outcome


@pytest.fixture(scope="module")
def first():
    features, _ = planted(n_per=150)
    segments, outcome = run(features, None)
    assert not outcome.decision.reuse and outcome.decision.reason == "no saved model"
    assert outcome.state is not None and outcome.digest == model_state.digest(outcome.state)
    return features, segments, outcome


def test_the_next_month_reuses_the_model_and_every_unchanged_person_keeps_their_segment(first):
    features, segments, outcome = first
    again, reused = run(features, outcome.state, as_of=OCTOBER)
    assert reused.decision.reuse and reused.state is None  # nothing new to save
    assert reused.digest == outcome.digest
    assert again.equals(segments)
    assert reused.model.labels_ == outcome.model.labels_
    assert reused.decision.drift == {"mix_psi": 0.0, "distance_growth": 0.0}


def test_a_refit_keeps_the_ids_of_the_segments_it_finds_again(first):
    """Another seed renumbers KMeans' clusters; matching gives each its saved id back."""
    features, segments, outcome = first
    reseeded = dataclasses.replace(GROUP, random_state=99)
    again, refitted = run(features, outcome.state, as_of=OCTOBER, group=reseeded)
    assert not refitted.decision.reuse and "settings" in refitted.decision.reason
    assert refitted.new_segments == [] and refitted.retired_segments == []
    same = (again["segment"] == segments["segment"]).mean()
    assert same > 0.99
    assert refitted.model.labels_ == outcome.model.labels_


def test_matching_recovers_ids_from_permuted_centres(first):
    """The saved ids of a model whose centres are listed in another order come back."""
    _, _, outcome = first
    state = json.loads(model_state.encode(outcome.state))
    ids = [s["id"] for s in state["segments"]]
    shuffled = dict(state, segments=[dict(s, id=ids[(i + 1) % len(ids)])
                                     for i, s in enumerate(state["segments"])])  # fmt: skip
    mapping, new, retired = model_state.match(shuffled, outcome.model)
    assert new == [] and retired == []
    assert mapping == {ids[i]: ids[(i + 1) % len(ids)] for i in range(len(ids))}


def test_a_new_kind_of_customer_gets_a_new_id_and_the_gone_one_is_retired(first):
    features, _, outcome = first
    # the planted archetype of segment 1 leaves; a new one (all fashion, big spenders) comes
    seg = run(features, None)[0]
    kept = features.filter(seg["segment"] != 1)
    newcomers = kept.head(450).with_columns(
        pl.col("person_id") + 10_000,
        total_spend_eur=pl.lit(500_000.0),
        n_maisons=pl.lit(6, dtype=features.schema["n_maisons"]),
        online_share=pl.lit(0.5),
        boutique_share=pl.lit(0.5),
        **{c: pl.lit(1.0 if c == "share_fashion_leather_goods" else 0.0)
           for c in features.columns if c.startswith("share_")},
    )  # fmt: skip
    _, refitted = run(pl.concat([kept, newcomers]), outcome.state, as_of=OCTOBER)
    assert not refitted.decision.reuse
    assert "drifted" in refitted.decision.reason or "moved away" in refitted.decision.reason
    assert refitted.retired_segments == [1]
    assert refitted.new_segments == [outcome.state["next_id"]]  # ids are never reused
    assert refitted.state["retired"] == [1]


def test_a_model_too_old_is_refitted_and_never_means_never(first):
    features, _, outcome = first
    _, old = run(features, outcome.state, as_of=date(2027, 11, 30))
    assert not old.decision.reuse and "14 months old" in old.decision.reason
    never = dataclasses.replace(GROUP, refit="never")
    _, kept = run(features, outcome.state, as_of=date(2027, 11, 30), group=never)
    assert kept.decision.reuse
    with pytest.raises(ModelStateError, match='refit = "never"'):
        run(features.drop("share_wines_spirits"), outcome.state, group=never)


def test_refit_always_refits(first):
    features, _, outcome = first
    _, refitted = run(features, outcome.state, group=dataclasses.replace(GROUP, refit="always"))
    assert not refitted.decision.reuse and refitted.decision.reason == 'refit = "always"'


def test_the_saved_model_holds_means_over_k_persons_and_nothing_about_one_person(first):
    features, _, outcome = first
    state = outcome.state
    assert set(state) == {"format", "fitted_as_of", "spec", "scaler", "segments", "mix",
                          "mean_distance", "next_id", "retired", "quality"}  # fmt: skip
    assert {k for s in state["segments"] for k in s} == {"id", "label", "description", "centre"}
    text = model_state.encode(state).decode()
    assert "person_id" not in text and "maison_ref" not in text
    # no centre is a person: each lies away from every person's own point
    z = outcome.model.scaler_.transform(_design(outcome, features))
    for centre in np.array([s["centre"] for s in state["segments"]]):
        assert np.min(np.linalg.norm(z - centre, axis=1)) > 1e-6
    sizes = state["quality"]["sizes"]
    assert min(sizes.values()) >= GROUP.k
    # a k above the smallest segment: the model is used for the batch, never saved
    strict = dataclasses.replace(GROUP, k=min(sizes.values()) + 1)
    _, refused = run(features, None, group=strict)
    assert refused.state is None and refused.digest is None
    assert "fewer than k" in refused.not_saved


def _design(outcome, features):
    from crossgroup.group.segment import _design_matrix

    return _design_matrix(features, outcome.model.sectors_)


def test_a_saved_model_that_is_not_ours_is_refused(tmp_path):
    (tmp_path / model_state.STATE_FILE).write_text('{"format": "something else"}')
    with pytest.raises(ModelStateError, match="not in crossgroup-segment-model/1"):
        model_state.load(tmp_path)
    (tmp_path / model_state.STATE_FILE).write_text('{"format": "crossgroup-segment-model/1"}')
    with pytest.raises(ModelStateError, match="incomplete"):
        model_state.load(tmp_path)
    assert model_state.load(tmp_path / "none") is None


def test_the_model_is_saved_with_its_value_cuts_rounded_to_no_ones_amount(first, tmp_path):
    """What is committed: the model plus the value-tier cuts its batch used (DP mode counts a
    later batch under them), each to three significant figures, so no person's exact total
    spend (a cut is an order statistic) is kept; the digest is of what is written."""
    import json

    _, _, outcome = first
    written = {}

    class Tx:
        def put(self, path, data):
            written[path] = data

    staged = dataclasses.replace(outcome)
    staged.stage(Tx(), tmp_path, (1234.5678, 5678.91, 12345.678))
    (data,) = written.values()
    state = json.loads(data)
    assert set(state) == {"format", "fitted_as_of", "spec", "scaler", "segments", "mix",
                          "mean_distance", "next_id", "retired", "quality",
                          "value_cuts"}  # fmt: skip
    assert state["value_cuts"] == [1230.0, 5680.0, 12300.0]
    assert staged.digest == model_state.digest(state) != outcome.digest
    (tmp_path / model_state.STATE_FILE).write_bytes(data)
    assert model_state.load(tmp_path)["value_cuts"] == [1230.0, 5680.0, 12300.0]
    (tmp_path / model_state.STATE_FILE).write_bytes(data.replace(b"5680.0", b"99999.0"))
    with pytest.raises(model_state.ModelStateError, match="bad value_cuts"):
        model_state.load(tmp_path)
