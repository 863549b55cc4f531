"""Solve: the oracle allocation of test-time compute under a mean budget.

**The problem** (Solve-then-Learn, arXiv 2604.14853). Instances i = 1..N and actions a with
estimated accuracy ``acc_ia`` and cost ``c_ia`` (in ``runs.cost_unit``); an allocation gives each
instance weights ``x_ia >= 0`` with ``sum_a x_ia = 1``::

    maximize   A(x) = 1/N sum_ia x_ia acc_ia
    subject to C(x) = 1/N sum_ia x_ia c_ia <= B

**The oracle at a price lambda >= 0.** Each instance takes the action with the best Lagrangian score
``a_i(lambda) = argmax_a acc_ia - lambda * c_ia``, ties broken toward the cheaper action, then the
lower ``action_id``. Its mean cost ``C(lambda)`` is a non-increasing step function of lambda (the
staircase); ``oracle_actions`` and ``allocation_totals`` are this definition as Ibis queries.

**The hull.** An action is the oracle at some price only if it is a vertex of the rising part of the
instance's upper concave hull of (cost, acc) points: ``v_0`` (the cheapest action, the most
accurate among equally cheap ones) .. ``v_m``, with segment slopes
``s_k = (acc(v_k) - acc(v_{k-1})) / (c(v_k) - c(v_{k-1}))`` and ``s_1 > s_2 > ... > s_m > 0``.
At price lambda the oracle is ``v_k`` with ``k = #{k: s_k > lambda}`` (at ``lambda = s_k`` the tie
goes to the cheaper ``v_{k-1}``). Summed over instances, over every instance's segments::

    C(lambda) = C_min + 1/N sum_{segments with s_k > lambda} (c(v_k) - c(v_{k-1}))

and the same for A, so sorting all segments by slope gives the whole staircase in one pass.
Collinear points are not vertices, dominated actions (no more accurate than a cheaper one) and
actions tied in cost with a better one never are.

**Mixing rule (exact budget).** Let ``s*`` be the slope at which the sorted, cumulated segments
cross ``N * B``. ``A_lo`` is the oracle at ``s*`` (segments steeper than ``s*`` taken, mean cost
``C_lo <= B``); ``A_hi`` also takes the segments of slope exactly ``s*`` (``C_hi > B``). Every
instance that switches at ``s*`` (one segment each) puts the same weight
``theta = (B - C_lo) / (C_hi - C_lo)`` on its ``A_hi`` action and ``1 - theta`` on its ``A_lo``
action, so the mean cost is ``B``. All switching segments have the same marginal accuracy ``s*``, so
this is an optimum of the linear program (the fractional multiple-choice knapsack) whatever the
split; the even split is deterministic and does not depend on row order.

**lambda\\* and the certificate.** The solution reports ``lambda* = s*``: the oracle at
``lambda*`` is ``A_lo``, and ``lambda*`` minimizes the Lagrangian dual
``L(lambda) = 1/N sum_i max_a (acc_ia - lambda c_ia) + lambda B``, an upper bound on ``A(x)`` for
every ``x`` with ``C(x) <= B``. ``Allocation.lagrangian = L(lambda*)``; it equals the mean accuracy
when the solution is optimal.

**Feasible budgets.** ``C_min <= B <= C_max``: the mean cost of every instance's cheapest action,
and of its most expensive action (``budget_range``); outside is a ``StudyError``. Above
``C_useful = C(0)`` (every instance on its cheapest most accurate action) more compute buys no
accuracy: the budget does not bind, ``lambda* = 0`` and the mean cost is ``C_useful < B``
(``Allocation.binding`` is False).

**Solvers.** ``hull``: the construction above; a budget sweep costs one sort. ``bisection``:
searches lambda on the staircase with queries on the backend, each evaluating it at
``PRICES_PER_QUERY`` prices spread over the bracket (``staircase_buckets``: bisection with 256
prices per step instead of one), until the bracket holds one slope (then it finds ``s*`` exactly,
as the hull does) or is narrower than ``tol * lambda``. Prices are compared as the slopes'
IEEE-754 bit patterns (``slope_keys``), which integer parameters carry exactly. With more than
one slope left in the bracket ``lambda*`` is its steepest, the instances switching anywhere in it
are mixed, the mean cost is still ``B`` and the accuracy is below the optimum by at most
``lagrangian - mean_acc``.

**Where the work runs.** The oracle and the staircase are Ibis expressions on the backend. The
per-instance hull is computed in numpy, in row blocks, from one streamed pull of (instance_id,
action_id, acc, cost), as exact estimation is in ``toolkit.outcomes``: SQL has no per-group
hull, and a pairwise test in a wide layout costs more in the pivot alone than the whole numpy
pass (measured). The hull compares rounded slopes, the query rounded scores: they agree except
at prices within rounding of a breakpoint (exactly, when scores are exact: e.g. accuracies k/16,
integer costs and prices k/256, as the tests use).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit import db
from toolkit.errors import StudyError

LAMBDA = ibis.param("float64")
"""The price of one unit of cost, bound at execution: ``params={LAMBDA: value}``. (For DuckDB,
Ibis writes it as a decimal literal: a price with 17 significant digits may arrive rounded in
its last bit. Exact ties at such a price are then decided by that bit.)"""
SLOPE_KEY_LOW = ibis.param("int64")
"""Bottom of a bisection query's bracket, as a slope key (``slope_keys``)."""
SLOPE_KEY_STEP = ibis.param("int64")
"""Width of a bisection query's buckets, in slope keys."""

