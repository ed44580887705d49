"""The segment model a series of monthly batches shares: saved, reused, refitted, matched.

A batch saves its model in the processor's own state (its party directory, beside the replay
ledger) as readable JSON: the feature spec, the scaler, each segment's centre, label and
description, the segment mix and the mean distance to the centres. Every figure is a mean
over many persons: a segment of fewer than `k` persons in the fit sample is not saved
(DESIGN §5.9). The next batch reuses the model, so a person whose purchases did not change
keeps their segment, unless `[segmentation] refit` says otherwise (docs/segmentation.md):

- "always" refits every batch; "never" reuses the saved model whatever it costs (and fails
  when the features no longer fit it); "auto" refits when the feature spec, taxonomy,
  segmentation settings or released sector names changed, when the model is older than
  `max_model_age_months`, or when the batch drifted from it: the population stability index
  of the segment mix above `max_mix_psi`, or the mean distance to the nearest centre grown
  by more than `max_distance_growth`.

On a refit, the new segments are matched to the saved ones (Hungarian matching on the
distance between centres, in the new scaling): a match within `MATCH_DISTANCE` keeps the
saved id, so "segment 3" goes on meaning the same customers; other segments get new ids, and
saved ones left unmatched are retired. Ids are never reused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler

from crossgroup.errors import InputError
from crossgroup.group.segment import NUMERIC, configured_model, fit_on_sample, segment_table

STATE_FILE = "segment-model.json"
FORMAT = "crossgroup-segment-model/1"
# Bumped whenever segment._design_matrix changes what a feature column means.
DESIGN_VERSION = 1
# Largest distance, in standard deviations of the new fit, between a new centre and a saved
# one for the new segment to keep the saved id.
MATCH_DISTANCE = 1.0


SAVED_KEYS = frozenset(
    {"fitted_as_of", "spec", "scaler", "segments", "mix", "mean_distance", "next_id", "retired",
     "quality"}
)  # fmt: skip
SEGMENT_KEYS = frozenset({"id", "label", "description", "centre"})


class ModelStateError(InputError):
    """The saved model cannot serve this batch (bad file, or refit = "never" on new features)."""


@dataclass(frozen=True)
class Decision:
    """Whether the batch reuses the saved model, and why (or why not), for audit and report."""

    reuse: bool
    reason: str
    drift: Mapping[str, float] = field(default_factory=dict)


def state_path(party_dir: Path) -> Path:
    return Path(party_dir) / STATE_FILE


def load(party_dir: Path) -> dict | None:
    """The saved model, or None when this processor has not saved one yet."""
    path = state_path(party_dir)
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelStateError(f"the saved segment model {path} cannot be read") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelStateError(f"the saved segment model {path} is not in {FORMAT} format")
    segments = state.get("segments")
    if not (
        set(state) >= SAVED_KEYS
        and isinstance(segments, list)
        and segments
        and all(isinstance(s, dict) and set(s) >= SEGMENT_KEYS for s in segments)
    ):
        raise ModelStateError(f"the saved segment model {path} is incomplete: refit or remove it")
    cuts = state.get("value_cuts", [0.0] * 3)  # a model saved before cuts were kept
    numbers = isinstance(cuts, list) and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in cuts
    )
    if not (numbers and len(cuts) == 3 and cuts == sorted(cuts)):
        raise ModelStateError(f"the saved segment model {path} has bad value_cuts: refit it")
    return state


def encode(state: Mapping[str, Any]) -> bytes:
    """The file's bytes: canonical JSON, so equal models have equal digests."""
    return (json.dumps(state, sort_keys=True, indent=1) + "\n").encode("utf-8")


def digest(state: Mapping[str, Any]) -> str:
    return hashlib.sha256(encode(state)).hexdigest()


