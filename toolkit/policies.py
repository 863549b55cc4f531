"""Allocation policies: objects with one interface, ``fit`` on a training split and ``allocate``
a batch of inputs at a budget, and the price calibration they share.

A policy allocates compute to n instances as a weight matrix ``W`` (n x K actions, rows summing
to 1; a row with two non-zero weights mixes two actions). Its expected accuracy is
``mean_i sum_a W_ia acc_i(a)`` and its expected cost ``mean_i sum_a W_ia cost_i(a)``.

**What a policy sees.** ``Inputs``: the instances' features and their *planned* cost of every
action (``toolkit.costs``): the part of the cost known before spending (the prompt, fixed costs)
plus a prediction of the rest. Never the outcomes. What it knows about accuracies comes from the
training split (``TrainingSet``). The Lagrangian oracle (``toolkit.solve``) is the one policy that
sees outcomes, as the upper bound.

**Meeting the budget.** A policy priced on the batch it serves meets ``B`` exactly in planned
cost: a *price* mu turns scores into a choice, ``argmax_a score_i(a) - mu * planned_i(a)`` (ties:
the cheaper action); mean planned cost falls as mu rises, in steps at the prices where an
instance's choice switches to a cheaper action (its upper concave hull in (cost, score)), so the
step that crosses B is found exactly from the sorted switch prices (a bisection where switches
lie too close together), and the instances that switch there are mixed between their two
choices in the proportion that meets B (``calibrate_price``). The realised cost then differs
from B only by how far the outputs' cost differs from its prediction. Calibrated on one set of
instances, the same price applied to another set meets B only up to sampling noise
(``priced_weights``).

Baselines (``BASELINES``), each ``fit`` on a ``TrainingSet`` and priced on the batch:

- ``uniform``: every instance the same action, mixing the two actions, in order of cost, whose
  mean planned cost on the batch brackets B (samples: the two neighbouring b, dominated or not).
- ``best_fixed``: the same, but only over the upper concave hull of the actions' training mean
  (cost, accuracy), so a dominated action (majority@2, no better than majority@1) is never
  bought: the best allocation that treats every instance alike.
- ``always_<model>``: ``uniform`` over one model's actions (studies with several models).
- ``random``: every instance draws its action from the training oracle's action mix at B (the
  oracle's spend shuffled across instances), tilted ``p_a ~ mix_a exp(-t c_a)`` so that the
  batch's mean planned cost is B; reported in expectation over the draw.
- ``prompt_length``: planned cost proportional to the prompt length, ``clip(kappa * len_i)``,
  each instance mixing its two actions around that cost; kappa bisected to meet B.
- ``difficulty_bins``: quantile bins of an observable difficulty signal (Snell et al., 2024: the
  best action per difficulty bin); a bin's accuracy curve is its training mean, and the bins'
  actions are priced to meet B.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

_BISECTIONS = 200
SAME_PRICE = 1e-9
"""Switch prices closer than this (relative) are one price: the same switch reached by two
float paths, or actions tied in score and cost."""
_PROBABILITY_FLOOR = 1e-9
"""log(max(p, floor)): a class the classifier never predicts stays choosable at a finite score."""


# --------------------------------------------------------------------------------------------
# What a policy sees and what it returns
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """A batch of instances as a policy sees them before spending anything."""

    instance_ids: np.ndarray
    frame: pd.DataFrame
    """The features (``toolkit.features``), one row per instance."""
    planned_cost: np.ndarray
    """(n, K) planned cost of every action (``toolkit.costs``)."""

    def __len__(self) -> int:
        return len(self.instance_ids)

    def take(self, rows: np.ndarray) -> Inputs:
        """The inputs of some of the instances (row positions)."""
        return Inputs(
            self.instance_ids[rows],
            self.frame.iloc[rows].reset_index(drop=True),
            self.planned_cost[rows],
        )


@dataclass(frozen=True)
class TrainingSet:
    """The training split as policies fit on it: features, planned and realised costs, and the
    estimated accuracy of every action."""

    inputs: Inputs
    acc: np.ndarray
    """(n, K) estimated accuracy."""
    cost: np.ndarray
    """(n, K) realised cost (what the samples cost)."""
    action_ids: np.ndarray
    action_models: tuple[str, ...]
    """The model of each action (column)."""
    oracle_mix: Callable[[float], np.ndarray] | None = None
    """The training oracle's action shares at a budget (``toolkit.solve``), for ``random``."""
    action_rules: tuple[str | None, ...] = ()
    """The stopping rule of each action (``actions.rule``; None for a static action)."""