SOLVERS = ("hull", "bisection")
DEFAULT_TOL = 0.0
"""Bisection stops when its bracket on lambda is narrower than ``tol * lambda``; at 0 it runs
until one slope is left, and so finds lambda* exactly."""
PRICES_PER_QUERY = 256
"""Prices at which each bisection query evaluates the staircase (2 would be plain bisection)."""

_COLUMN_TYPES = {
    "instance_id": np.int64,
    "action_id": np.int32,
    "acc": np.float64,
    "cost": np.float64,
}
_OUTCOME_COLUMNS = tuple(_COLUMN_TYPES)
_BOUNDARY_SLACK = 1e-12  # relative: a budget this close to an end of the range is that end
_MAX_BISECTION_QUERIES = 64  # far above need: 8 queries cut 2**63 keys to one
_ROWS_PULLED_IN_ONE_PIECE = 2**21  # (instance, action) rows; more are streamed
_MAX_SHARED_WEIGHT_SLICES = 64  # up to this many mixed instances, weights slice shared ones
_PAD_ACTION = np.iinfo(np.int32).max  # fills missing actions; loses every tie, never a vertex
_BLOCK_ROWS = 8192  # instances per hull block: the pairwise arrays stay in cache


# --------------------------------------------------------------------------------------------
# Ibis: the oracle at LAMBDA
# --------------------------------------------------------------------------------------------
def oracle_actions(outcomes: ir.Table) -> ir.Table:
    """Per instance_id the action maximizing ``acc - LAMBDA * cost``.

    Ties go to the cheaper action, then the lower action_id, explicitly (an arg_max picks
    arbitrarily among ties). Columns: instance_id, action_id, acc, cost.
    """
    scored = outcomes.select(*_OUTCOME_COLUMNS, score=outcomes.acc - LAMBDA * outcomes.cost)
    ranked = scored.mutate(
        preference=ibis.row_number().over(
            group_by="instance_id", order_by=[ibis.desc("score"), "cost", "action_id"]
        )
    )
    return ranked.filter(ranked.preference == 0).select(*_OUTCOME_COLUMNS)


def allocation_totals(outcomes: ir.Table) -> ir.Table:
    """One row: mean_cost ``C(LAMBDA)``, mean_acc ``A(LAMBDA)`` and n_instances of the oracle."""
    chosen = oracle_actions(outcomes)
    return chosen.aggregate(
        mean_cost=chosen.cost.mean(), mean_acc=chosen.acc.mean(), n_instances=chosen.count()
    )


def cost_range(outcomes: ir.Table) -> ir.Table:
    """One row: min_mean_cost ``C_min`` and max_mean_cost ``C_max``, the mean over instances of
    the cheapest and of the most expensive action's cost."""
    per_instance = outcomes.group_by("instance_id").aggregate(
        cheapest=outcomes.cost.min(), dearest=outcomes.cost.max()
    )
    return per_instance.aggregate(
        min_mean_cost=per_instance.cheapest.mean(), max_mean_cost=per_instance.dearest.mean()
    )


def slope_keys(slopes: np.ndarray) -> np.ndarray:
    """int64 keys ordered like the (positive) slopes: their IEEE-754 bit patterns.

    The bisection compares these instead of float parameters: Ibis renders a float64 parameter
    as a decimal literal, which DuckDB reads as DECIMAL and rounds in the last bit for about
    one value in ten (measured), so a bracket bound could miss the slope it was taken from.
    Integer parameters are exact, and equal keys are exactly equal slopes.
    """
    return np.ascontiguousarray(slopes, dtype=np.float64).view(np.int64)


