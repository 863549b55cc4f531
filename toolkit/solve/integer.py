"""Solve: the integer optimum of small instances (a MILP) against the Lagrangian solution."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from toolkit.solve.hulls import _hulls_of_columns, _outcome_columns
from toolkit.solve.mixing import _hull_sweep
from toolkit.solve.solver import _feasible_budgets


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