@dataclass(frozen=True)
class Decision:
    """A policy's allocation of a batch at a budget, and how it met the budget."""

    weights: np.ndarray
    calibrated_on: str
    """test_features (priced on the batch's inputs), validation, train, none, test_outcomes."""
    parameter_name: str | None = None
    parameter: float | None = None
    mix: float | None = None
    description: str = ""


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


# --------------------------------------------------------------------------------------------
# Fixed allocations: the same mix of two actions for every instance
# --------------------------------------------------------------------------------------------
def fixed_mix_weights(
    n: int, k: int, steps: Sequence[int], step_costs: np.ndarray, budget: float
) -> tuple[np.ndarray, float]:
    """Every instance on the same mix of the two ``steps`` (action indices in increasing
    ``step_costs``, their mean planned cost on the batch) around ``budget``: mean planned cost
    B exactly when B is inside the steps' range, else the nearest end. Returns (weights, theta
    = the weight on the dearer action)."""
    steps = np.asarray(steps)
    order = np.argsort(step_costs, kind="stable")
    steps, step_costs = steps[order], np.asarray(step_costs)[order]
    weights = np.zeros((n, k))
    if budget <= step_costs[0] or len(steps) == 1:
        weights[:, steps[0] if budget <= step_costs[0] else steps[-1]] = 1.0
        return weights, 0.0
    if budget >= step_costs[-1]:
        weights[:, steps[-1]] = 1.0
        return weights, 1.0
    upper = int(np.searchsorted(step_costs, budget, side="left"))
    lower = upper - 1
    theta = (budget - step_costs[lower]) / (step_costs[upper] - step_costs[lower])
    weights[:, steps[lower]] = 1.0 - theta
    weights[:, steps[upper]] += theta
    return weights, float(theta)


def action_ladder(action_cost: np.ndarray, action_acc: np.ndarray) -> np.ndarray:
    """Action indices in increasing mean cost, one per distinct cost (the more accurate on the
    training split where two actions cost the same): the steps a uniform policy climbs."""
    order = np.lexsort((-action_acc, action_cost))
    _, first = np.unique(action_cost[order], return_index=True)
    return order[first]


def concave_hull_actions(action_cost: np.ndarray, action_acc: np.ndarray) -> np.ndarray:
    """The actions on the rising upper concave hull of the points (mean cost, mean accuracy),
    cheapest first: from the cheapest (most accurate among equally cheap) action, each next
    vertex is the one of steepest accuracy gain per unit of cost, while that gain is positive."""
    ladder = action_ladder(action_cost, action_acc)
    hull = [int(ladder[0])]
    while True:
        here = hull[-1]
        later = [a for a in ladder if action_cost[a] > action_cost[here]]
        slopes = [
            (action_acc[a] - action_acc[here]) / (action_cost[a] - action_cost[here]) for a in later
        ]
        if not later or max(slopes) <= 0:
            return np.array(hull)
        best = max(slopes)
        # among equally steep steps, the farthest: collinear points are not vertices
        hull.append(
            int(
                max(
                    (a for a, s in zip(later, slopes, strict=True) if s == best),
                    key=lambda a: action_cost[a],
                )
            )
        )


class Policy:
    """The interface every policy has: ``fit`` (on a ``TrainingSet``) then ``allocate``.

    ``state()`` is what ``fit`` learned as plain JSON values; ``from_state`` rebuilds the fitted
    policy from it, so a run stores its policies and evaluation reuses them as they are."""

    name: ClassVar[str] = ""

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> Policy:
        raise NotImplementedError

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Policy:
        raise NotImplementedError