def staircase_buckets(hull_steps: ir.Table, *, prices: int = PRICES_PER_QUERY) -> ir.Table:
    """The staircase at ``prices`` prices in one query: the bisection's step.

    ``hull_steps`` has one row per hull segment: slope_key (``slope_keys``) and cost_step. The
    bracket ``[SLOPE_KEY_LOW, SLOPE_KEY_LOW + prices * SLOPE_KEY_STEP)`` is cut into ``prices``
    buckets ``(slope_key - SLOPE_KEY_LOW) // SLOPE_KEY_STEP``; segments below it fall in bucket
    -1, above it in bucket ``prices``. One row per bucket: bucket, cost (summed cost_step),
    lowest and steepest slope_key. The bucket only has to be monotone in the key (an engine may
    floor a float division), so each bucket holds exactly the keys in [lowest, steepest], and
    summing the costs of the buckets above one gives ``N * (C - C_min)`` above its steepest.
    """
    key = hull_steps.slope_key
    bucket = ibis.cases(
        (key < SLOPE_KEY_LOW, -1),
        else_=ibis.least((key - SLOPE_KEY_LOW) // SLOPE_KEY_STEP, prices),
    )
    return hull_steps.group_by(bucket=bucket).aggregate(
        cost=hull_steps.cost_step.sum(), lowest=key.min(), steepest=key.max()
    )


# --------------------------------------------------------------------------------------------
# The solution
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Allocation:
    """The oracle allocation at one budget.

    ``lagrangian`` is the dual bound ``L(lambda_) = A_lo - lambda_ * (C_lo - budget)`` (``A_lo``,
    ``C_lo``: the oracle at ``lambda_``), an upper bound on the mean accuracy of any allocation
    with mean cost <= budget; it equals ``mean_acc`` for an optimal solution.

    ``assignment`` (instance_id int64, action_id int32, weight float64): first one row per
    instance (ascending instance_id) with its ``A_lo`` action, weight 1 or ``1 - theta``; then one
    row per mixed instance with its ``A_hi`` action, weight ``theta``.
    """

    budget: float
    lambda_: float
    mean_cost: float
    mean_acc: float
    solver: str
    lagrangian: float
    assignment: pa.Table = field(repr=False)

    @property
    def binding(self) -> bool:
        """Whether the budget is spent: False when it exceeds the best allocation's cost."""
        return self.mean_cost >= self.budget - 1e-9 * abs(self.budget)


@dataclass(frozen=True, eq=False)
class InstanceHulls:
    """Every instance's rising upper concave hull, flattened.

    Instances are in ascending ``instance_id``; instance ``i``'s vertices are the flat indices
    ``first[i] .. first[i + 1] - 1`` in ascending cost, ``first[i]`` its cheapest action.
    ``entry_slope[v]``: below this price the oracle prefers vertex ``v`` to every cheaper action;
    the slope of the segment from the previous vertex (``+inf`` for first vertices). The
    vertices that end a segment are the ``steps``.
    """

    instance_id: np.ndarray
    first: np.ndarray
    vertex_action: np.ndarray
    vertex_cost: np.ndarray
    vertex_acc: np.ndarray
    entry_slope: np.ndarray
    max_mean_cost: float

    @property
    def n_instances(self) -> int:
        return len(self.instance_id)

    @cached_property
    def last(self) -> np.ndarray:
        """Per instance its last vertex: the cheapest most accurate action."""
        return np.r_[self.first[1:], len(self.vertex_action)] - 1

    @cached_property
    def owner(self) -> np.ndarray:
        """Per vertex, the position (0..N-1) of its instance."""
        return np.repeat(np.arange(self.n_instances), self.last - self.first + 1)

    @cached_property
    def steps(self) -> np.ndarray:
        """Flat indices of the vertices that end a segment (all but each instance's first)."""
        is_step = np.ones(len(self.vertex_action), dtype=bool)
        is_step[self.first] = False
        return np.flatnonzero(is_step)

    @cached_property
    def cost_steps(self) -> np.ndarray:
        """Per step, its cost increase over the previous vertex."""
        return self.vertex_cost[self.steps] - self.vertex_cost[self.steps - 1]

    @cached_property
    def unit_weights(self) -> pa.Array:
        """N ones, shared by the weight columns of every allocation solved from these hulls."""
        return pa.array(np.ones(self.n_instances))

    @cached_property
    def base_cost(self) -> float:
        """``N * C_min``: the summed cost of every instance's cheapest action."""
        return float(np.sum(self.vertex_cost[self.first]))

    @property
    def min_mean_cost(self) -> float:
        """``C_min``: every instance on its cheapest action."""
        return self.base_cost / self.n_instances

    @cached_property
    def useful_mean_cost(self) -> float:
        """``C_useful = C(0)``: every instance on its cheapest most accurate action."""
        return float(np.sum(self.vertex_cost[self.last])) / self.n_instances


def instance_hulls(outcomes: pa.Table | Mapping[str, np.ndarray]) -> InstanceHulls:
    """The hull of every instance in ``outcomes`` (columns instance_id, action_id, acc, cost).

    Raises StudyError on missing columns, nulls, non-finite values, duplicate
    (instance_id, action_id) rows or no rows at all.
    """
    return _hulls_of_columns(_outcome_columns(outcomes))


def _outcome_columns(outcomes: pa.Table | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    table = outcomes if isinstance(outcomes, pa.Table) else pa.table(dict(outcomes))
    missing = [c for c in _OUTCOME_COLUMNS if c not in table.column_names]
    if missing:
        raise StudyError(f"outcomes: missing columns {', '.join(missing)}")
    columns = {}
    for name, dtype in _COLUMN_TYPES.items():
        column = table.column(name)
        if column.null_count:
            raise StudyError(f"outcomes: column {name} has nulls")
        columns[name] = column.to_numpy().astype(dtype, copy=False)
    return columns


def _pulled_hulls(backend: ibis.BaseBackend, outcomes: ir.Table) -> InstanceHulls:
    """``instance_hulls`` of an Ibis table. Its four columns are copied batch by batch into numpy
    arrays sized by a count first; a large result is streamed, so neither the engine nor Python
    ever holds it twice (a small one comes in one piece, which is faster)."""
    selected = outcomes.select(*_OUTCOME_COLUMNS)
    n = backend.to_pyarrow(selected.count()).as_py()
    batches = (
        backend.to_pyarrow(selected).to_batches()
        if n <= _ROWS_PULLED_IN_ONE_PIECE
        else backend.to_pyarrow_batches(selected)
    )
    columns = {name: np.empty(n, dtype) for name, dtype in _COLUMN_TYPES.items()}
    filled = 0
    for batch in batches:
        end = filled + batch.num_rows
        if end > n:
            raise StudyError("outcomes: the table changed while it was read")
        for name, values in columns.items():
            column = batch.column(name)
            if column.null_count:
                raise StudyError(f"outcomes: column {name} has nulls")
            values[filled:end] = column.to_numpy(zero_copy_only=False)
        filled = end
    if filled != n:
        raise StudyError("outcomes: the table changed while it was read")
    return _hulls_of_columns(columns)


def _hulls_of_columns(columns: dict[str, np.ndarray]) -> InstanceHulls:
    instance_id, action, cost, acc = _instance_rows(columns)
    is_vertex, entry = _rising_hull(cost, acc)
    flat = np.flatnonzero(is_vertex)  # row-major: by instance, then by cost
    counts = np.count_nonzero(is_vertex, axis=1)
    return InstanceHulls(
        instance_id=instance_id,
        first=np.r_[0, np.cumsum(counts)[:-1]],
        vertex_action=action.ravel()[flat],
        vertex_cost=cost.ravel()[flat],
        vertex_acc=acc.ravel()[flat],
        entry_slope=entry.ravel()[flat],
        max_mean_cost=float(np.mean(cost[:, -1])),
    )


def _instance_rows(
    columns: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Instance ids (N,) and per instance its actions, costs, accuracies (N, K), each row sorted
    by (cost, -acc, action_id). An instance with fewer than K actions is padded with copies of
    its first row under action_id ``_PAD_ACTION``: equal in cost and accuracy, it loses the tie.

    Rows already in (instance_id, action_id) order, as the outcomes table is written, are used
    as they are; anything else is sorted first."""
    instance_id, action = columns["instance_id"], columns["action_id"]
    acc, cost = columns["acc"], columns["cost"]
    if len(instance_id) == 0:
        raise StudyError("outcomes: no rows to solve")
    for name, values in (("acc", acc), ("cost", cost)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = bad[0]
            raise StudyError(
                f"outcomes: {name} must be finite; instance {instance_id[row]} action "
                f"{action[row]} has {name} = {values[row]}"
            )
    same_instance = instance_id[1:] == instance_id[:-1]
    if np.any((instance_id[1:] < instance_id[:-1]) | (same_instance & (action[1:] < action[:-1]))):
        order = np.lexsort((action, instance_id))
        instance_id, action, acc, cost = instance_id[order], action[order], acc[order], cost[order]
        same_instance = instance_id[1:] == instance_id[:-1]
    duplicate = np.flatnonzero(same_instance & (action[1:] == action[:-1]))
    if duplicate.size:
        row = duplicate[0]
        raise StudyError(
            f"outcomes: instance {instance_id[row]} has action_id {action[row]} more than once"
        )

    starts = np.flatnonzero(np.r_[True, ~same_instance])
    counts = np.diff(np.r_[starts, len(instance_id)])
    n, k = len(starts), int(counts.max())
    if np.all(counts == k):
        action, acc, cost = (values.reshape(n, k) for values in (action, acc, cost))
    else:
        row = np.repeat(np.arange(n), counts)
        slot = np.arange(len(instance_id)) - np.repeat(starts, counts)
        padded = []
        for values, pad in ((action, None), (acc, acc[starts]), (cost, cost[starts])):
            grid = np.empty((n, k), dtype=values.dtype)
            grid[:] = _PAD_ACTION if pad is None else pad[:, None]
            grid[row, slot] = values
            padded.append(grid)
        action, acc, cost = padded
    action, acc, cost = _sort_rows(action, acc, cost)
    return instance_id[starts], action, cost, acc


def _sort_rows(
    action: np.ndarray, acc: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row sorted by (cost, -acc, action_id); only the rows out of that order are sorted."""
    if np.all(cost[:, 1:] > cost[:, :-1]):  # the usual case: costs rise with action_id
        return action, acc, cost
    in_order = (cost[:, 1:] > cost[:, :-1]) | (
        (cost[:, 1:] == cost[:, :-1])
        & (
            (acc[:, 1:] < acc[:, :-1])
            | ((acc[:, 1:] == acc[:, :-1]) & (action[:, 1:] > action[:, :-1]))
        )
    )
    unsorted = np.flatnonzero(~in_order.all(axis=1))
    if unsorted.size == 0:
        return action, acc, cost
    order = np.lexsort((action[unsorted], -acc[unsorted], cost[unsorted]), axis=-1)
    sorted_rows = []
    for values in (action, acc, cost):
        values = values.copy()  # the unsorted input may be a read-only view of Arrow memory
        values[unsorted] = np.take_along_axis(values[unsorted], order, axis=1)
        sorted_rows.append(values)
    return tuple(sorted_rows)


def _rising_hull(cost: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which points of each row (sorted by cost, -acc, action_id) are hull vertices, and each
    vertex's entry slope (``+inf`` for the first).

    With ``S[i, j] = (acc_j - acc_i) / (cost_j - cost_i)`` for ``i < j`` (``-inf`` at equal cost:
    ``j`` loses the tie), point ``j`` is the oracle exactly for prices in ``[L_j, U_j)``::

        U_j = min_{i<j} S[i, j]  (+inf for j = 0),     L_j = max(0, max_{k>j} S[j, k])

    so ``j`` is a vertex iff ``L_j < U_j``, and its entry slope is ``U_j``, the slope of the
    segment from the previous vertex. For consecutive vertices ``j < q`` the rounded values
    satisfy ``U_q <= S[j, q] <= L_j < U_j`` and ``U_j > L_j >= 0`` (each S is the same rounded
    division wherever it appears), so an instance's entry slopes strictly decrease and are > 0.
    """
    n, k = cost.shape
    is_vertex = np.empty((n, k), dtype=bool)
    entry = np.empty((n, k))
    for start in range(0, n, _BLOCK_ROWS):
        block = slice(start, min(n, start + _BLOCK_ROWS))
        c, a = cost[block].T.copy(), acc[block].T.copy()  # (k, m): one contiguous row per point
        tied = bool(np.any(c[1:] == c[:-1]))  # equal costs in some instance (sorted: adjacent)
        upper = np.full(c.shape, np.inf)
        lower = np.zeros(c.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            for j in range(1, k):
                run = c[j] - c[:j]  # (j, m): from every cheaper point i to j
                slope = (a[j] - a[:j]) / run
                if tied:
                    slope[run == 0] = -np.inf
                upper[j] = slope.min(axis=0)
                np.maximum(lower[:j], slope, out=lower[:j])
        is_vertex[block] = (lower < upper).T
        entry[block] = upper.T
    return is_vertex, entry


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


@dataclass(frozen=True)
class _Neighbours:
    """The oracle at lambda* (``A_lo``) and the instances that switch to ``A_hi`` there.

    Sums are over instances: ``cost_sum = N * C_lo``, ``switching_cost_sum = N * (C_hi - C_lo)``.
    """

    action: np.ndarray  # per instance position, its A_lo action
    cost_sum: float
    acc_sum: float
    switching: np.ndarray  # positions of the instances that switch
    switching_action: np.ndarray  # their A_hi actions
    switching_cost_sum: float
    switching_acc_sum: float


def _hull_sweep(hulls: InstanceHulls, budgets: list[float]) -> list[Allocation]:
    """Every budget from one sort of all segments by slope, steepest first.

    Segments of equal slope form a group; the cumulated group costs locate each budget's
    crossing group ``g``: the groups before it are taken, ``g``'s segments switch, and
    ``lambda* = s_g``. Without a crossing the budget reaches ``C_useful`` and ``lambda* = 0``.
    Budgets are visited in ascending order, so the oracle's vertices and sums only move forward
    and the sweep touches each segment once.
    """
    # slopes are > 0, where the IEEE bit pattern sorts like the value (and twice as fast)
    order = hulls.steps[np.argsort(~slope_keys(hulls.entry_slope[hulls.steps]))]  # steepest first
    slopes = hulls.entry_slope[order]
    cost_steps = hulls.vertex_cost[order] - hulls.vertex_cost[order - 1]
    acc_steps = hulls.vertex_acc[order] - hulls.vertex_acc[order - 1]
    group_start = np.flatnonzero(np.r_[True, slopes[1:] != slopes[:-1]])[: len(order)]
    group_end = np.r_[group_start[1:], len(order)]
    group_cost = np.add.reduceat(cost_steps, group_start) if len(order) else cost_steps
    cumulated_cost = np.cumsum(group_cost)

    chosen = hulls.first.copy()
    action = hulls.vertex_action[chosen]
    cost_sums = [hulls.base_cost]  # exact sums of these partial sums keep N * C_lo accurate
    acc_sums = [float(np.sum(hulls.vertex_acc[chosen]))]
    taken = 0
    solutions: dict[int, Allocation] = {}
    for index in np.argsort(budgets, kind="stable"):
        budget = budgets[index]
        target = hulls.n_instances * budget - hulls.base_cost
        group = int(np.searchsorted(cumulated_cost, target, side="right"))
        if group < len(group_start) and budget < hulls.useful_mean_cost:
            end, lambda_ = group_start[group], float(slopes[group_start[group]])
            switching = slice(end, group_end[group])
        else:
            end, lambda_, switching = len(order), 0.0, slice(0, 0)
        newly_taken = order[taken:end]
        owners = hulls.owner[newly_taken]
        np.maximum.at(chosen, owners, newly_taken)
        action[owners] = hulls.vertex_action[chosen[owners]]
        cost_sums.append(float(np.sum(cost_steps[taken:end])))
        acc_sums.append(float(np.sum(acc_steps[taken:end])))
        taken = end
        neighbours = _Neighbours(
            action=action.copy(),
            cost_sum=math.fsum(cost_sums),
            acc_sum=math.fsum(acc_sums),
            switching=hulls.owner[order[switching]],
            switching_action=hulls.vertex_action[order[switching]],
            switching_cost_sum=float(np.sum(cost_steps[switching])),
            switching_acc_sum=float(np.sum(acc_steps[switching])),
        )
        solutions[index] = _mix(hulls, budget, lambda_, "hull", neighbours)
    return [solutions[i] for i in range(len(budgets))]


def _bisect(
    backend: ibis.BaseBackend,
    segments: ir.Table,
    hulls: InstanceHulls,
    budget: float,
    tol: float,
) -> Allocation:
    """Bisection on lambda, each step one ``staircase_buckets`` query on the backend.

    The bracket ``[low, high]`` (slope keys) holds the slope at which the staircase, summed
    steepest first, crosses ``N * (B - C_min)``. Each query cuts it into ``PRICES_PER_QUERY``
    buckets; walking all buckets steepest first, the one whose cost takes the sum past the
    target is the next bracket. It stops when the bracket holds a single slope (then
    ``lambda* = s*`` exactly, as the hull finds it), is narrower than ``tol * lambda``, or stops
    shrinking. ``lambda* = high``; ``A_lo`` takes the segments steeper than ``high``, ``A_hi``
    also those in the bracket.
    """
    slopes = hulls.entry_slope[hulls.steps]
    if budget >= hulls.useful_mean_cost or len(slopes) == 0:
        return _mix(hulls, budget, 0.0, "bisection", _neighbours(hulls, hulls.last, hulls.last))
    target = hulls.n_instances * budget - hulls.base_cost
    query = staircase_buckets(segments)
    keys = slope_keys(slopes)
    low, high = int(keys.min()), int(keys.max())
    for _ in range(_MAX_BISECTION_QUERIES):
        if low == high or _slope(high) - _slope(low) <= tol * _slope(high):
            break
        step = -(-(high - low + 1) // PRICES_PER_QUERY)  # ceil: the buckets cover the bracket
        buckets = backend.to_pyarrow(query, params={SLOPE_KEY_LOW: low, SLOPE_KEY_STEP: step})
        buckets = buckets.sort_by([("bucket", "descending")])
        bracket, gain = (low, high), 0.0
        for cost, lowest, steepest in zip(
            *(buckets.column(name).to_pylist() for name in ("cost", "lowest", "steepest")),
            strict=True,
        ):
            low, high = lowest, steepest
            gain += cost
            if gain > target:
                break
        if (low, high) == bracket:
            break
    chosen_lo = _oracle_vertices(hulls, keys > high)
    chosen_hi = _oracle_vertices(hulls, keys >= low)
    return _mix(hulls, budget, _slope(high), "bisection", _neighbours(hulls, chosen_lo, chosen_hi))


def _slope(key: int) -> float:
    """The slope whose key (``slope_keys``) this is."""
    return float(np.int64(key).view(np.float64))


def _oracle_vertices(hulls: InstanceHulls, taken: np.ndarray) -> np.ndarray:
    """Per instance the flat index of its vertex after the ``taken`` segments (a mask over
    ``hulls.steps`` closed under steeper slopes): ``first[i] + #taken segments of i``."""
    steeper = hulls.owner[hulls.steps[taken]]
    return hulls.first + np.bincount(steeper, minlength=hulls.n_instances)


def _neighbours(hulls: InstanceHulls, chosen_lo: np.ndarray, chosen_hi: np.ndarray) -> _Neighbours:
    """``A_lo`` and ``A_hi`` given as each instance's flat vertex index."""
    switching = np.flatnonzero(chosen_hi != chosen_lo)
    from_vertex, to_vertex = chosen_lo[switching], chosen_hi[switching]
    return _Neighbours(
        action=hulls.vertex_action[chosen_lo],
        cost_sum=float(np.sum(hulls.vertex_cost[chosen_lo])),
        acc_sum=float(np.sum(hulls.vertex_acc[chosen_lo])),
        switching=switching,
        switching_action=hulls.vertex_action[to_vertex],
        switching_cost_sum=float(
            np.sum(hulls.vertex_cost[to_vertex] - hulls.vertex_cost[from_vertex])
        ),
        switching_acc_sum=float(
            np.sum(hulls.vertex_acc[to_vertex] - hulls.vertex_acc[from_vertex])
        ),
    )


def _mix(
    hulls: InstanceHulls, budget: float, lambda_: float, solver: str, neighbours: _Neighbours
) -> Allocation:
    """``A_lo`` with the switching instances moved to ``A_hi`` by
    ``theta = (B - C_lo) / (C_hi - C_lo)``, clipped to [0, 1] (which it leaves only by
    rounding); at theta = 1 they move whole."""
    n = hulls.n_instances
    cost_lo, acc_lo = neighbours.cost_sum / n, neighbours.acc_sum / n
    extra_cost, extra_acc = neighbours.switching_cost_sum / n, neighbours.switching_acc_sum / n
    theta = min(1.0, max(0.0, (budget - cost_lo) / extra_cost)) if extra_cost > 0 else 0.0
    by_instance = np.argsort(neighbours.switching)
    switching = neighbours.switching[by_instance]
    switching_action = neighbours.switching_action[by_instance]
    action = neighbours.action
    if theta == 1.0:
        action[switching] = switching_action
    if not 0.0 < theta < 1.0:
        switching, switching_action = switching[:0], switching_action[:0]
    assignment = pa.table(
        {
            "instance_id": pa.chunked_array(
                [hulls.instance_id, hulls.instance_id[switching]], pa.int64()
            ),
            "action_id": pa.chunked_array([action, switching_action], pa.int32()),
            "weight": pa.chunked_array(
                [*_weights(hulls, switching, 1.0 - theta), np.full(len(switching), theta)],
                pa.float64(),
            ),
        }
    )
    return Allocation(
        budget=budget,
        lambda_=lambda_,
        mean_cost=cost_lo + theta * extra_cost,
        mean_acc=acc_lo + theta * extra_acc,
        solver=solver,
        lagrangian=acc_lo - lambda_ * (cost_lo - budget),
        assignment=assignment,
    )


def _weights(hulls: InstanceHulls, positions: np.ndarray, value: float) -> list[pa.Array]:
    """Weight 1 for every instance but ``value`` at the sorted ``positions``. With few such
    positions, the ones are zero-copy slices of one array shared by every allocation."""
    if len(positions) > _MAX_SHARED_WEIGHT_SLICES:
        weight = np.ones(hulls.n_instances)
        weight[positions] = value
        return [pa.array(weight)]
    ones, mixed = hulls.unit_weights, pa.array([value])
    chunks, start = [], 0
    for position in positions.tolist():
        chunks += [ones.slice(start, position - start), mixed]
        start = position + 1
    return [*chunks, ones.slice(start)]


# --------------------------------------------------------------------------------------------
# Labels and storage
# --------------------------------------------------------------------------------------------
def oracle_labels(allocation: Allocation) -> pa.Table:
    """instance_id, action_id: the hard label per instance, its largest-weight action (on a
    tie, theta = 1/2, the cheaper ``A_lo`` action, listed first in the assignment)."""
    assignment = allocation.assignment
    instance_id = assignment.column("instance_id").to_numpy()
    action = assignment.column("action_id").to_numpy()
    weight = assignment.column("weight").to_numpy()
    order = np.lexsort((np.arange(len(weight)), -weight, instance_id))
    first = order[np.r_[True, instance_id[order][1:] != instance_id[order][:-1]]]
    return pa.table(
        {
            "instance_id": pa.array(instance_id[first], pa.int64()),
            "action_id": pa.array(action[first], pa.int32()),
        }
    )


def write_allocations(
    backend: ibis.BaseBackend,
    run_id: int,
    allocations: Sequence[Allocation],
    *,
    scope: str = "all",
) -> None:
    """Append one ``solutions`` row per allocation and its assignment to ``allocations``.

    ``scope`` names the instances solved (``all``, ``train``, ``test``, ...).
    """
    for allocation in allocations:
        assignment = allocation.assignment
        n_rows = assignment.num_rows
        n_instances = pc.count_distinct(assignment.column("instance_id")).as_py()
        db.append(
            backend,
            "solutions",
            pa.table(
                {
                    "scope": [scope],
                    "budget": [allocation.budget],
                    "solver": [allocation.solver],
                    "lambda_star": [allocation.lambda_],
                    "mean_cost": [allocation.mean_cost],
                    "mean_acc": [allocation.mean_acc],
                    "lagrangian": [allocation.lagrangian],
                    "binding": [allocation.binding],
                    "n_instances": pa.array([n_instances], pa.int64()),
                    "n_mixed": pa.array([n_rows - n_instances], pa.int64()),
                }
            ),
            run_id,
        )
        constant = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n_rows, dtype=np.int32)), pa.array([scope])
        )
        db.append(
            backend,
            "allocations",
            assignment.append_column("scope", constant)
            .append_column(
                "solver",
                pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n_rows, dtype=np.int32)), pa.array([allocation.solver])
                ),
            )
            .append_column("budget", pa.array(np.full(n_rows, allocation.budget))),
            run_id,
        )


