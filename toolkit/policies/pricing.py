"""Policies: pricing, scores and planned costs turned into choices that meet a budget (the price
calibration every priced policy shares; ``toolkit.policies``: meeting the budget): the price
curve of a batch (``PriceCurve``, cached per batch by ``LastCurve``), the switch prices it is
built from, and the weights and decision of a calibrated price."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from toolkit.policies.interface import Decision

_BISECTIONS = 200
SAME_PRICE = 1e-9
"""Switch prices closer than this (relative) are one price: the same switch reached by two
float paths, or actions tied in score and cost."""
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
    give the cheapest choice everywhere; budgets above the dearest one, the dearest. For
    several budgets on the same instances, ``PriceCurve`` works the switches out once."""
    return PriceCurve(scores, cost, min_price=min_price).calibrate(budget)


class PriceCurve:
    """The mean cost of the choices on a batch as a step function of the price, worked out
    once (``switch_prices``: O(n K^2)) and read at any budget (``calibrate``: two
    ``price_choice`` checks), as ``calibrate_price`` reads it for one."""

    def __init__(
        self, scores: np.ndarray, cost: np.ndarray, *, min_price: float | None = None
    ) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        self.cost = cost
        finite = self.scores[np.isfinite(self.scores)]
        span = float(finite.max() - finite.min()) if finite.size else 1.0
        distinct = np.unique(np.asarray(cost, dtype=np.float64))
        gaps = np.diff(distinct)
        step = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
        self.high = span / step + 1.0  # every instance takes its cheapest action at this price
        self.low = -self.high if min_price is None else float(min_price)
        self.cost_high = _mean_cost(cost, price_choice(self.scores, cost, self.high))
        self.cost_low = _mean_cost(cost, price_choice(self.scores, cost, self.low))
        self._steps: tuple[np.ndarray, np.ndarray] | None = None

    def decision(self, budget: float, calibrated_on: str, description: str) -> Decision:
        """The batch's decision priced to meet ``budget`` on it (``priced_decision``)."""
        return priced_decision(
            self.scores, self.cost, self.calibrate(budget), calibrated_on, description
        )

    def calibrate(self, budget: float) -> PriceCalibration:
        """The price bracket and mix that meet ``budget`` (``calibrate_price``)."""
        scores, cost = self.scores, self.cost
        low, high, cost_low, cost_high = self.low, self.high, self.cost_low, self.cost_high
        if cost_low <= budget:
            return PriceCalibration(low, low, 0.0, budget, cost_low)
        if cost_high >= budget:
            return PriceCalibration(high, high, 0.0, budget, cost_high)
        exact = self._switch_bracket(budget)
        if exact is not None:
            low, cost_low, high, cost_high = exact
        else:  # switch prices too close to tell apart: bisect the step function
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

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """The finite switch prices in ascending order and the mean cost before the first and
        after each (``mean_cost_by_price``), from the choices at the lowest price."""
        if self._steps is None:
            scores = self.scores
            n, k = scores.shape
            cost_nk = np.broadcast_to(np.asarray(self.cost, dtype=np.float64), scores.shape)
            start = price_choice(scores, cost_nk, self.low)
            prices, saves = switch_prices(scores, cost_nk, start, self.low, max(k - 1, 1))
            self._steps = mean_cost_by_price(prices, saves, cost_nk[np.arange(n), start].sum(), n)
        return self._steps

    def _switch_bracket(self, budget: float) -> tuple[float, float, float, float] | None:
        """(price_low, its mean cost, price_high, its mean cost) around the one price where the
        mean cost of the choices steps across ``budget``, found exactly: each instance's choice
        switches to cheaper actions at the prices of its upper concave hull in (cost, score)
        (``switch_prices``), so the mean cost is a step function of the price with known steps;
        the bracket is the crossing step's price plus and minus 2e-9 of it, checked with two
        ``price_choice`` evaluations (about 60 for a bisection). None where steps lie too close
        together to bracket one alone, or the check fails."""
        scores, cost, low = self.scores, self.cost, self.low
        prices, mean = self.steps()
        crossing = np.flatnonzero(mean[1:] <= budget)  # the mean after each switch
        if len(prices) == 0 or len(crossing) == 0:
            return None
        at = prices[crossing[0]]
        below = prices[prices < at - SAME_PRICE * max(1.0, abs(at))]
        above = prices[prices > at + SAME_PRICE * max(1.0, abs(at))]
        gap = min(
            at - below[-1] if len(below) else np.inf,
            above[0] - at if len(above) else np.inf,
            at - low,
        )
        # as tight as a bisection's bracket, for the instances it is applied to later (a
        # validation price on test), yet wide enough for price_choice's tie tolerance
        delta = 2 * SAME_PRICE * max(1.0, abs(at))
        if not gap > 2 * delta:
            return None
        price_low, price_high = at - delta, at + delta
        cost_low = _mean_cost(cost, price_choice(scores, cost, price_low))
        cost_high = _mean_cost(cost, price_choice(scores, cost, price_high))
        if not cost_high <= budget < cost_low:
            return None
        return float(price_low), cost_low, float(price_high), cost_high