@dataclass
class _FixedMix(Policy):
    """Every instance the same mix of two actions from ``steps`` (indices into the actions)."""

    steps: list[int] = field(default_factory=list)
    description: ClassVar[str] = ""

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        planned = inputs.planned_cost.mean(axis=0)
        weights, theta = fixed_mix_weights(
            len(inputs), inputs.planned_cost.shape[1], self.steps, planned[self.steps], budget
        )
        return Decision(weights, "test_features", "theta", theta, None, self.description)

    def state(self) -> dict[str, Any]:
        return {"steps": [int(a) for a in self.steps]}


@dataclass
class Uniform(_FixedMix):
    name: ClassVar[str] = "uniform"
    description: ClassVar[str] = "the same action for all, the two around B mixed"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> Uniform:
        mean_cost = train.inputs.planned_cost.mean(axis=0)
        self.steps = [int(a) for a in action_ladder(mean_cost, train.acc.mean(axis=0))]
        return self

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Uniform:
        return cls(steps=list(state["steps"]))


@dataclass
class BestFixed(_FixedMix):
    name: ClassVar[str] = "best_fixed"
    description: ClassVar[str] = (
        "the same mix for all, over the concave hull of the actions' training (cost, accuracy)"
    )

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> BestFixed:
        hull = concave_hull_actions(train.cost.mean(axis=0), train.acc.mean(axis=0))
        self.steps = [int(a) for a in hull]
        return self

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BestFixed:
        return cls(steps=list(state["steps"]))


@dataclass
class AlwaysModel(_FixedMix):
    """``uniform`` over one model's actions."""

    model: str = ""
    name: ClassVar[str] = "always"

    @property
    def policy_name(self) -> str:
        return f"always_{self.model}"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> AlwaysModel:
        mine = np.array([m == self.model for m in train.action_models])
        mean_cost = train.inputs.planned_cost.mean(axis=0)
        ladder = action_ladder(
            np.where(mine, mean_cost, np.inf), np.where(mine, train.acc.mean(axis=0), -np.inf)
        )
        self.steps = [int(a) for a in ladder if mine[a]]
        return self

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        decision = super().allocate(inputs, budget)
        return Decision(
            decision.weights,
            decision.calibrated_on,
            "theta",
            decision.parameter,
            None,
            f"every instance on {self.model}, its two actions around B mixed",
        )

    def state(self) -> dict[str, Any]:
        return {"steps": [int(a) for a in self.steps], "model": self.model}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AlwaysModel:
        return cls(steps=list(state["steps"]), model=state["model"])


def rule_family(rule: str | None) -> str | None:
    """The family of a stopping rule's label: ``esc(w=4,b<=16)`` -> ``esc``."""
    return None if rule is None else rule.split("(", 1)[0]


@dataclass
class RuleFamily(_FixedMix):
    """One family of stopping rules on its own (``rule_esc``, ``rule_ac``, ``rule_agree``,
    ``rule_verify``), the way its papers use it: every instance the same rule, its parameter
    tuned on the training split to meet B (the two settings around B on the family's ladder
    of mean planned cost, mixed)."""

    family: str = ""
    name: ClassVar[str] = "rule"

    @property
    def policy_name(self) -> str:
        return f"rule_{self.family}"

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"every instance the same {self.family} rule, its two settings around B mixed"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> RuleFamily:
        rules = train.action_rules or (None,) * train.acc.shape[1]
        mine = np.array([rule_family(r) == self.family for r in rules], dtype=bool)
        if not mine.any():
            raise ValueError(f"no action of the training set is a {self.family!r} rule")
        mean_cost = train.inputs.planned_cost.mean(axis=0)
        ladder = action_ladder(
            np.where(mine, mean_cost, np.inf), np.where(mine, train.acc.mean(axis=0), -np.inf)
        )
        self.steps = [int(a) for a in ladder if mine[a]]
        return self

    def state(self) -> dict[str, Any]:
        return {"steps": [int(a) for a in self.steps], "family": self.family}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RuleFamily:
        return cls(steps=list(state["steps"]), family=state["family"])