def spec_of(
    features: list[str], *, taxonomy, settings: Mapping[str, Any], released: Mapping[str, str]
) -> dict:
    """What a model's meaning rests on: features, design, taxonomy, settings, and the sector
    names its labels may use."""
    sectors = [[s.name, list(s.categories), s.catch_all, s.family] for s in taxonomy.sectors]
    return {
        "design": DESIGN_VERSION,
        "features": list(features),
        "taxonomy": hashlib.sha256(json.dumps(sectors).encode()).hexdigest(),
        "settings": dict(settings),
        "released_sectors": dict(sorted(released.items())),
    }


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def plan(
    saved: Mapping | None, spec: Mapping, *, refit: str, as_of: date, max_age: int
) -> Decision:
    """Reuse or refit, before any drift is measured."""
    if saved is None:
        return Decision(False, "no saved model")
    changed = [key for key in spec if saved["spec"].get(key) != spec[key]]
    if refit == "always":
        return Decision(False, 'refit = "always"')
    if changed:
        if refit == "never":
            raise ModelStateError(
                f'refit = "never", but the saved segment model no longer fits this batch: '
                f'its {", ".join(changed)} changed; refit it once (refit = "auto")'
            )
        return Decision(False, f"{', '.join(changed)} changed since the model was fitted")
    age = _months_between(date.fromisoformat(saved["fitted_as_of"]), as_of)
    if refit == "auto" and age > max_age:
        return Decision(False, f"the model is {age} months old (max_model_age_months {max_age})")
    return Decision(True, f"saved model reused ({age} months old)")


def drift(saved: Mapping, mix: Mapping[int, int], mean_distance: float) -> dict[str, float]:
    """Population stability index of the segment mix, and the growth of the mean distance
    to the nearest centre, between the fit and this batch."""
    ids = [s["id"] for s in saved["segments"]]
    total = max(sum(mix.values()), 1)
    now = np.array([max(mix.get(i, 0) / total, 1e-4) for i in ids])
    then = np.array([max(float(saved["mix"][str(i)]), 1e-4) for i in ids])
    psi = float(np.sum((now - then) * np.log(now / then)))
    growth = mean_distance / saved["mean_distance"] - 1 if saved["mean_distance"] else 0.0
    return {"mix_psi": round(psi, 6), "distance_growth": round(float(growth), 6)}


def drifted(figures: Mapping[str, float], *, max_psi: float, max_growth: float) -> str | None:
    if figures["mix_psi"] > max_psi:
        return f"segment mix drifted (PSI {figures['mix_psi']:.3f} > {max_psi})"
    if figures["distance_growth"] > max_growth:
        return (
            f"persons moved away from the centres (mean distance +"
            f"{figures['distance_growth']:.0%} > {max_growth:.0%})"
        )
    return None


def restore(saved: Mapping, model) -> Any:
    """`model` (an unfitted SegmentModel) given the saved scaler, centres, ids and words."""
    scaler = StandardScaler()
    scaler.mean_ = np.array(saved["scaler"]["mean"], dtype=np.float64)
    scaler.scale_ = np.array(saved["scaler"]["scale"], dtype=np.float64)
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = len(scaler.mean_)
    scaler.n_samples_seen_ = int(saved["quality"].get("fit_sample", 0))
    segments = saved["segments"]
    model.scaler_ = scaler
    model.centres_ = np.array([s["centre"] for s in segments], dtype=np.float64)
    model.segment_ids_ = np.array([s["id"] for s in segments], dtype=np.int32)
    model.n_segments_ = len(segments)
    model.feature_names_in_ = np.array(saved["spec"]["features"], dtype=object)
    model.sectors_ = [f for f in saved["spec"]["features"] if f.startswith("share_")]
    model.labels_ = {int(s["id"]): s["label"] for s in segments}
    model.descriptions_ = {int(s["id"]): s["description"] for s in segments}
    model.quality_ = dict(saved["quality"])
    return model


