"""Allocation policies as weight matrices, and the price calibration they share.

A policy allocates compute to n instances as a weight matrix ``W`` (n x K actions, rows summing
to 1; a row with two non-zero weights mixes two actions). Its expected accuracy is
``mean_i sum_a W_ia acc_i(a)`` and its expected cost ``mean_i sum_a W_ia cost_i(a)``.

Every policy here may look at the instances' features only, never at their outcomes; what it
knows about accuracies comes from the training split. The Lagrangian oracle (``toolkit.solve``)
is the one policy that sees outcomes, as the upper bound.

Budgets are met the way the oracle meets them: a *price* mu turns scores into a choice,
``argmax_a score_i(a) - mu * cost(a)`` (ties: the cheaper action); mean cost falls as mu rises,
so mu is bisected until it brackets the budget B, and the instances that switch action inside
the bracket are mixed between their two choices in the proportion that meets B exactly
(``calibrate_price``). Calibrated on one set of instances, the same price and mix applied to
another set meet B only up to sampling noise (``priced_weights``).

Baselines, all at the same mean budget B:

- ``uniform_weights``: every instance gets the same action, mixing the two actions whose mean
  cost brackets B (samples: the two neighbouring b).
- ``random_weights``: every instance draws its action from the training oracle's action mix at
  B (how often the oracle chose each action), i.e. the oracle's spend shuffled across
  instances; reported in expectation over the draw.
- ``prompt_length_weights``: planned cost proportional to the prompt length,
  ``c_i = clip(kappa * len_i)``, each instance mixing the two actions around c_i; kappa is
  bisected so that the mean planned cost is B.
- ``difficulty_bin_weights``: quantile bins of an observable difficulty signal (Snell et al.,
  2024: the best action per difficulty bin); a bin's accuracy curve is its training mean, and
  the bins' actions are priced to meet B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BISECTIONS = 200
_PROBABILITY_FLOOR = 1e-9
"""log(max(p, floor)): a class the classifier never predicts stays choosable at a finite score."""


# --------------------------------------------------------------------------------------------
# Pricing: scores and costs -> choices that meet a budget
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceCalibration:
    """The price that meets a budget on a calibration set.

    At ``price_low`` the choice is the more expensive one, at ``price_high`` the cheaper one
    (they differ only for instances that switch inside the bracket); ``mix`` is the weight on
    the ``price_low`` choice. ``calibration_cost`` is the mean cost met on the calibration set.
    """

    price_low: float
    price_high: float
    mix: float
    target_cost: float
    calibration_cost: float

    @property
    def price(self) -> float:
        return 0.5 * (self.price_low + self.price_high)


def price_choice(scores: np.ndarray, cost: np.ndarray, price: float) -> np.ndarray:
    """``argmax_a scores[i, a] - price * cost[a]`` per row; ties go to the cheaper action.

    ``cost``: (K,) planned cost per action, or (n, K) per instance."""
    value = scores - price * cost
    best = value.max(axis=1, keepdims=True)
    tied = value >= best - 1e-12 * np.maximum(1.0, np.abs(best))
    cost_nk = np.broadcast_to(cost, scores.shape)
    return np.where(tied, cost_nk, np.inf).argmin(axis=1)


def _mean_cost(cost: np.ndarray, choice: np.ndarray) -> float:
    if cost.ndim == 1:
        return float(cost[choice].mean())
    return float(cost[np.arange(len(choice)), choice].mean())


def calibrate_price(
    scores: np.ndarray, cost: np.ndarray, budget: float, *, min_price: float | None = None
) -> PriceCalibration:
    """The price (and mix) at which the choices' mean cost is ``budget`` on these instances.

    ``min_price``: the lowest price allowed (0 for accuracy scores: paying to lose accuracy is
    never right, so an unbinding budget is left unspent). Budgets below the cheapest choice
    give the cheapest choice everywhere; budgets above the dearest one, the dearest."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    span = float(finite.max() - finite.min()) if finite.size else 1.0
    distinct = np.unique(np.asarray(cost, dtype=np.float64))
    gaps = np.diff(distinct)
    step = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
    high = span / step + 1.0  # every instance takes its cheapest action at this price
    low = -high if min_price is None else float(min_price)
    cost_high = _mean_cost(cost, price_choice(scores, cost, high))
    cost_low = _mean_cost(cost, price_choice(scores, cost, low))
    if cost_low <= budget:
        return PriceCalibration(low, low, 0.0, budget, cost_low)
    if cost_high >= budget:
        return PriceCalibration(high, high, 0.0, budget, cost_high)
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        cost_middle = _mean_cost(cost, price_choice(scores, cost, middle))
        if cost_middle > budget:
            low, cost_low = middle, cost_middle
        else:
            high, cost_high = middle, cost_middle
    mix = 0.0 if cost_low == cost_high else (budget - cost_high) / (cost_low - cost_high)
    return PriceCalibration(low, high, mix, budget, mix * cost_low + (1 - mix) * cost_high)


