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

The package: ``queries`` (the Ibis expressions), ``hulls`` (the per-instance hulls), ``mixing``
(lambda*, the sweep, the bisection and the mix), ``solver`` (budgets and the entry points),
``storage`` (labels and the solutions and allocations tables), ``integer`` (the MILP check).
"""

from toolkit.solve.hulls import InstanceHulls, instance_hulls
from toolkit.solve.integer import IntegerGap, integer_gap
from toolkit.solve.mixing import Allocation
from toolkit.solve.queries import (
    LAMBDA,
    PRICES_PER_QUERY,
    SLOPE_KEY_LOW,
    SLOPE_KEY_STEP,
    allocation_totals,
    cost_range,
    oracle_actions,
    slope_keys,
    staircase_buckets,
)
from toolkit.solve.solver import (
    DEFAULT_TOL,
    SOLVERS,
    budget_range,
    solve_budget,
    solve_budgets,
    solve_columns,
)
from toolkit.solve.storage import oracle_labels, write_allocations

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
