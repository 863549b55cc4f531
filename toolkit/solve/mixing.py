"""Solve: lambda* and the mixed allocation at a budget, by the hull sweep (every budget from one
sort of the hull segments) or by bisection on the backend (``toolkit.solve``: the mixing rule,
lambda* and the certificate, solvers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from toolkit.solve.hulls import InstanceHulls
from toolkit.solve.queries import (
    PRICES_PER_QUERY,
    SLOPE_KEY_LOW,
    SLOPE_KEY_STEP,
    slope_keys,
    staircase_buckets,
)

_MAX_BISECTION_QUERIES = 64  # far above need: 8 queries cut 2**63 keys to one
_MAX_SHARED_WEIGHT_SLICES = 64  # up to this many mixed instances, weights slice shared ones


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