def priced_weights(scores: np.ndarray, cost: np.ndarray, calibration: PriceCalibration):
    """The weight matrix of the calibrated choice on (possibly other) instances."""
    expensive = price_choice(scores, cost, calibration.price_low)
    cheap = price_choice(scores, cost, calibration.price_high)
    n, k = scores.shape
    weights = np.zeros((n, k))
    rows = np.arange(n)
    weights[rows, cheap] += 1.0 - calibration.mix
    weights[rows, expensive] += calibration.mix
    return weights


def log_probability_scores(probabilities: np.ndarray) -> np.ndarray:
    """log p(a | x), floored so that no action is unreachable."""
    return np.log(np.maximum(probabilities, _PROBABILITY_FLOOR))


def onehot(choice: np.ndarray, k: int) -> np.ndarray:
    weights = np.zeros((len(choice), k))
    weights[np.arange(len(choice)), choice] = 1.0
    return weights


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------
def action_ladder(action_cost: np.ndarray, action_acc: np.ndarray) -> np.ndarray:
    """Action indices in increasing mean cost, one per distinct cost (the more accurate on the
    training split where two actions cost the same): the steps a uniform policy climbs."""
    order = np.lexsort((-action_acc, action_cost))
    _, first = np.unique(action_cost[order], return_index=True)
    return order[first]


def interpolate_on_ladder(
    target: np.ndarray, ladder: np.ndarray, action_cost: np.ndarray, k: int
) -> np.ndarray:
    """Per instance, mix the two ladder actions whose costs bracket its target cost (clipped to
    the ladder's range): mean planned cost = mean target."""
    steps = action_cost[ladder]
    target = np.clip(np.asarray(target, dtype=np.float64), steps[0], steps[-1])
    upper = np.clip(np.searchsorted(steps, target, side="left"), 0, len(steps) - 1)
    lower = np.clip(upper - 1, 0, len(steps) - 1)
    exact = steps[upper] == target
    lower = np.where(exact, upper, lower)
    span = steps[upper] - steps[lower]
    share_upper = np.where(span > 0, (target - steps[lower]) / np.where(span > 0, span, 1.0), 1.0)
    weights = np.zeros((len(target), k))
    rows = np.arange(len(target))
    weights[rows, ladder[lower]] += 1.0 - share_upper
    weights[rows, ladder[upper]] += share_upper
    return weights


def uniform_weights(
    n: int, budget: float, action_cost: np.ndarray, action_acc: np.ndarray
) -> np.ndarray:
    """The same action for every instance, mixing the two ladder actions around ``budget``.

    ``action_cost``, ``action_acc``: (K,) mean planned cost and training accuracy per action."""
    ladder = action_ladder(action_cost, action_acc)
    return interpolate_on_ladder(np.full(n, budget), ladder, action_cost, len(action_cost))


