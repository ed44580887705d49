"""Gaussian noise for the group-wide figures, calibrated and drawn by OpenDP (DESIGN §5.10).

The noise is OpenDP's Gaussian mechanism on the vector of a release's exact counts, under
zero-concentrated DP, converted by OpenDP to (epsilon, delta): OpenDP finds the noise scale
for the pipeline's `epsilon_per_release` and `delta` given how far one person can move the
vector (its L2 sensitivity, `cells_sensitivity`), and it draws the noise from the operating
system's secure generator (it cannot be seeded, by design). Nothing here samples by hand.

OpenDP takes about 1.5 s to import: only a batch in DP mode pays it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

MECHANISM = "Gaussian mechanism (OpenDP), zCDP converted to (epsilon, delta)-DP"
# Noisy figures are shown with the interval that holds the true count 95 times out of 100.
CONFIDENCE = 0.95


@cache
def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def _measurement(scale: float, delta: float):
    """OpenDP's Gaussian mechanism over a vector of counts (as floats, L2 distance), its
    zCDP loss converted to (epsilon, delta) at the given delta."""
    dp = _opendp()
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float)
    return dp.c.make_fix_delta(
        dp.c.make_zCDP_to_approxDP(space >> dp.m.then_gaussian(scale)), delta
    )


@dataclass(frozen=True)
class GaussianNoise:
    """One release's noise: its scale, and what it costs a recipient whose figures one person
    can move by at most `sensitivity` (L2)."""

    scale: float
    sensitivity: float
    epsilon: float  # spent by a recipient of every noisy figure (OpenDP's own accounting)
    delta: float

    @property
    def margin(self) -> float:
        """Half-width of the 95 % interval of one noisy count (OpenDP's accuracy bound)."""
        return float(_opendp().gaussian_scale_to_accuracy(self.scale, 1 - CONFIDENCE))

    def spent(self, sensitivity: float) -> float:
        """The epsilon this noise costs a recipient whose figures one person moves by at most
        `sensitivity` (OpenDP's map; at most `epsilon` for a view no larger than calibrated)."""
        return float(_measurement(self.scale, self.delta).map(float(sensitivity))[0])

    def noisy(self, counts: Sequence[float]) -> np.ndarray:
        """`counts` plus independent noise, each drawn by OpenDP."""
        values = [float(c) for c in counts]
        if not values:
            return np.zeros(0)
        return np.asarray(_measurement(self.scale, self.delta)(values), dtype=float)

    def audit(self) -> dict:
        return {
            "mechanism": MECHANISM,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "noise_scale": self.scale,
            "sensitivity_l2": self.sensitivity,
            "margin_95": self.margin,
        }


def noisy_threshold(k_aggregate: int, margin: float) -> float:
    """The least noisy count a cell is published at: k_aggregate plus the noise's 95 % margin,
    so a published cell covers k_aggregate persons with 95 % confidence."""
    return k_aggregate + margin


def calibrate(epsilon: float, delta: float, sensitivity: float) -> GaussianNoise:
    """The smallest noise OpenDP proves (epsilon, delta)-DP for counts one person moves by at
    most `sensitivity` in L2 norm; the epsilon recorded is OpenDP's map of the scale it found
    (never more than asked)."""
    dp = _opendp()
    scale = dp.binary_search_param(
        lambda s: _measurement(s, delta), d_in=float(sensitivity), d_out=(epsilon, delta)
    )
    spent, _ = _measurement(scale, delta).map(float(sensitivity))
    return GaussianNoise(float(scale), float(sensitivity), float(spent), float(delta))


def cells_sensitivity(partitions: int, flags_per_person: int, other_sectors: int = 0) -> float:
    """L2 sensitivity of one recipient's noisy figures when one person is added or removed:
    one cell in each partition table, up to `flags_per_person` cells in each of the two
    affinity tables (over the scope and within the person's segment), and, when the recipient
    gets an other_sector_spend table of `other_sectors` sectors, one count per sector, their
    shares of spend (adding up to at most 1) and the table's base."""
    other = other_sectors + 2 if other_sectors else 0
    return math.sqrt(partitions + 2 * flags_per_person + other)