# --------------------------------------------------------------------------------------------
# random, prompt_length, difficulty_bins
# --------------------------------------------------------------------------------------------
@dataclass
class RandomMix(Policy):
    """The training oracle's action mix at each budget it was fitted for, tilted to meet B."""

    budgets: list[float] = field(default_factory=list)
    mixes: list[list[float]] = field(default_factory=list)
    name: ClassVar[str] = "random"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> RandomMix:
        if train.oracle_mix is None:
            raise ValueError("random needs the training oracle's mix (TrainingSet.oracle_mix)")
        self.budgets = sorted({float(b) for b in budgets})
        self.mixes = [train.oracle_mix(b).tolist() for b in self.budgets]
        return self

    def mix_at(self, budget: float) -> np.ndarray:
        """The stored mix of the budget nearest to ``budget`` (log scale)."""
        index = int(np.argmin(np.abs(np.log(self.budgets) - np.log(budget))))
        return np.asarray(self.mixes[index], dtype=np.float64)

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        mix = self.mix_at(budget)
        planned = inputs.planned_cost.mean(axis=0)
        scale = max(float(np.ptp(planned)), 1e-300)

        def tilted(t: float) -> np.ndarray:
            logits = np.where(
                mix > 0, np.log(np.where(mix > 0, mix, 1.0)) - t * planned / scale, -np.inf
            )
            weights = np.exp(logits - logits.max())
            return weights / weights.sum()

        # mean planned cost falls as t rises: bisect -cost, which rises
        t = bisect_increasing(lambda t: -float(tilted(t) @ planned), -budget, -50.0, 50.0)
        shares = tilted(t)
        return Decision(
            np.tile(shares, (len(inputs), 1)),
            "test_features",
            "tilt",
            t,
            None,
            "the training oracle's action mix at B, tilted to meet B, in expectation",
        )

    def state(self) -> dict[str, Any]:
        return {"budgets": self.budgets, "mixes": self.mixes}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RandomMix:
        return cls(budgets=list(state["budgets"]), mixes=[list(m) for m in state["mixes"]])


