"""Policies: fixed allocations, the same mix of two actions for every instance (``uniform``,
``best_fixed``, ``always_<model>``, ``rule_<family>``), and the mixing weights and action
ladders they climb."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from toolkit.policies.interface import Decision, Inputs, Policy, TrainingSet


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
    order = np.argsort(step_costs, kind="stable")
    ladder, step_costs = np.asarray(steps)[order], np.asarray(step_costs)[order]
    weights = np.zeros((n, k))
    if budget <= step_costs[0] or len(ladder) == 1:
        weights[:, ladder[0] if budget <= step_costs[0] else ladder[-1]] = 1.0
        return weights, 0.0
    if budget >= step_costs[-1]:
        weights[:, ladder[-1]] = 1.0
        return weights, 1.0
    upper = int(np.searchsorted(step_costs, budget, side="left"))
    lower = upper - 1
    theta = (budget - step_costs[lower]) / (step_costs[upper] - step_costs[lower])
    weights[:, ladder[lower]] = 1.0 - theta
    weights[:, ladder[upper]] += theta
    return weights, float(theta)


def action_ladder(action_cost: np.ndarray, action_acc: np.ndarray) -> np.ndarray:
    """Action indices in increasing mean cost, one per distinct cost (the more accurate on the
    training split where two actions cost the same): the steps a uniform policy climbs."""
    order = np.lexsort((-action_acc, action_cost))
    _, first = np.unique(action_cost[order], return_index=True)
    return order[first]


def _ladder_among(train: TrainingSet, mine: np.ndarray) -> list[int]:
    """``action_ladder`` of the actions in the mask ``mine`` (by training planned cost and
    accuracy): the steps a uniform policy over them climbs."""
    mean_cost = train.inputs.planned_cost.mean(axis=0)
    ladder = action_ladder(
        np.where(mine, mean_cost, np.inf), np.where(mine, train.acc.mean(axis=0), -np.inf)
    )
    return [int(a) for a in ladder if mine[a]]


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

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        return cls(steps=list(state["steps"]))


@dataclass
class Uniform(_FixedMix):
    name: ClassVar[str] = "uniform"
    description: ClassVar[str] = "the same action for all, the two around B mixed"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> Uniform:
        mean_cost = train.inputs.planned_cost.mean(axis=0)
        self.steps = [int(a) for a in action_ladder(mean_cost, train.acc.mean(axis=0))]
        return self


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


@dataclass
class AlwaysModel(_FixedMix):
    """``uniform`` over one model's actions."""

    model: str = ""
    name: ClassVar[str] = "always"

    @property
    def policy_name(self) -> str:
        return f"always_{self.model}"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> AlwaysModel:
        self.steps = _ladder_among(train, np.array([m == self.model for m in train.action_models]))
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
        self.steps = _ladder_among(train, mine)
        return self

    def state(self) -> dict[str, Any]:
        return {"steps": [int(a) for a in self.steps], "family": self.family}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RuleFamily:
        return cls(steps=list(state["steps"]), family=state["family"])
