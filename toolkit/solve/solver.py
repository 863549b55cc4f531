"""Solve: the entry points, the feasible budget range and the oracle allocation at each budget
(``solve_budgets``), from outcomes on the backend or in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from toolkit import db
from toolkit.errors import StudyError
from toolkit.solve.hulls import InstanceHulls, _hulls_of_columns, _outcome_columns, _pulled_hulls
from toolkit.solve.mixing import Allocation, _bisect, _hull_sweep
from toolkit.solve.queries import cost_range, slope_keys

SOLVERS = ("hull", "bisection")
DEFAULT_TOL = 0.0
"""Bisection stops when its bracket on lambda is narrower than ``tol * lambda``; at 0 it runs
until one slope is left, and so finds lambda* exactly."""
_BOUNDARY_SLACK = 1e-12  # relative: a budget this close to an end of the range is that end


# --------------------------------------------------------------------------------------------
# Solving
# --------------------------------------------------------------------------------------------
def budget_range(backend: ibis.BaseBackend, outcomes: ir.Table) -> tuple[float, float]:
    """``(C_min, C_max)``: the feasible budgets, from every instance on its cheapest action to
    every instance on its most expensive one."""
    row = backend.to_pyarrow(cost_range(outcomes)).to_pylist()[0]
    if row["min_mean_cost"] is None:
        raise StudyError("outcomes: no rows to solve")
    return float(row["min_mean_cost"]), float(row["max_mean_cost"])


def solve_budget(
    backend: ibis.BaseBackend,
    outcomes: ir.Table,
    budget: float,
    *,
    solver: str = "hull",
    tol: float = DEFAULT_TOL,
) -> Allocation:
    """The oracle allocation meeting a mean budget (see the module docstring)."""
    return solve_budgets(backend, outcomes, [budget], solver=solver, tol=tol)[0]


def solve_budgets(
    backend: ibis.BaseBackend,
    outcomes: ir.Table,
    budgets: Sequence[float],
    *,
    solver: str = "hull",
    tol: float = DEFAULT_TOL,
    clip: bool = False,
) -> list[Allocation]:
    """The oracle allocation at each budget, in the order given.

    ``outcomes``: any Ibis table with instance_id, action_id, acc, cost (any subset of
    instances); its four columns are pulled once. ``hull`` solves every budget from one sort;
    ``bisection`` searches each budget's price with queries on ``backend`` against a temporary
    table of the hull segments (slope_key, cost_step). A budget outside ``budget_range`` raises
    StudyError, or with ``clip`` is solved at the nearest end of the range (a budget grid).
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
    hulls = _pulled_hulls(backend, outcomes)
    targets = _clipped_budgets(hulls, budgets) if clip else _feasible_budgets(hulls, budgets)
    if solver == "hull":
        return _hull_sweep(hulls, targets)
    steps = pa.table(
        {"slope_key": slope_keys(hulls.entry_slope[hulls.steps]), "cost_step": hulls.cost_steps}
    )
    with db.temporary_table(backend, steps) as segments:
        return [_bisect(backend, segments, hulls, budget, tol) for budget in targets]


def solve_columns(
    outcomes: pa.Table | Mapping[str, np.ndarray], budgets: Sequence[float], *, clip: bool = False
) -> list[Allocation]:
    """``solve_budgets`` (hull solver) of outcomes already in memory (columns instance_id,
    action_id, acc, cost)."""
    hulls = _hulls_of_columns(_outcome_columns(outcomes))
    targets = _clipped_budgets(hulls, budgets) if clip else _feasible_budgets(hulls, budgets)
    return _hull_sweep(hulls, targets)


def _clipped_budgets(hulls: InstanceHulls, budgets: Sequence[float]) -> list[float]:
    """Budgets moved into [C_min, C_max]."""
    return [min(max(float(b), hulls.min_mean_cost), hulls.max_mean_cost) for b in budgets]


def _feasible_budgets(hulls: InstanceHulls, budgets: Sequence[float]) -> list[float]:
    """Budgets checked against [C_min, C_max]; values within rounding of an end become that end."""
    low, high = hulls.min_mean_cost, hulls.max_mean_cost
    slack = _BOUNDARY_SLACK * max(abs(low), abs(high))
    feasible, infeasible = [], []
    for budget in map(float, budgets):
        if low - slack <= budget <= high + slack:
            feasible.append(min(max(budget, low), high))
        else:
            infeasible.append(f"{budget:g}")
    if infeasible:
        which = (
            f"budget {infeasible[0]} is"
            if len(infeasible) == 1
            else f"budgets {', '.join(infeasible)} are"
        )
        raise StudyError(
            f"budgets.values: {which} infeasible: mean cost per instance ranges from {low:g} "
            "(every instance on "
            f"its cheapest action) to {high:g} (every instance on its most expensive action)"
        )
    return feasible