def ladder_weights(planned: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per instance, the two actions whose planned costs bracket its target cost (clipped to
    its range), mixed so that its planned cost is the target."""
    n, k = planned.shape
    order = np.argsort(planned, axis=1, kind="stable")
    steps = np.take_along_axis(planned, order, axis=1)
    target = np.clip(target, steps[:, 0], steps[:, -1])
    upper = np.clip((steps < target[:, None]).sum(axis=1), 0, k - 1)
    lower = np.maximum(upper - 1, 0)
    rows = np.arange(n)
    low_cost, high_cost = steps[rows, lower], steps[rows, upper]
    span = high_cost - low_cost
    share = np.where(span > 0, (target - low_cost) / np.where(span > 0, span, 1.0), 1.0)
    weights = np.zeros((n, k))
    weights[rows, order[rows, lower]] += 1.0 - share
    weights[rows, order[rows, upper]] += share
    return weights


@dataclass
class PromptLength(Policy):
    """More compute to longer prompts: planned cost ``clip(kappa * len_i)``."""

    name: ClassVar[str] = "prompt_length"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> PromptLength:
        return self

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        length = inputs.frame["prompt_tokens"].to_numpy(dtype=np.float64, na_value=np.nan)
        fill = np.nanmedian(length) if np.isfinite(length).any() else 1.0
        length = np.maximum(np.where(np.isfinite(length), length, fill), 1.0)
        planned = inputs.planned_cost
        low_cost, high_cost = planned.min(axis=1), planned.max(axis=1)

        def mean_cost(kappa: float) -> float:
            return float(np.clip(kappa * length, low_cost, high_cost).mean())

        kappa = bisect_increasing(mean_cost, budget, 0.0, float((high_cost / length).max()) + 1.0)
        target = np.clip(kappa * length, low_cost, high_cost)
        return Decision(
            ladder_weights(planned, target),
            "test_features",
            "kappa",
            kappa,
            None,
            "planned cost = clip(kappa * prompt_tokens), neighbours mixed",
        )

    def state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PromptLength:
        return cls()


BIN_SIGNALS = ("signal_1", "probe_entropy", "level", "prompt_tokens")
"""Difficulty-bin signals in order of preference: the first one the training split has."""
N_BINS = 5


@dataclass
class DifficultyBins(Policy):
    """Quantile bins of an observable signal and each bin's training accuracy curve."""

    signal: str = ""
    edges: list[float] = field(default_factory=list)
    """Inner bin edges (n_bins - 1), from the training split's quantiles."""
    bin_acc: list[list[float]] = field(default_factory=list)
    """(n_bins, K) mean training accuracy per bin and action."""
    n_bins: int = N_BINS
    name: ClassVar[str] = "difficulty_bins"
    _last: LastCurve = field(default_factory=LastCurve, repr=False, compare=False)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value; a missing value goes to the middle bin."""
        values = np.asarray(values, dtype=np.float64)
        bins = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.where(np.isfinite(values), bins, len(self.edges) // 2)

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> DifficultyBins:
        frame = train.inputs.frame
        self.signal = next(
            (
                name
                for name in BIN_SIGNALS
                if name in frame.columns and _distinct_count(frame[name]) >= 2
            ),
            "prompt_tokens",
        )
        values = _numbers(frame, self.signal)
        known = values[np.isfinite(values)]
        distinct = np.unique(known)
        if distinct.size <= self.n_bins:
            edges = 0.5 * (distinct[1:] + distinct[:-1])
        else:
            edges = np.unique(np.quantile(known, np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]))
        self.edges = edges.tolist()
        bins = self.bin_of(values)
        overall = train.acc.mean(axis=0)
        self.bin_acc = [
            (train.acc[bins == b].mean(axis=0) if (bins == b).any() else overall).tolist()
            for b in range(len(edges) + 1)
        ]
        return self

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        curve = self._last.get(
            (inputs.frame, inputs.planned_cost),
            None,
            lambda: PriceCurve(
                np.asarray(self.bin_acc)[self.bin_of(_numbers(inputs.frame, self.signal))],
                inputs.planned_cost,
                min_price=0.0,
            ),
        )
        scores, calibration = curve.scores, curve.calibrate(budget)
        return priced_decision(
            scores,
            inputs.planned_cost,
            calibration,
            "test_features",
            f"{len(self.edges) + 1} quantile bins of {self.signal} (train)",
        )

    def state(self) -> dict[str, Any]:
        return {"signal": self.signal, "edges": self.edges, "bin_acc": self.bin_acc}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DifficultyBins:
        return cls(signal=state["signal"], edges=list(state["edges"]), bin_acc=state["bin_acc"])


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _distinct_count(column: pd.Series) -> int:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return int(np.unique(values[np.isfinite(values)]).size)


BASELINES: dict[str, type[Policy]] = {
    policy.name: policy
    for policy in (
        Uniform,
        BestFixed,
        AlwaysModel,
        RuleFamily,
        RandomMix,
        PromptLength,
        DifficultyBins,
    )
}
"""Every baseline by its family name (``always`` is one ``always_<model>`` per model)."""


def policy_from_state(family: str, state: dict[str, Any]) -> Policy:
    """A fitted baseline back from ``Policy.state()``."""
    return BASELINES[family].from_state(state)


__all__ = [
    "BASELINES",
    "BIN_SIGNALS",
    "AlwaysModel",
    "BestFixed",
    "Decision",
    "DifficultyBins",
    "Inputs",
    "Policy",
    "PriceCalibration",
    "PromptLength",
    "RandomMix",
    "RuleFamily",
    "TrainingSet",
    "Uniform",
    "action_ladder",
    "LastCurve",
    "PriceCurve",
    "calibrate_price",
    "concave_hull_actions",
    "fixed_mix_weights",
    "ladder_weights",
    "log_probability_scores",
    "onehot",
    "rule_family",
    "policy_from_state",
    "price_choice",
    "priced_decision",
    "priced_weights",
]
