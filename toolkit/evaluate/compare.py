"""Comparison at matched spend: every policy's curve over the budget grid (``Curve``), its
allocation whose realised mean cost is a declared budget exactly (``matched_weights``, a mix
of two grid budgets: ``toolkit.metrics.matched_mix``), the oracle solved on the test outcomes,
and, per budget, the references every gain is measured against (``References``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from toolkit import solve
from toolkit.evaluate.runs import Labels, PolicyRun, RunKey, TestSet
from toolkit.metrics import MatchedMix, matched_mix
from toolkit.noise import OracleNoise, oracle_noise


# --------------------------------------------------------------------------------------------
# Curves: every policy over the grid
# --------------------------------------------------------------------------------------------
@dataclass
class Curve:
    """One policy run over the grid: per budget the pooled means."""

    budgets: list[float] = field(default_factory=list)
    planned: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    accuracy_true: list[float | None] = field(default_factory=list)

    def add(self, test: TestSet, budget: float, weights: np.ndarray) -> None:
        o = test.outcomes
        self.budgets.append(budget)
        self.planned.append(float((weights * test.planned).sum(axis=1).mean()))
        self.cost.append(float((weights * o.cost).sum(axis=1).mean()))
        self.accuracy.append(float((weights * o.acc).sum(axis=1).mean()))
        self.accuracy_true.append(
            None if o.acc_true is None else float((weights * o.acc_true).sum(axis=1).mean())
        )

    def rows(self, policy: str, seed: int | None) -> Iterator[dict]:
        for budget, planned, cost, acc, truth in zip(
            self.budgets, self.planned, self.cost, self.accuracy, self.accuracy_true, strict=True
        ):
            yield {
                "policy": policy,
                "seed": seed,
                "budget": budget,
                "planned_cost": planned,
                "cost": cost,
                "accuracy": acc,
                "accuracy_true": truth,
            }


def matched_weights(
    run: PolicyRun, test: TestSet, curve: Curve, budget: float
) -> tuple[np.ndarray | None, MatchedMix | None]:
    """The run's allocation at realised mean cost ``budget`` (a mix of two grid budgets)."""
    mix = matched_mix(curve.budgets, curve.cost, budget)
    if mix is None:
        return None, None
    low, _ = run.allocate(test, mix.low_budget)
    if mix.low_budget == mix.high_budget:
        return low, mix
    high, _ = run.allocate(test, mix.high_budget)
    return mix.weight * low + (1.0 - mix.weight) * high, mix


OracleRun = tuple[Curve, dict[float, solve.Allocation]]
"""A menu's oracle solved on the test outcomes: its curve, and its allocation per budget."""


def oracle_run(test: TestSet, grid: tuple[float, ...], menu: str = "static") -> OracleRun:
    """The oracle of one menu solved on the pooled test outcomes at every grid budget."""
    menu_outcomes = test.outcomes.columns_subset(test.menus[menu])
    allocations = solve.solve_columns(menu_outcomes.columns(), list(grid), clip=True)
    curve = Curve()
    by_budget = {}
    for budget, allocation in zip(grid, allocations, strict=True):
        curve.add(test, budget, test.outcomes.weights(allocation.assignment))
        by_budget[budget] = allocation
    return curve, by_budget


# --------------------------------------------------------------------------------------------
# Per budget: the references every gain is measured against
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class References:
    """At one budget: lambda*, the oracle labels, and the matched accuracies of the oracle,
    best_fixed and uniform (per test instance)."""

    budget: float
    lambda_: np.ndarray
    """(n,) lambda*(B) of each instance's fold."""
    labels: np.ndarray
    """(n,) column index of each test instance's oracle label at its fold's lambda*(B)."""
    oracle: np.ndarray
    best_fixed: np.ndarray | None
    uniform: np.ndarray | None
    binding: bool
    noise: OracleNoise | None = None
    """The oracle's gain apparent and held out (``toolkit.noise``)."""

    def for_menu(
        self, labels: tuple[np.ndarray, np.ndarray], oracle: np.ndarray | None = None
    ) -> References:
        """The same references with another menu's oracle labels and lambda*; with ``oracle``
        (the menu's own oracle's matched accuracy per instance) shares of the oracle's gain
        are of that oracle's, and its held-out gain is not measured (None)."""
        columns, lambdas = labels
        if oracle is None:
            return replace(self, labels=columns, lambda_=lambdas)
        return replace(self, labels=columns, lambda_=lambdas, oracle=oracle, noise=None)


def references(
    test: TestSet,
    labels: Labels,
    budget: float,
    oracle: solve.Allocation,
    runs: dict[RunKey, PolicyRun],
    curves: dict[RunKey, Curve],
    action_names: tuple[str, ...],
) -> References:
    """The static menu's references at ``budget``: the test oracle's allocation ``oracle``,
    best_fixed and uniform at matched spend (None when not evaluated), and the oracle's
    noise."""
    o = test.outcomes
    oracle_weights = o.weights(oracle.assignment)
    matched, weights_of = {}, {}
    for name in ("best_fixed", "uniform"):
        run = runs.get((name, None))
        weights = (
            None if run is None else matched_weights(run, test, curves[(name, None)], budget)[0]
        )
        weights_of[name] = weights
        matched[name] = None if weights is None else (weights * o.acc).sum(axis=1)
    columns, lambdas = labels[budget]
    return References(
        budget,
        lambdas,
        columns,
        (oracle_weights * o.acc).sum(axis=1),
        matched["best_fixed"],
        matched["uniform"],
        oracle.binding,
        _static_noise(test, budget, oracle_weights, weights_of["best_fixed"], action_names),
    )


def _static_noise(
    test: TestSet,
    budget: float,
    oracle_weights: np.ndarray,
    fixed_weights: np.ndarray | None,
    action_names: tuple[str, ...],
) -> OracleNoise | None:
    """The static oracle's noise, on the static menu's actions only (the probe menu's have no
    truth or halves of their own: their samples follow the probe's)."""
    columns = test.menus["static"]
    return oracle_noise(
        test.outcomes.columns_subset(columns),
        budget,
        oracle_weights[:, columns],
        None if fixed_weights is None else fixed_weights[:, columns],
        [action_names[c] for c in columns],
    )
