"""Solve: the oracle at a price as Ibis expressions on the backend, and the bisection's staircase
query (the prices and slope keys it is parameterized by). The module docstring of
``toolkit.solve`` gives the definitions."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np

LAMBDA = ibis.param("float64")
"""The price of one unit of cost, bound at execution: ``params={LAMBDA: value}``. (For DuckDB,
Ibis writes it as a decimal literal: a price with 17 significant digits may arrive rounded in
its last bit. Exact ties at such a price are then decided by that bit.)"""
SLOPE_KEY_LOW = ibis.param("int64")
"""Bottom of a bisection query's bracket, as a slope key (``slope_keys``)."""
SLOPE_KEY_STEP = ibis.param("int64")
"""Width of a bisection query's buckets, in slope keys."""

PRICES_PER_QUERY = 256
"""Prices at which each bisection query evaluates the staircase (2 would be plain bisection)."""

_COLUMN_TYPES = {
    "instance_id": np.int64,
    "action_id": np.int32,
    "acc": np.float64,
    "cost": np.float64,
}
_OUTCOME_COLUMNS = tuple(_COLUMN_TYPES)


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
