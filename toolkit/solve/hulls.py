"""Solve: every instance's rising upper concave hull of (cost, acc) points, computed in numpy from
outcomes in memory or pulled (streamed) from an Ibis table (``toolkit.solve``: the hull)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from toolkit.errors import StudyError
from toolkit.solve.queries import _COLUMN_TYPES, _OUTCOME_COLUMNS

_ROWS_PULLED_IN_ONE_PIECE = 2**21  # (instance, action) rows; more are streamed
_PAD_ACTION = np.iinfo(np.int32).max  # fills missing actions; loses every tie, never a vertex
_BLOCK_ROWS = 8192  # instances per hull block: the pairwise arrays stay in cache


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
    action, acc, cost = sorted_rows
    return action, acc, cost


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
