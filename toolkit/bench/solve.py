"""Solve speed: the toolkit's bisection and hull sweep against a plain numpy bisection.

    python -m toolkit.bench.solve              # N = 1e5 and 1e6 instances, K = 8, 50 budgets
    python -m toolkit.bench.solve 1e5          # one size

Per N, synthetic outcomes land in an in-memory DuckDB table: majority vote over b i.i.d.
right/wrong samples (b in 1, 2, 3, 4, 6, 8, 12, 16; ties at random), each instance with its own
probability of a right sample and its own tokens per sample, cost = b x tokens. Accuracy is not
concave in b and every slope is distinct: the hardest case for the hull's sort. Then:

- ``numpy_s``: a plain numpy bisection on lambda for one budget (the middle of the sweep), over
  dense (N, K) arrays already in memory, one row-wise argmax per step, until the bracket on
  lambda is narrower than 1e-12 relative (the toolkit's search goes on to the exact slope);
- ``bisection_s``: ``solve_budget(..., solver="bisection")`` for that budget, from the DuckDB
  table to the Allocation (pull, hulls, bisection queries, assignment);
- ``sweep_s``: ``solve_budgets(..., solver="hull")`` for ``n_budgets`` budgets spread over the
  binding range, from the DuckDB table to the Allocations.

Each time is the best of ``repeats`` calls (3) after one small untimed warm-up solve; the numpy
reference is handed its arrays, the toolkit reads from DuckDB. Targets: ``bisection/numpy <= 1``
and ``sweep/numpy < 0.5``. ``acc_gap`` is the largest mean
accuracy difference between the bisection, the sweep and the numpy reference's Lagrangian bound at
that budget. ``peak_rss_mib`` is the whole process's peak resident memory after each size
(``ru_maxrss``: Python, numpy, Arrow and DuckDB together).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import ibis
import numpy as np
import pyarrow as pa
from scipy.stats import binom

from toolkit.bench import peak_rss_mib, print_table
from toolkit.solve import budget_range, instance_hulls, solve_budget, solve_budgets

T = TypeVar("T")

SAMPLES = np.array([1, 2, 3, 4, 6, 8, 12, 16])
REFERENCE_TOL = 1e-12  # the numpy bisection's relative bracket; the toolkit's search is exact


def synthetic_outcomes(n: int, actions: int = 8, seed: int = 0) -> pa.Table:
    """Outcomes (instance_id, action_id, acc, cost) in (instance_id, action_id) order."""
    rng = np.random.default_rng(seed)
    b = SAMPLES[:actions] if actions <= len(SAMPLES) else np.arange(1, actions + 1)
    p_right = rng.beta(2.0, 1.5, size=(n, 1))
    majority = binom.sf(b // 2, b, p_right)  # more than half right
    tie = np.where(b % 2 == 0, binom.pmf(b // 2, b, p_right), 0.0)
    acc = majority + 0.5 * tie
    tokens = rng.lognormal(np.log(600.0), 0.35, size=(n, 1))
    cost = b * tokens
    return pa.table(
        {
            "instance_id": np.repeat(np.arange(n, dtype=np.int64), len(b)),
            "action_id": np.tile(np.arange(len(b), dtype=np.int32), n),
            "acc": acc.ravel(),
            "cost": cost.ravel(),
        }
    )


def numpy_bisection(acc: np.ndarray, cost: np.ndarray, budget: float, tol: float) -> dict:
    """The reference: bisection on lambda with a row-wise argmax per step.

    ``acc``, ``cost``: (N, K), each row in ascending cost, so argmax's first maximum is the
    cheaper action on a tie. Returns lambda, the bracket's two mean costs and the Lagrangian
    bound ``A(hi) - hi * (C(hi) - B)``.
    """
    rows = np.arange(acc.shape[0])

    def oracle(lambda_: float) -> tuple[float, float]:
        chosen = np.argmax(acc - lambda_ * cost, axis=1)
        return float(cost[rows, chosen].mean()), float(acc[rows, chosen].mean())

    lo, hi = 0.0, 1.0
    while oracle(hi)[0] > budget:
        lo, hi = hi, 2 * hi
    while hi - lo > tol * hi:
        mid = lo + (hi - lo) / 2
        if oracle(mid)[0] > budget:
            lo = mid
        else:
            hi = mid
    cost_hi, acc_hi = oracle(hi)
    return {
        "lambda": hi,
        "cost_lo": oracle(lo)[0],
        "cost_hi": cost_hi,
        "bound": acc_hi - hi * (cost_hi - budget),
    }


def run(
    sizes: tuple[int, ...] = (100_000, 1_000_000),
    actions: int = 8,
    n_budgets: int = 50,
    repeats: int = 3,
) -> list[dict]:
    """One row per size. Every time is the best of ``repeats`` calls, after one small untimed
    solve per solver that loads and compiles what any first call would."""
    warm_up = ibis.duckdb.connect()
    warm_outcomes = warm_up.create_table("outcomes", synthetic_outcomes(100, actions))
    cheapest = budget_range(warm_up, warm_outcomes)[:1]
    for solver in ("hull", "bisection"):
        solve_budgets(warm_up, warm_outcomes, cheapest, solver=solver)
    warm_up.disconnect()
    return [_measure(n, actions, n_budgets, repeats) for n in sizes]


def _measure(n: int, actions: int, n_budgets: int, repeats: int) -> dict:
    table = synthetic_outcomes(n, actions)
    backend = ibis.duckdb.connect()
    outcomes = backend.create_table("outcomes", table)
    hulls = instance_hulls(table)
    budgets = np.linspace(hulls.min_mean_cost, hulls.useful_mean_cost, n_budgets + 2)[1:-1]
    middle = len(budgets) // 2
    numpy_seconds, reference = _best_of(
        repeats,
        numpy_bisection,
        table.column("acc").to_numpy().reshape(n, -1),
        table.column("cost").to_numpy().reshape(n, -1),
        budgets[middle],
        REFERENCE_TOL,
    )
    del table, hulls  # only DuckDB holds the outcomes from here
    bisection_seconds, bisected = _best_of(
        repeats, solve_budget, backend, outcomes, budgets[middle], solver="bisection"
    )
    sweep_seconds, swept = _best_of(
        repeats, solve_budgets, backend, outcomes, list(budgets), solver="hull"
    )
    accuracies = (bisected.mean_acc, swept[middle].mean_acc, reference["bound"])
    del swept
    backend.disconnect()
    return {
        "instances": n,
        "actions": actions,
        "budgets": n_budgets,
        "numpy_s": numpy_seconds,
        "bisection_s": bisection_seconds,
        "sweep_s": sweep_seconds,
        "bisection/numpy": bisection_seconds / numpy_seconds,
        "sweep/numpy": sweep_seconds / numpy_seconds,
        "acc_gap": max(accuracies) - min(accuracies),
        "peak_rss_mib": peak_rss_mib(),
    }


def _best_of(repeats: int, function: Callable[..., T], *args, **kwargs) -> tuple[float, T]:
    """The shortest of ``repeats`` timed calls, and the last call's result (each earlier result
    is dropped before the next call, so peak memory is that of one call)."""
    best, results = math.inf, list[T]()
    for _ in range(repeats):
        results.clear()
        start = time.perf_counter()
        results.append(function(*args, **kwargs))
        best = min(best, time.perf_counter() - start)
    return best, results[0]


if __name__ == "__main__":
    sizes = tuple(int(float(a)) for a in sys.argv[1:]) or (100_000, 1_000_000)
    print_table(run(sizes))