# --------------------------------------------------------------------------------------------
# The integer optimum (small instances)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntegerGap:
    """The Lagrangian (LP) solution against the best integer allocation at one budget.

    ``lp_acc >= integer_acc >= rounded_acc`` (mean accuracies): the LP optimum, the MILP
    optimum (every instance on one action, mean cost <= budget), and the Lagrangian solution
    rounded down (mixed instances on their cheaper action). ``gap = lp_acc - integer_acc``
    is at most ``bound``, the largest accuracy step among the switching segments over N: a
    basic LP optimum has one fractional instance, and rounding it down loses at most its step.
    """

    budget: float
    lp_acc: float
    integer_acc: float
    rounded_acc: float
    gap: float
    bound: float


def integer_gap(
    outcomes: pa.Table | Mapping[str, np.ndarray],
    budget: float,
    *,
    max_rows: int = 100_000,
    time_limit: float = 60.0,
) -> IntegerGap:
    """Solve the multiple-choice knapsack exactly with ``scipy.optimize.milp`` (HiGHS)::

        maximize 1/N sum_ia x_ia acc_ia  s.t.  sum_ia x_ia c_ia <= N B,  sum_a x_ia = 1,
        x_ia in {0, 1}

    and compare it with the Lagrangian (hull) solution. ``outcomes``: an Arrow table or a
    mapping of numpy columns (instance_id, action_id, acc, cost), at most ``max_rows`` rows.
    HiGHS's log is kept off stdout.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    columns = _outcome_columns(outcomes)
    if len(columns["acc"]) > max_rows:
        raise ValueError(
            f"integer_gap is for small cases: {len(columns['acc']):,} rows > {max_rows:,}"
        )
    hulls = _hulls_of_columns(columns)
    allocation = _hull_sweep(hulls, _feasible_budgets(hulls, [budget]))[0]
    n, acc, cost = hulls.n_instances, columns["acc"], columns["cost"]
    instance_row = np.searchsorted(hulls.instance_id, columns["instance_id"])
    one_action_each = coo_array(
        (np.ones(len(acc)), (instance_row, np.arange(len(acc)))), shape=(n, len(acc))
    )
    with _quiet_stdout():
        result = milp(
            -acc,
            integrality=np.ones(len(acc)),
            bounds=Bounds(0, 1),
            constraints=[
                LinearConstraint(one_action_each, 1, 1),
                LinearConstraint(cost[None, :], -np.inf, n * allocation.budget),
            ],
            options={"disp": False, "time_limit": time_limit},
        )
    if result.status != 0:
        raise RuntimeError(f"integer_gap: the MILP was not solved to optimality: {result.message}")

    # accuracies of the assignment rows: each instance's A_lo action, then the mixed A_hi rows
    rows = allocation.assignment.append_column(
        "row", pa.array(np.arange(allocation.assignment.num_rows))
    )
    joined = rows.join(pa.table(columns), ["instance_id", "action_id"]).sort_by("row")
    row_acc = joined.column("acc")
    row_acc = row_acc.to_numpy()
    mixed = np.searchsorted(hulls.instance_id, rows.column("instance_id").to_numpy()[n:])
    switching_acc_steps = row_acc[n:] - row_acc[mixed]
    integer_acc = float(-result.fun) / n
    return IntegerGap(
        budget=allocation.budget,
        lp_acc=allocation.mean_acc,
        integer_acc=integer_acc,
        rounded_acc=float(np.sum(row_acc[:n])) / n,
        gap=allocation.mean_acc - integer_acc,
        bound=float(switching_acc_steps.max(initial=0.0)) / n,
    )


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send whatever native code writes to file descriptor 1 (HiGHS's banner) to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)


__all__ = [
    "DEFAULT_TOL",
    "PRICES_PER_QUERY",
    "SLOPE_KEY_LOW",
    "SLOPE_KEY_STEP",
    "LAMBDA",
    "SOLVERS",
    "Allocation",
    "InstanceHulls",
    "IntegerGap",
    "allocation_totals",
    "budget_range",
    "cost_range",
    "instance_hulls",
    "integer_gap",
    "oracle_actions",
    "oracle_labels",
    "solve_budget",
    "solve_budgets",
    "solve_columns",
    "slope_keys",
    "staircase_buckets",
    "write_allocations",
]
