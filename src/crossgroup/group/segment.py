"""Preference segments: a seeded, reproducible scikit-learn-style estimator (STYLE.md).

KMeans on standardized, transformed person features (log value and frequency, recency,
tenure, breadth, channel and season shares, sector spend shares). The number of segments is
fixed or chosen by the best mean silhouette over [min_segments, max_segments] on a sample;
the model is fitted on a sample and predicts for everyone. Each segment gets a unique label in
plain words from its profile, and a short description for the glossary
(`group/segment_labels.py`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    pairwise_distances,
    pairwise_distances_argmin_min,
    silhouette_score,
)
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from crossgroup.config import GroupConfig, Taxonomy, load_taxonomy
from crossgroup.engine import Engine
from crossgroup.errors import InputError
from crossgroup.group.features import BASE_COLUMNS, sector_slug
from crossgroup.group.segment_labels import describe, profiles
from crossgroup.privacy.policy import ReleasePolicy

# Every per-person number the features stage computes, except the id and the sector count.
NUMERIC = tuple(c for c in BASE_COLUMNS if c not in ("person_id", "n_sectors"))


def _design_matrix(features: pl.DataFrame, sectors: list[str]) -> np.ndarray:
    """Transform features so distances mean something: logs for counts and money.

    Recency and tenure are left out on purpose: they say when a person last bought, not what
    they prefer, and on synthetic truth they split archetypes (docs/segmentation.md).
    """
    cols = [
        pl.col("total_spend_eur").clip(lower_bound=0).log1p(),
        pl.col("orders").clip(lower_bound=0).log1p(),
        pl.col("active_months").clip(lower_bound=0).log1p(),
        pl.col("n_maisons").clip(lower_bound=1).cast(pl.Float64).log(),
        pl.col("online_share"),
        pl.col("boutique_share"),
        pl.col("q4_share"),
        *[pl.col(s) for s in sectors],
    ]
    return features.select([c.cast(pl.Float64).fill_null(0.0) for c in cols]).to_numpy()


@dataclass(frozen=True)
class SampleDraw:
    """The persons a fit uses, drawn once (`SegmentModel.draw_sample`): `rows`, positions
    (0-based, sorted) out of `persons` rows sorted by person_id, None for every person; and
    the generator's state after the draw, which the fit goes on from."""

    persons: int
    rows: np.ndarray | None
    rng_state: tuple

    @property
    def size(self) -> int:
        return self.persons if self.rows is None else len(self.rows)

    def generator(self) -> np.random.RandomState:
        """A generator where the draw left off (a new one each call: a draw fits alike twice)."""
        rng = np.random.RandomState()
        rng.set_state(self.rng_state)
        return rng