def random_weights(n: int, action_mix: np.ndarray) -> np.ndarray:
    """Every instance draws its action from ``action_mix`` (K,), in expectation over the draw."""
    mix = np.asarray(action_mix, dtype=np.float64)
    return np.tile(mix / mix.sum(), (n, 1))


def prompt_length_weights(
    prompt_tokens: np.ndarray,
    budget: float,
    action_cost: np.ndarray,
    action_acc: np.ndarray,
) -> tuple[np.ndarray, float]:
    """More compute to longer prompts: planned cost ``clip(kappa * len_i)`` on the action ladder,
    kappa bisected so that the mean planned cost is ``budget``. Returns (weights, kappa).

    A missing length counts as the median length."""
    length = np.asarray(prompt_tokens, dtype=np.float64)
    fill = np.nanmedian(length) if np.isfinite(length).any() else 1.0
    length = np.maximum(np.where(np.isfinite(length), length, fill), 1.0)
    ladder = action_ladder(action_cost, action_acc)
    steps = action_cost[ladder]

    def mean_cost(kappa: float) -> float:
        return float(np.clip(kappa * length, steps[0], steps[-1]).mean())

    low, high = 0.0, steps[-1] / length.min() + 1.0
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if mean_cost(middle) > budget:
            high = middle
        else:
            low = middle
    kappa = high if abs(mean_cost(high) - budget) < abs(mean_cost(low) - budget) else low
    target = np.clip(kappa * length, steps[0], steps[-1])
    return interpolate_on_ladder(target, ladder, action_cost, len(action_cost)), kappa


@dataclass(frozen=True)
class DifficultyBins:
    """Quantile bins of an observable signal and each bin's training accuracy curve."""

    signal: str
    edges: np.ndarray
    """Inner bin edges (n_bins - 1), from the training split's quantiles."""
    bin_acc: np.ndarray
    """(n_bins, K) mean training accuracy per bin and action."""

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value; a missing value goes to the middle bin."""
        values = np.asarray(values, dtype=np.float64)
        bins = np.searchsorted(self.edges, values, side="right")
        return np.where(np.isfinite(values), bins, len(self.edges) // 2)


def fit_difficulty_bins(
    signal: str, values: np.ndarray, acc: np.ndarray, n_bins: int = 5
) -> DifficultyBins:
    """Bins of ``values`` (the training split's signal) at its quantiles; a discrete signal with
    at most ``n_bins`` distinct values gets one bin per value."""
    values = np.asarray(values, dtype=np.float64)
    known = values[np.isfinite(values)]
    distinct = np.unique(known)
    if distinct.size <= n_bins:
        edges = 0.5 * (distinct[1:] + distinct[:-1])
    else:
        edges = np.unique(np.quantile(known, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    draft = DifficultyBins(signal, edges, np.zeros((len(edges) + 1, acc.shape[1])))
    bins = draft.bin_of(values)
    overall = acc.mean(axis=0)
    bin_acc = np.array(
        [
            acc[bins == b].mean(axis=0) if (bins == b).any() else overall
            for b in range(len(edges) + 1)
        ]
    )
    return DifficultyBins(signal, edges, bin_acc)


def difficulty_bin_weights(
    bins: DifficultyBins, values: np.ndarray, budget: float, action_cost: np.ndarray
) -> tuple[np.ndarray, PriceCalibration]:
    """Each instance's bin accuracy curve, priced so that the instances' mean cost is
    ``budget`` (the Lagrangian over bins, weighted by how many instances fall in each)."""
    scores = bins.bin_acc[bins.bin_of(values)]
    calibration = calibrate_price(scores, action_cost, budget, min_price=0.0)
    return priced_weights(scores, action_cost, calibration), calibration


__all__ = [
    "DifficultyBins",
    "PriceCalibration",
    "action_ladder",
    "calibrate_price",
    "difficulty_bin_weights",
    "fit_difficulty_bins",
    "log_probability_scores",
    "price_choice",
    "priced_weights",
    "prompt_length_weights",
    "random_weights",
    "uniform_weights",
]
