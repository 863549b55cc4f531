"""Metrics of allocations: the paired bootstrap, matched-spend mixing, and the summaries of an
accuracy-versus-cost curve (AIQ, the cost to reach the best action).

**Paired bootstrap.** Every metric is a mean (or a ratio of means) over the test instances of a
per-instance quantity; its 95% interval comes from resampling the test instances (with
cross-fitting, within each fold: stratified), the same resamples for every policy, so that
differences between policies are paired. Undefined values (a ratio over a zero mean) are None
(NULL in the tables), never NaN or inf.

**Matched spend.** A policy priced to B spends B in *planned* cost; what its samples actually
cost (realised cost) differs a little. To compare policies at the same realised spend, each
policy is run over a fine budget grid (``toolkit.budgets``), giving points (realised cost,
accuracy); at a declared budget B the two grid allocations whose realised costs bracket B are
mixed, ``W = w W_lo + (1 - w) W_hi`` with ``w`` chosen so that the realised mean cost is B
exactly (``matched_mix``). A randomised mix of two budgets is a deployable policy, so the
matched accuracy is achievable; choosing ``w`` uses the test split's realised costs, so it is
an evaluation device (like the oracle), not a deployment.

**Curve summaries** (``CurveSummary``). A policy's *envelope* is the upper concave,
non-decreasing hull of its curve points and of the cheapest action's point (every instance on
its cheapest action, which any policy can be mixed with): the best accuracy reachable at each
realised cost by mixing its budgets and leaving budget unspent. ``aiq`` (RouterBench's Average
Improvement in Quality) is the area under the envelope over [cost of the cheapest action, cost
of the best action] divided by that range; ``cost_to_reach`` is the least realised cost at
which the envelope reaches the best action's accuracy (the most accurate single action for
every instance), and ``saving`` = 1 - cost_to_reach / the best action's cost (the routing
papers' "same accuracy for X% less compute").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import SupportsFloat

import numpy as np

RESAMPLES = 1000
CONFIDENCE = 0.95
_BOOTSTRAP_STREAM = 1_000_002
_ZERO = 1e-12
"""A mean this close to zero makes a ratio over it undefined."""

DENSE_BOOTSTRAP_CELLS = 2**25
"""Up to this many resamples x test instances (256 MiB as float64) the counts are one dense
float64 matrix and each resample's means one matrix product; beyond it, small integer counts
and products in blocks of instances (``PairedBootstrap``)."""
_BLOCK_CELLS = 2**21  # resamples x instances converted to float64 at a time (16 MiB: in cache)


def _bootstrap_rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _BOOTSTRAP_STREAM])))


def bootstrap_counts(
    n: int, resamples: int, seed: int, strata: np.ndarray | None = None
) -> np.ndarray:
    """(resamples, n) multiplicities of each test instance in each paired resample; with
    ``strata`` (a label per instance) each stratum is resampled within itself."""
    rng = _bootstrap_rng(seed)
    counts = np.zeros((resamples, n), dtype=np.float64)
    for members in _strata(n, strata):
        draws = members[rng.integers(0, len(members), size=(resamples, len(members)))]
        np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    return counts


def _strata(n: int, strata: np.ndarray | None) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(n)]
    strata = np.asarray(strata)
    return [np.flatnonzero(strata == s) for s in np.unique(strata)]


class PairedBootstrap:
    """The paired bootstrap's resamples of the n test instances, shared by every policy.

    ``means(values)`` is, for each resample, the mean of each column of ``values`` (n, q) over
    the resampled instances: ``counts @ values / n``. Small (resamples x n at most
    ``DENSE_BOOTSTRAP_CELLS``): exactly ``bootstrap_counts(n, resamples, seed, strata) @ values
    / n``. Larger: the same draws (the same random stream, drawn one resample at a time) kept
    as uint8 counts (wider if an instance is ever drawn 256 times), 1/8 of the float matrix,
    and the product summed over blocks of instances, so memory stays near resamples x n bytes.
    The blocked sums may differ from the single product in the last bits."""

    def __init__(self, n: int, resamples: int, seed: int, strata: np.ndarray | None = None) -> None:
        self.n, self.resamples = n, resamples
        self.dense = resamples * n <= DENSE_BOOTSTRAP_CELLS
        if self.dense:
            self.counts = bootstrap_counts(n, resamples, seed, strata)
            return
        rng = _bootstrap_rng(seed)
        counts = np.zeros((resamples, n), dtype=np.uint8)
        groups = _strata(n, strata)
        # stratum by stratum, row by row: the same stream as bootstrap_counts' draws
        for members in groups:
            for row in range(resamples):
                tally = np.bincount(
                    rng.integers(0, len(members), size=len(members)), minlength=len(members)
                )
                if tally.max() > np.iinfo(counts.dtype).max:
                    counts = counts.astype(np.min_scalar_type(tally.max()))
                counts[row, members] = tally
        self.counts = counts

    def means(self, values: np.ndarray) -> np.ndarray:
        """(resamples, q): each column's mean over each resample's instances."""
        if self.dense:
            return self.counts @ values / self.n
        total = np.zeros((self.resamples, values.shape[1]))
        step = max(1, _BLOCK_CELLS // self.resamples)
        for start in range(0, self.n, step):
            block = self.counts[:, start : start + step].astype(np.float64)
            total += block @ values[start : start + step]
        return total / self.n


def interval(
    samples: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap samples; undefined samples (NaN) are left out, and no
    defined sample at all gives (None, None)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (None, None)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN (undefined) where the denominator is within ``_ZERO`` of 0."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    defined = np.abs(denominator) > _ZERO
    return np.where(defined, numerator / np.where(defined, denominator, 1.0), np.nan)


def defined(value: SupportsFloat) -> float | None:
    """A metric value (a number or a 0-d array) as stored: None for NaN or inf."""
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Matched spend
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchedMix:
    """The mix of two grid budgets whose realised mean cost is the target: weight ``weight`` on
    the allocation at ``low_budget``, the rest on ``high_budget`` (equal when one point hits)."""

    low_budget: float
    high_budget: float
    weight: float


def matched_mix(
    budgets: Sequence[float], realised: Sequence[float], target: float
) -> MatchedMix | None:
    """The two consecutive curve points (in budget order) whose realised costs bracket
    ``target``, nearest to it in budget, mixed to meet it; None when no two points bracket it.

    A point within 1e-12 (relative) of the target is used alone."""
    order = np.argsort(np.asarray(budgets, float))
    grid, cost = np.asarray(budgets, float)[order], np.asarray(realised, float)[order]
    hits = np.flatnonzero(np.abs(cost - target) <= 1e-12 * max(abs(target), 1.0))
    if hits.size:
        best = hits[np.argmin(np.abs(np.log(grid[hits] / target)))]
        return MatchedMix(float(grid[best]), float(grid[best]), 1.0)
    low, high = cost[:-1], cost[1:]
    bracket = np.flatnonzero(
        ((low < target) & (target < high)) | ((high < target) & (target < low))
    )
    if bracket.size == 0:
        return None
    distance = np.abs(np.log(np.sqrt(grid[bracket] * grid[bracket + 1]) / target))
    g = int(bracket[np.argmin(distance)])
    weight = (cost[g + 1] - target) / (cost[g + 1] - cost[g])
    return MatchedMix(float(grid[g]), float(grid[g + 1]), float(weight))


# --------------------------------------------------------------------------------------------
# Curve summaries
# --------------------------------------------------------------------------------------------
def envelope(costs: Sequence[float], accuracies: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The upper concave, non-decreasing hull of the points: its vertices (cost ascending)."""
    points = sorted(zip(map(float, costs), map(float, accuracies), strict=True))
    hull: list[tuple[float, float]] = []
    for point in points:
        if hull and point[0] == hull[-1][0]:
            if point[1] <= hull[-1][1]:
                continue
            hull.pop()
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or below the chord to the new one
            if (y2 - y1) * (point[0] - x1) <= (point[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append(point)
    x = np.array([p[0] for p in hull])
    y = np.maximum.accumulate(np.array([p[1] for p in hull]))
    return x, y


def envelope_at(x: np.ndarray, y: np.ndarray, cost: np.ndarray | float) -> np.ndarray:
    """The envelope's accuracy at each cost: linear between vertices, flat after the last."""
    return np.interp(cost, x, y, left=np.nan, right=y[-1])


@dataclass(frozen=True)
class CurveSummary:
    """One policy's curve in numbers (see the module docstring)."""

    aiq: float | None
    cost_to_reach: float | None
    saving: float | None
    cost_low: float
    cost_high: float
    target_accuracy: float
    target_cost: float


def summarise_curve(
    costs: Sequence[float],
    accuracies: Sequence[float],
    cheapest: tuple[float, float],
    best_action: tuple[float, float],
) -> CurveSummary:
    """AIQ over [cheapest cost, best action's cost] and the cost to reach the best action's
    accuracy, from a policy's curve points plus the ``cheapest`` (cost, accuracy) point."""
    x, y = envelope([cheapest[0], *costs], [cheapest[1], *accuracies])
    low, high = cheapest[0], best_action[0]
    aiq = None
    if high > low:
        grid = np.unique(np.concatenate([[low, high], x[(x > low) & (x < high)]]))
        aiq = float(np.trapezoid(envelope_at(x, y, grid), grid) / (high - low))
    target = best_action[1]
    reach = None
    if y[-1] >= target - _ZERO:
        first = int(np.flatnonzero(y >= target - _ZERO)[0])
        if first == 0:
            reach = float(x[0])
        else:
            share = (target - y[first - 1]) / (y[first] - y[first - 1])
            reach = float(x[first - 1] + min(max(share, 0.0), 1.0) * (x[first] - x[first - 1]))
    saving = None if reach is None or best_action[0] <= 0 else 1.0 - reach / best_action[0]
    return CurveSummary(aiq, reach, saving, low, high, target, best_action[0])


__all__ = [
    "CONFIDENCE",
    "RESAMPLES",
    "CurveSummary",
    "MatchedMix",
    "PairedBootstrap",
    "bootstrap_counts",
    "defined",
    "envelope",
    "interval",
    "matched_mix",
    "ratio",
    "summarise_curve",
]