class SegmentModel(BaseEstimator):
    """KMeans preference segments with silhouette-chosen K, sample fitting and plain labels.

    >>> model = SegmentModel(random_state=7).fit(features)  # doctest: +SKIP
    >>> segments = model.predict(features)                   # 1..model.n_segments_
    """

    def __init__(
        self,
        n_segments: int | None = None,
        min_segments: int = 4,
        max_segments: int = 10,
        sample_size: int = 200_000,
        random_state: int | None = 0,
        selection_size: int = 30_000,
        silhouette_size: int = 4_000,
        n_init: int = 3,
        released_sectors: dict[str, str] | None = None,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        self.n_segments = n_segments
        self.min_segments = min_segments
        self.max_segments = max_segments
        self.sample_size = sample_size
        self.random_state = random_state
        self.selection_size = selection_size
        self.silhouette_size = silhouette_size
        self.n_init = n_init
        # sector name -> the name it may be released under (ReleasePolicy.released_sectors);
        # labels and descriptions then speak of that name only. None: every sector by name.
        self.released_sectors = released_sectors
        # the sector vocabulary (label words); None: the shipped pipelines/taxonomy.toml
        self.taxonomy = taxonomy

    # -- fitting ---------------------------------------------------------------------------

    def _check_features(self, features: pl.DataFrame, sectors: list[str] | None = None) -> None:
        if not isinstance(features, pl.DataFrame):
            raise InputError("segmentation expects a Polars DataFrame of person features")
        needed = [*NUMERIC, *(sectors or [])]
        missing = [c for c in needed if c not in features.columns]
        if missing:
            raise InputError(f"person features lack column(s): {', '.join(missing)}")

    def draw_sample(self, persons: int) -> SampleDraw:
        """Draw, from `random_state`, which of `persons` rows sorted by person_id the fit
        uses: an engine holding the features sends only those rows to the driver."""
        rng = check_random_state(self.random_state)
        rows = None
        if persons > self.sample_size:
            rows = np.sort(rng.choice(persons, self.sample_size, replace=False))
        return SampleDraw(persons, rows, rng.get_state())

    def fit(self, features: pl.DataFrame, *, draw: SampleDraw | None = None) -> SegmentModel:
        """Choose K, fit on a seeded sample, and describe every segment.

        `features`: every person, sorted by person_id; or, with `draw` (`draw_sample`), the
        rows it chose (the fit is then the same).
        """
        self._check_features(features)
        sectors = [c for c in features.columns if c.startswith("share_")]
        if not sectors:
            raise InputError("person features lack share_<sector> columns")
        if self.n_segments is not None and self.n_segments < 2:
            raise InputError("n_segments must be at least 2")
        if not 2 <= self.min_segments <= self.max_segments:
            raise InputError("segments range must satisfy 2 <= min_segments <= max_segments")
        if draw is None:
            draw = self.draw_sample(features.height)
            sample = features if draw.rows is None else features[draw.rows]
        elif features.height != draw.size:
            raise InputError(f"the fit sample holds {features.height} persons, not the drawn ones")
        else:
            sample = features
        rng = draw.generator()
        x = _design_matrix(sample, sectors)
        self.scaler_ = StandardScaler().fit(x)
        z = self.scaler_.transform(x)
        seeds = rng.randint(0, 2**31 - 1, size=4)

        sel_idx = np.arange(len(z))
        if len(z) > self.selection_size:
            sel_idx = np.sort(
                np.random.RandomState(seeds[0]).choice(len(z), self.selection_size, replace=False)
            )
        sel = z[sel_idx]
        distinct = len(np.unique(sel, axis=0))
        if distinct < 3:
            raise InputError(
                f"segmentation needs at least 3 distinct person profiles, found {distinct}"
            )
        scores: dict[int, float] = {}
        if self.n_segments is None:
            hi = min(self.max_segments, distinct - 1)
            lo = min(self.min_segments, hi)
            # One silhouette subsample and its distances, shared by every K (paired scores).
            sil_idx, sil_dist = self._silhouette_sample(sel, seeds[2])
            for k in range(lo, hi + 1):
                # Choosing K needs a ranking, not the best optimum: fewer restarts suffice.
                labels = self._kmeans(k, seeds[1], max(1, self.n_init // 2)).fit_predict(sel)
                scores[k] = _silhouette(sil_dist, labels, sil_idx)
            k_best = max(scores, key=lambda k: (round(scores[k], 6), -k))
            chosen_by = "silhouette"
        else:
            k_best = int(self.n_segments)
            if k_best >= distinct:
                raise InputError(
                    f"n_segments={k_best} needs more than {distinct} distinct person profiles"
                )
            chosen_by = "fixed"

        km = self._kmeans(k_best, seeds[1]).fit(z)
        raw = km.labels_
        sizes = np.bincount(raw, minlength=k_best)
        # Segment numbers by decreasing size, so segment 1 is the largest, reproducibly.
        order = np.lexsort((np.arange(k_best), -sizes))
        segment_of_cluster = np.empty(k_best, dtype=np.int32)
        segment_of_cluster[order] = np.arange(1, k_best + 1, dtype=np.int32)
        self.kmeans_ = km
        # what prediction needs, in segment order: a saved model is these and the labels
        self.segment_ids_ = np.arange(1, k_best + 1, dtype=np.int32)
        self.centres_ = km.cluster_centers_[order]
        self.n_segments_ = k_best
        self.feature_names_in_ = np.array([*NUMERIC, *sectors], dtype=object)
        self.sectors_ = sectors
        segments = segment_of_cluster[raw]

        # Stability: a refit with another seed on the selection sample (at most
        # selection_size persons of the fit sample, the whole of it when smaller), compared
        # with the model's own labels for those persons (docs/segmentation.md).
        refit = self._kmeans(k_best, seeds[3]).fit_predict(sel)
        sil = scores.get(k_best)
        if sil is None:
            sil_idx, sil_dist = self._silhouette_sample(z, seeds[2])
            sil = _silhouette(sil_dist, raw, sil_idx)
        self.quality_ = {
            "silhouette": float(sil),
            "chosen_by": chosen_by,
            "silhouette_by_k": {int(k): float(v) for k, v in scores.items()} or {k_best: sil},
            "sizes": {
                int(s): int(c)
                for s, c in zip(*np.unique(segments, return_counts=True), strict=True)
            },
            "stability_ari": float(adjusted_rand_score(raw[sel_idx], refit)),
            "fit_sample": len(z),
            "persons": draw.persons,
        }
        self.profiles_ = profiles(sample, segments, sectors)
        self.labels_, self.descriptions_ = describe(
            self.profiles_, sectors, self._sector_names(sectors)
        )
        return self

    def _sector_names(self, columns: list[str]) -> dict[str, tuple[str, str, str]]:
        """share_<slug> column -> (pooling key, label word, display name) of the name its
        sector is released under: sectors pooled under one coarser name share its key."""
        taxonomy = self.taxonomy or load_taxonomy()
        released = self.released_sectors or {}
        sector_of = {f"share_{sector_slug(s)}": s for s in taxonomy.sector_names}
        names = {}
        for column in columns:
            sector = sector_of.get(column)
            if sector is None:
                raise InputError(f"person features: {column} is not a sector of the taxonomy")
            name = released.get(sector, sector)
            key = column.removeprefix("share_") if name == sector else name
            names[column] = (key, taxonomy.word(name), name)
        return names

    def _kmeans(self, k: int, seed: int, n_init: int | None = None) -> KMeans:
        return KMeans(n_clusters=k, n_init=n_init or self.n_init, random_state=int(seed))

    def _silhouette_sample(self, z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the silhouette subsample and their pairwise Euclidean distances.

        The rows are those `silhouette_score(z, labels, sample_size=size, random_state=seed)`
        draws, so scores on these distances equal its scores. float64: sklearn computes
        float32 distances in float64 chunks anyway (slower), and float64 keeps the scores
        exactly as before; 4,000 rows take 128 MB.
        """
        size = min(self.silhouette_size, len(z))
        idx = np.random.RandomState(int(seed)).permutation(len(z))[:size]
        return idx, pairwise_distances(z[idx], metric="euclidean")

    # -- prediction ------------------------------------------------------------------------

    def segment_frame(self, features: pl.DataFrame) -> pl.DataFrame:
        """person_id, segment and the distance to its centre (in standard deviations): the
        prediction as a frame function (`Engine.map_frames`); the distance measures drift."""
        if features.is_empty():
            return features.select(
                "person_id",
                pl.lit(0, pl.Int32).alias("segment"),
                pl.lit(0.0).alias("distance"),
            )
        segments, distances = self.assign(features)
        return features.select(
            "person_id", pl.Series("segment", segments), pl.Series("distance", distances)
        )

    def assign(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's segment (the nearest centre's id) and its distance to that centre."""
        check_is_fitted(self, "centres_")
        self._check_features(features, self.sectors_)
        z = self.scaler_.transform(_design_matrix(features, self.sectors_))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            nearest, distance = pairwise_distances_argmin_min(z, self.centres_)
        return self.segment_ids_[nearest], distance

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """Segment ids (1..n_segments_ for a fresh fit) for every row of `features`, in order."""
        return self.assign(features)[0]


def _silhouette(distances: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> float:
    """Mean silhouette of `labels` (for every row) on the subsample rows `idx`, whose
    pairwise distances are `distances`; -1 when there are fewer than two clusters."""
    if len(np.unique(labels)) < 2:
        return -1.0
    return float(silhouette_score(distances, labels[idx], metric="precomputed"))


def configured_model(group: GroupConfig, policy: ReleasePolicy) -> SegmentModel:
    """The batch's SegmentModel, as `pipelines/group.toml` sets it (pipeline and evaluation),
    labelling segments only with the sector names the release policy allows."""
    return SegmentModel(
        n_segments=group.n_segments,
        min_segments=group.min_segments,
        max_segments=group.max_segments,
        sample_size=group.sample_size,
        random_state=group.random_state,
        released_sectors=policy.released_sectors,
        taxonomy=policy.taxonomy,
    )


def fit_on_sample(engine: Engine, features: str, model: SegmentModel) -> SegmentModel:
    """Fit `model` on its sample of the engine table `features`: only the sample comes to
    the driver (DESIGN §8)."""
    draw = model.draw_sample(engine.count(features))
    if draw.rows is None:
        sample = engine.to_polars(f"SELECT * FROM {features} ORDER BY person_id")
    else:
        # resolution numbers persons 1..n, so the i-th person by id is person i + 1; any
        # other numbering is ranked first (one ordered pass over the ids)
        first, last = engine.to_polars(
            f"SELECT min(person_id) AS lo, max(person_id) AS hi FROM {features}"
        ).row(0)
        dense = (first, last) == (1, draw.persons)
        ranked = (
            features
            if dense
            else f"(SELECT *, row_number() OVER (ORDER BY person_id) AS position FROM {features})"
        )
        key = "person_id" if dense else "position"
        engine.register("segment_sample", pl.DataFrame({key: draw.rows + 1}))
        sample = engine.to_polars(
            f"SELECT f.* FROM {ranked} f JOIN segment_sample USING ({key}) ORDER BY person_id"
        ).drop("position", strict=False)
        engine.drop("segment_sample")
    return model.fit(sample, draw=draw)


def segment_table(
    engine: Engine, features: str, model: SegmentModel, *, name: str = "segments"
) -> str:
    """Each person's segment, predicted where the rows are by a fitted `model`: the engine
    table `name` (person_id, segment, distance); only the model goes out to the rows."""
    return engine.map_frames(name, features, model.segment_frame)