class LastCurve:
    """The ``PriceCurve`` of the last batch a policy priced, by the identity of the batch's
    arrays and an equal ``tag``: every budget of an evaluation prices the same batch, so the
    switches are worked out once per batch instead of once per budget. It holds the batch's
    arrays, so an identity is never reused by another batch while cached."""

    def __init__(self) -> None:
        self._key: tuple = ()
        self._tag: object = None
        self._curve: PriceCurve | None = None

    def get(self, batch: tuple, tag: object, make: Callable[[], PriceCurve]) -> PriceCurve:
        same = (
            self._curve is not None
            and len(batch) == len(self._key)
            and all(a is b for a, b in zip(batch, self._key, strict=True))
            and tag == self._tag
        )
        if not same:
            self._key, self._tag, self._curve = batch, tag, make()
        assert self._curve is not None
        return self._curve

    def clear(self) -> None:
        self._key, self._tag, self._curve = (), None, None


def mean_cost_by_price(
    prices: np.ndarray, saves: np.ndarray, start_total: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The finite switch prices (``switch_prices``) in ascending order, and the instances' mean
    cost before the first of them and after each (one entry more than the prices)."""
    prices, saves = prices.ravel(), saves.ravel()
    order = np.argsort(prices, kind="stable")
    prices, saves = prices[order], saves[order]
    finite = np.isfinite(prices)
    prices, saves = prices[finite], saves[finite]
    return prices, (start_total - np.concatenate([[0.0], np.cumsum(saves)])) / n


def switch_prices(
    scores: np.ndarray, cost: np.ndarray, start: np.ndarray, low: float, slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """(price, cost saved) of each switch of each request's choice as the price rises from
    ``low``, from action ``start``: to the cheaper action it first ties with (the cheapest
    among those tying at once, as ``price_choice`` breaks ties); ``inf`` and 0 pad the rows.
    A step of every request at once; at most K - 1 steps."""
    n, k = scores.shape
    rows = np.arange(n)
    prices, saves = np.full((n, slots), np.inf), np.zeros((n, slots))
    here, filled = start.astype(np.int64), np.zeros(n, dtype=np.int64)
    for _ in range(k - 1):
        cost_here, score_here = cost[rows, here], scores[rows, here]
        cheaper = cost < cost_here[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            at = np.where(
                cheaper, (score_here[:, None] - scores) / (cost_here[:, None] - cost), np.inf
            )
        first = at.min(axis=1)
        moving = np.isfinite(first)
        if not moving.any():
            break
        near = SAME_PRICE * np.maximum(1.0, np.abs(np.where(moving, first, 0.0)))
        tied = cheaper & (at <= (first + near)[:, None])
        nxt = np.where(tied, cost, np.inf).argmin(axis=1)
        keep = moving & (first > low)
        slot = filled[keep]
        prices[rows[keep], slot] = first[keep]
        saves[rows[keep], slot] = cost_here[keep] - cost[rows[keep], nxt[keep]]
        filled[keep] += 1
        here = np.where(moving, nxt, here)
    return prices, saves


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


def priced_decision(
    scores: np.ndarray,
    cost: np.ndarray,
    calibration: PriceCalibration,
    calibrated_on: str,
    description: str,
) -> Decision:
    """The decision of a policy priced on its scores: argmax score - mu cost at the
    calibration's price bracket (``priced_weights``)."""
    return Decision(
        priced_weights(scores, cost, calibration),
        calibrated_on,
        "mu",
        calibration.price,
        calibration.mix,
        description,
    )


def log_probability_scores(probabilities: np.ndarray) -> np.ndarray:
    """log p(a | x), floored so that no action is unreachable."""
    return np.log(np.maximum(probabilities, _PROBABILITY_FLOOR))


def onehot(choice: np.ndarray, k: int) -> np.ndarray:
    weights = np.zeros((len(choice), k))
    weights[np.arange(len(choice)), choice] = 1.0
    return weights


def bisect_increasing(
    function: Callable[[float], float], target: float, low: float, high: float
) -> float:
    """The x in [low, high] where a non-decreasing ``function`` crosses ``target`` (the nearer
    end when it never does), to the last bit."""
    if function(low) >= target:
        return low
    if function(high) <= target:
        return high
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if function(middle) < target:
            low = middle
        else:
            high = middle
    return low if abs(function(low) - target) <= abs(function(high) - target) else high