def match(saved: Mapping, model) -> tuple[dict[int, int], list[int], list[int]]:
    """New segment id -> id it keeps or gets; the new ids; the saved ids retired.

    Saved centres are taken back to feature units with the saved scaler and into the new
    fit's scaling; the assignment minimizing the total distance is kept pair by pair when
    the pair is within MATCH_DISTANCE.
    """
    from scipy.optimize import linear_sum_assignment

    before = np.array([s["centre"] for s in saved["segments"]], dtype=np.float64)
    before_ids = [int(s["id"]) for s in saved["segments"]]
    raw = before * np.array(saved["scaler"]["scale"]) + np.array(saved["scaler"]["mean"])
    before_z = model.scaler_.transform(raw)
    cost = np.linalg.norm(model.centres_[:, None, :] - before_z[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    kept = {
        int(model.segment_ids_[r]): before_ids[c]
        for r, c in zip(rows, cols, strict=True)
        if cost[r, c] <= MATCH_DISTANCE
    }
    next_id = int(saved["next_id"])
    mapping, new = {}, []
    for segment in (int(s) for s in model.segment_ids_):
        if segment in kept:
            mapping[segment] = kept[segment]
        else:
            mapping[segment], next_id = next_id, next_id + 1
            new.append(mapping[segment])
    retired = sorted(set(before_ids) - set(kept.values()))
    return mapping, new, retired


def renumber(model, mapping: Mapping[int, int]) -> None:
    """Give a fitted model's segments the ids `match` chose (labels, sizes and all)."""
    model.segment_ids_ = np.array([mapping[int(s)] for s in model.segment_ids_], dtype=np.int32)
    model.labels_ = {mapping[int(s)]: v for s, v in model.labels_.items()}
    model.descriptions_ = {mapping[int(s)]: v for s, v in model.descriptions_.items()}
    sizes = model.quality_.get("sizes", {})
    model.quality_["sizes"] = {mapping[int(s)]: n for s, n in sizes.items()}


def state_of(
    model,
    *,
    spec: Mapping,
    as_of: date,
    mix: Mapping[int, int],
    mean_distance: float,
    next_id: int,
    retired: list[int],
    k: int,
) -> dict:
    """The JSON to save. Refused (ModelStateError) when a segment holds fewer than `k`
    persons of the fit sample: its centre would be a mean over too few persons."""
    sizes = {int(s): int(n) for s, n in model.quality_.get("sizes", {}).items()}
    small = sorted(s for s in model.segment_ids_ if sizes.get(int(s), 0) < k)
    if small:
        raise ModelStateError(
            f"segment(s) {', '.join(map(str, small))} hold fewer than k = {k} persons of the "
            "fit sample: the model is not saved"
        )
    total = max(sum(mix.values()), 1)
    quality = {key: v for key, v in model.quality_.items() if key != "silhouette_by_k"}
    return {
        "format": FORMAT,
        "fitted_as_of": as_of.isoformat(),
        "spec": dict(spec),
        "scaler": {"mean": model.scaler_.mean_.tolist(), "scale": model.scaler_.scale_.tolist()},
        "segments": [
            {
                "id": int(s),
                "label": model.labels_[int(s)],
                "description": model.descriptions_[int(s)],
                "centre": model.centres_[i].tolist(),
            }
            for i, s in enumerate(model.segment_ids_)
        ],
        "mix": {str(int(s)): mix.get(int(s), 0) / total for s in model.segment_ids_},
        "mean_distance": float(mean_distance),
        "next_id": int(next_id),
        "retired": sorted(int(r) for r in retired),
        "quality": {**quality, "sizes": {str(s): n for s, n in sizes.items()}},
    }


@dataclass
class SeriesOutcome:
    """What the batch's segment stage did with the series' model."""

    segments: str  # the engine table (person_id, segment, distance)
    model: Any  # the fitted or restored SegmentModel
    decision: Decision
    state: dict | None  # the model to save; None: the saved one stays (or none is saved)
    digest: str | None  # of the model the batch used, when it is or was saved
    new_segments: list[int] = field(default_factory=list)
    retired_segments: list[int] = field(default_factory=list)
    not_saved: str | None = None  # why a refitted model is not saved
    fitted_as_of: str = ""

    saved_cuts: list[float] | None = None  # the value-tier cuts saved with a reused model

    def stage(self, tx, party_dir: Path, cuts: tuple[float, ...]) -> None:
        """Stage the model to save, with the value-tier cuts its batch used, in the batch's
        transaction (`commit.Transaction`): it is saved with the batch's outputs, or not at
        all. DP mode counts a later batch that reuses the model under these cuts."""
        if self.state is not None:
            # a cut is an order statistic, one person's total spend: kept to three significant
            # figures, it is a band edge of the group and no one's amount
            kept = [float(f"{float(c):.3g}") for c in cuts]
            self.state = {**self.state, "value_cuts": kept}
            self.digest = digest(self.state)
            tx.put(state_path(party_dir), encode(self.state))

    def audit(self) -> dict:
        """The audit entry's figures about the model: digests, ids and reasons only."""
        return {
            "digest": self.digest,
            "fitted_as_of": self.fitted_as_of,
            "reused": self.decision.reuse,
            "reason": self.decision.reason,
            "drift": dict(self.decision.drift),
            "new_segments": self.new_segments,
            "retired_segments": self.retired_segments,
            "saved": self.state is not None,
            "not_saved": self.not_saved,
        }


def segment_series(
    engine, features: str, *, group, policy, taxonomy, party_dir: Path, as_of: date
) -> SeriesOutcome:
    """Segment the batch with the series' model saved in `party_dir`: reuse it unless the
    plan or the drift says refit; a refit (the batch's configured model, labelled under
    `policy`) is matched to it."""
    saved = load(party_dir)
    fresh = partial(configured_model, group, policy)
    model = fresh()
    columns = engine.to_polars(f"SELECT * FROM {features} LIMIT 0").columns
    spec = spec_of(
        [*NUMERIC, *(c for c in columns if c.startswith("share_"))],
        taxonomy=taxonomy,
        settings={
            "n_segments": group.n_segments,
            "min_segments": group.min_segments,
            "max_segments": group.max_segments,
            "sample_size": group.sample_size,
            "random_state": group.random_state,
        },
        released=model.released_sectors or {},
    )
    refit, max_age = group.refit, group.max_model_age_months
    decision = plan(saved, spec, refit=refit, as_of=as_of, max_age=max_age)
    if decision.reuse:
        segments = segment_table(engine, features, restore(saved, model))
        figures = drift(saved, *_mix(engine, segments))
        reason = None
        if refit == "auto":
            reason = drifted(
                figures, max_psi=group.max_mix_psi, max_growth=group.max_distance_growth
            )
        if reason is None:
            reused = Decision(True, decision.reason, figures)
            return SeriesOutcome(
                segments, model, reused, None, digest(saved), fitted_as_of=saved["fitted_as_of"],
                saved_cuts=saved.get("value_cuts"),
            )  # fmt: skip
        engine.drop(segments)
        decision, model = Decision(False, reason, figures), fresh()
    fit_on_sample(engine, features, model)
    new, retired, next_id = [int(s) for s in model.segment_ids_], [], model.n_segments_ + 1
    if saved is not None:
        mapping, new, retired = match(saved, model)
        renumber(model, mapping)
        next_id = max(int(saved["next_id"]), max(mapping.values()) + 1)
    segments = segment_table(engine, features, model)
    mix, mean_distance = _mix(engine, segments)
    outcome = SeriesOutcome(segments, model, decision, None, None, new, retired,
                            fitted_as_of=as_of.isoformat())  # fmt: skip
    try:
        outcome.state = state_of(
            model, spec=spec, as_of=as_of, mix=mix, mean_distance=mean_distance,
            next_id=next_id, retired=[*(saved or {}).get("retired", []), *retired], k=group.k,
        )  # fmt: skip
        outcome.digest = digest(outcome.state)
    except ModelStateError as e:
        outcome.not_saved = str(e)
    return outcome


def _mix(engine, segments: str) -> tuple[dict[int, int], float]:
    """Persons per segment, and the mean distance to their centre, over the whole batch. The
    distances are summed as whole micro-units, so every engine gets the same figure (and the
    same saved model) whatever order it adds them in."""
    rows = engine.to_polars(
        f"SELECT segment, count(*) AS persons, "
        f"sum(CAST(round(distance * 1000000) AS BIGINT)) AS micros FROM {segments} "
        "GROUP BY segment"
    )
    persons = int(rows["persons"].sum() or 0)
    mean = int(rows["micros"].sum() or 0) / 1e6 / persons if persons else 0.0
    return {int(s): int(n) for s, n in zip(rows["segment"], rows["persons"], strict=True)}, mean
