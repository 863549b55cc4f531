"""Solve: the oracle allocation meets the budget exactly, is optimal, and both solvers agree.

Outcome tables come from hypothesis in three kinds: ``grid`` (accuracies k/16, small integer
costs: scores and sums are exact, so exact equalities are asserted), ``ties`` (a few instance
profiles repeated, few distinct costs and accuracies: many equal slopes, equal costs, collinear
and dominated points) and ``floats`` (anything, compared with tolerances). One in-memory DuckDB
serves the module.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from toolkit import db, solve
from toolkit.errors import StudyError
from toolkit.solve import (
    LAMBDA,
    Allocation,
    allocation_totals,
    budget_range,
    instance_hulls,
    integer_gap,
    oracle_actions,
    oracle_labels,
    solve_budget,
    solve_budgets,
    write_allocations,
)

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EXACT = 1e-12
SOLVERS = ("hull", "bisection")


@pytest.fixture(scope="module")
def backend():
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


def load(backend, table: pa.Table):
    return backend.create_table("outcomes", table, overwrite=True)


def outcomes_table(rows: list[tuple[int, int, float, float]]) -> pa.Table:
    instance_id, action_id, acc, cost = zip(*rows, strict=True)
    return pa.table(
        {
            "instance_id": pa.array(instance_id, pa.int64()),
            "action_id": pa.array(action_id, pa.int32()),
            "acc": pa.array(acc, pa.float64()),
            "cost": pa.array(cost, pa.float64()),
        }
    )


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------
@st.composite
def outcome_tables(draw, kind: str = "grid", max_instances: int = 6, max_actions: int = 4):
    """Rows (instance_id, action_id, acc, cost) in shuffled order; some instances may lack
    some actions; instance ids are sparse."""
    n = draw(st.integers(1, max_instances))
    k = draw(st.integers(1, max_actions))
    if kind == "floats":
        acc = st.floats(0.0, 1.0, allow_nan=False)
        cost = st.floats(0.01, 100.0, allow_nan=False)
    elif kind == "ties":
        acc = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
        cost = st.sampled_from([1.0, 2.0, 4.0])
    else:
        acc = st.integers(0, 16).map(lambda v: v / 16)
        cost = st.integers(1, 6).map(float)

    def profile():
        actions = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
        return [(a, draw(acc), draw(cost)) for a in sorted(actions)]

    profiles = [profile() for _ in range(draw(st.integers(1, 2)) if kind == "ties" else n)]
    ids = draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n, unique=True))
    rows = [
        (instance, *point)
        for index, instance in enumerate(ids)
        for point in profiles[draw(st.integers(0, len(profiles) - 1)) if kind == "ties" else index]
    ]
    return outcomes_table(draw(st.permutations(rows)))


any_table = st.sampled_from(["grid", "ties", "floats"]).flatmap(outcome_tables)
exact_table = st.sampled_from(["grid", "ties"]).flatmap(outcome_tables)
budget_share = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))


def binding_budget(table: pa.Table, share: float) -> float:
    """A budget between C_min (share 0) and C_useful (share 1)."""
    hulls = instance_hulls(table)
    return hulls.min_mean_cost + share * (hulls.useful_mean_cost - hulls.min_mean_cost)


# --------------------------------------------------------------------------------------------
# Helpers computed independently of toolkit.solve
# --------------------------------------------------------------------------------------------
def assignment_totals(allocation: Allocation, table: pa.Table) -> tuple[float, float]:
    """Mean cost and accuracy of the assignment, joined back to the outcomes."""
    joined = allocation.assignment.join(table, ["instance_id", "action_id"], join_type="inner")
    assert joined.num_rows == allocation.assignment.num_rows
    weight = joined.column("weight").to_numpy()
    n = len(pc.unique(table.column("instance_id")))
    return (
        float(np.sum(weight * joined.column("cost").to_numpy())) / n,
        float(np.sum(weight * joined.column("acc").to_numpy())) / n,
    )


def action_by_instance(chosen: pa.Table) -> dict[int, int]:
    return {row["instance_id"]: row["action_id"] for row in chosen.to_pylist()}


def instance_points(table: pa.Table) -> dict[int, list[tuple[int, float, float]]]:
    points: dict[int, list] = {}
    for row in table.to_pylist():
        points.setdefault(row["instance_id"], []).append(
            (row["action_id"], row["acc"], row["cost"])
        )
    return points


def oracle_by_hand(table: pa.Table, lambda_: Fraction) -> dict[int, int]:
    """The definition in exact rational arithmetic: max acc - lambda * cost, then cheaper,
    then lower action_id."""
    return {
        instance: min(
            points,
            key=lambda p: (-(Fraction(p[1]) - lambda_ * Fraction(p[2])), p[2], p[0]),
        )[0]
        for instance, points in instance_points(table).items()
    }


def breakpoints(table: pa.Table) -> list[Fraction]:
    """Every price at which some instance is indifferent between two actions, exactly."""
    prices = {Fraction(0)}
    for points in instance_points(table).values():
        for (_, acc_a, cost_a), (_, acc_b, cost_b) in itertools.combinations(points, 2):
            if cost_a != cost_b:
                slope = (Fraction(acc_b) - Fraction(acc_a)) / (Fraction(cost_b) - Fraction(cost_a))
                if slope > 0:
                    prices.add(slope)
    return sorted(prices)


# --------------------------------------------------------------------------------------------
# The oracle query
# --------------------------------------------------------------------------------------------
def test_oracle_breaks_ties_toward_the_cheaper_action_then_the_lower_id(backend):
    table = outcomes_table(
        [
            (1, 0, 0.50, 1.0),  # score at lambda 1/4: 0.25
            (1, 1, 0.75, 2.0),  # 0.25 as well, dearer
            (2, 3, 0.50, 1.0),  # equal cost and accuracy: the lower id wins
            (2, 1, 0.50, 1.0),
            (3, 0, 0.25, 1.0),  # equal cost: the more accurate wins
            (3, 1, 0.50, 1.0),
        ]
    )
    chosen = backend.to_pyarrow(oracle_actions(load(backend, table)), params={LAMBDA: 0.25})
    assert action_by_instance(chosen) == {
        1: 0,
        2: 1,
        3: 1,
    }


@PROPERTY
@given(table=exact_table, prices=st.lists(st.integers(0, 2**9), min_size=1, max_size=4))
def test_oracle_query_matches_the_definition_in_exact_arithmetic(backend, table, prices):
    """At prices k / 256, scores of grid outcomes are exact in floating point too, so every tie
    is a real tie and must be broken as the definition says."""
    outcomes = load(backend, table)
    for price in prices:
        chosen = backend.to_pyarrow(oracle_actions(outcomes), params={LAMBDA: price / 2**8})
        assert action_by_instance(chosen) == oracle_by_hand(table, Fraction(price, 2**8))


@PROPERTY
@given(table=any_table, prices=st.lists(st.integers(0, 2**12), min_size=2, max_size=6))
def test_mean_cost_is_non_increasing_in_lambda(backend, table, prices):
    outcomes = load(backend, table)
    costs = [
        backend.to_pyarrow(allocation_totals(outcomes), params={LAMBDA: p / 2**8})["mean_cost"][
            0
        ].as_py()
        for p in sorted(prices)
    ]
    # DuckDB's parallel sums may round differently from one query to the next
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in itertools.pairwise(costs))


# --------------------------------------------------------------------------------------------
# The solution
# --------------------------------------------------------------------------------------------
@PROPERTY
@given(table=any_table, share=budget_share, solver=st.sampled_from(SOLVERS))
def test_the_solution_spends_the_budget_exactly(backend, table, share, solver):
    budget = binding_budget(table, share)
    allocation = solve_budget(backend, load(backend, table), budget, solver=solver)
    assert allocation.solver == solver
    assert allocation.binding
    assert allocation.mean_cost == pytest.approx(budget, rel=1e-9)
    cost, acc = assignment_totals(allocation, table)
    assert cost == pytest.approx(budget, rel=1e-9)
    assert acc == pytest.approx(allocation.mean_acc, rel=1e-9, abs=EXACT)

    assignment = allocation.assignment
    per_instance = assignment.group_by("instance_id").aggregate(
        [("weight", "sum"), ("weight", "count")]
    )
    assert per_instance.num_rows == len(pc.unique(table.column("instance_id")))
    assert np.allclose(per_instance.column("weight_sum").to_numpy(), 1.0, rtol=0, atol=1e-12)
    assert pc.max(per_instance.column("weight_count")).as_py() <= 2
    assert pc.min(assignment.column("weight")).as_py() > 0


@settings(PROPERTY, max_examples=60)
@given(
    table=st.sampled_from(["grid", "ties", "floats"]).flatmap(
        lambda kind: outcome_tables(kind, max_instances=4, max_actions=3)
    ),
    share=budget_share,
    solver=st.sampled_from(SOLVERS),
)
def test_no_allocation_within_budget_beats_the_lagrangian(backend, table, share, solver):
    """Against every pure allocation: within budget, none is more accurate, and none has a
    higher Lagrangian value ``acc - lambda* (cost - B)``; the bound is tight."""
    budget = binding_budget(table, share)
    allocation = solve_budget(backend, load(backend, table), budget, solver=solver)
    points = list(instance_points(table).values())
    n = len(points)
    # rounding in lambda * cost grows with lambda (steep slopes between close costs)
    slack = 1e-12 * (1 + allocation.lambda_ * max(p[2] for ps in points for p in ps))
    assert allocation.lagrangian == pytest.approx(allocation.mean_acc, abs=slack)
    for choice in itertools.product(*points):
        cost = sum(p[2] for p in choice) / n
        acc = sum(p[1] for p in choice) / n
        if cost <= budget * (1 + 1e-12):
            assert acc <= allocation.mean_acc + slack
            assert acc - allocation.lambda_ * (cost - budget) <= allocation.lagrangian + slack


@PROPERTY
@given(table=any_table, share=budget_share)
def test_the_lp_value_matches_linprog(backend, table, share):
    budget = binding_budget(table, share)
    allocation = solve_budget(backend, load(backend, table), budget)
    instance_id = table.column("instance_id").to_numpy()
    instances, row_instance = np.unique(instance_id, return_inverse=True)
    one_each = np.zeros((len(instances), table.num_rows))
    one_each[row_instance, np.arange(table.num_rows)] = 1
    result = linprog(
        -table.column("acc").to_numpy(),
        A_ub=table.column("cost").to_numpy()[None, :],
        b_ub=[budget * len(instances) * (1 + 1e-12)],
        A_eq=one_each,
        b_eq=np.ones(len(instances)),
        bounds=(0, 1),
        method="highs",
    )
    assert result.status == 0
    assert allocation.mean_acc == pytest.approx(-result.fun / len(instances), abs=1e-7)


@PROPERTY
@given(table=any_table, shares=st.lists(budget_share, min_size=1, max_size=4))
def test_bisection_and_the_hull_agree(backend, table, shares):
    outcomes = load(backend, table)
    budgets = [binding_budget(table, share) for share in shares]
    swept = solve_budgets(backend, outcomes, budgets, solver="hull")
    bisected = solve_budgets(backend, outcomes, budgets, solver="bisection")
    exact = all(  # grid outcomes: every sum is exact
        np.all(np.mod(table.column(name).to_numpy() * scale, 1) == 0)
        for name, scale in (("acc", 16), ("cost", 1))
    )
    for hull, bisection in zip(swept, bisected, strict=True):
        assert (hull.solver, bisection.solver) == ("hull", "bisection")
        assert bisection.budget == hull.budget
        assert bisection.mean_cost == pytest.approx(hull.mean_cost, rel=1e-12)
        assert bisection.mean_acc == pytest.approx(hull.mean_acc, rel=1e-12, abs=EXACT)
        if exact:  # sums are exact, so both find the same step, and the same mix
            assert bisection.lambda_ == hull.lambda_
            assert bisection.assignment.equals(hull.assignment)


@PROPERTY
@given(table=any_table, share=budget_share, tol=st.sampled_from([1e-3, 0.1, 1.0]))
def test_a_coarse_bisection_still_spends_the_budget_and_bounds_the_optimum(
    backend, table, share, tol
):
    outcomes = load(backend, table)
    budget = binding_budget(table, share)
    exact = solve_budget(backend, outcomes, budget)
    coarse = solve_budget(backend, outcomes, budget, solver="bisection", tol=tol)
    assert coarse.mean_cost == pytest.approx(budget, rel=1e-9)
    slack = 1e-12 * (1 + coarse.lambda_ * budget)
    assert coarse.mean_acc <= exact.mean_acc + slack
    assert coarse.lagrangian >= exact.mean_acc - slack  # a dual bound on the optimum


@settings(PROPERTY, max_examples=20)
@given(table=any_table, share=budget_share, data=st.data())
def test_a_subset_of_instances_solves_like_its_own_table(backend, table, share, data):
    """Later stages solve one split: a filtered Ibis table, read in whatever order it comes."""
    ids = sorted(set(table.column("instance_id").to_pylist()))
    subset = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
    alone = table.filter(pc.is_in(table.column("instance_id"), pa.array(subset, pa.int64())))
    budget = binding_budget(alone, share)
    outcomes = load(backend, table)
    filtered = solve_budget(backend, outcomes.filter(outcomes.instance_id.isin(subset)), budget)
    own = solve_budget(backend, load(backend, alone), budget)
    assert filtered == own
    low, high = budget_range(backend, load(backend, alone))
    hulls = instance_hulls(alone)
    assert (low, high) == pytest.approx((hulls.min_mean_cost, hulls.max_mean_cost), rel=1e-12)


@PROPERTY
@given(table=exact_table, share=st.floats(0.0, 0.999))
def test_the_oracle_just_above_and_below_lambda_star_gives_the_two_neighbours(
    backend, table, share
):
    """Mixing happens only between the oracle allocations on either side of lambda*."""
    budget = binding_budget(table, share)
    outcomes = load(backend, table)
    allocation = solve_budget(backend, outcomes, budget)
    prices = breakpoints(table)
    star = min(prices, key=lambda p: abs(p - Fraction(allocation.lambda_)))  # undo rounding
    assert float(star) == pytest.approx(allocation.lambda_, rel=1e-12)
    above = min((p for p in prices if p > star), default=star + 1)
    below = max((p for p in prices if p < star), default=None)
    n = len(instance_points(table))
    rows = allocation.assignment.to_pylist()
    cheaper = {r["instance_id"]: r["action_id"] for r in rows[:n]}
    assert oracle_by_hand(table, (star + above) / 2) == cheaper
    if len(rows) > n:  # mixed: theta > 0, and below lambda* they move to their dearer action
        dearer = {**cheaper, **{r["instance_id"]: r["action_id"] for r in rows[n:]}}
        assert below is not None
        assert oracle_by_hand(table, (star + below) / 2) == dearer


def test_a_large_pull_is_streamed_to_the_same_result(backend, monkeypatch):
    table = outcomes_table(
        [(i, a, min(1.0, (a + 1) * (i % 5 + 1) / 16), 1.0 + a) for i in range(50) for a in range(3)]
    )
    outcomes = load(backend, table)
    in_one_piece = solve_budgets(backend, outcomes, [1.5, 2.5])
    monkeypatch.setattr(solve.hulls, "_ROWS_PULLED_IN_ONE_PIECE", 0)
    assert solve_budgets(backend, outcomes, [1.5, 2.5]) == in_one_piece


def test_hull_drops_dominated_collinear_and_tied_points():
    table = outcomes_table(  # dyadic accuracies: collinear in floating point too
        [
            (7, 0, 0.125, 1.0),
            (7, 1, 0.25, 2.0),  # on the segment from action 0 to action 2: collinear
            (7, 2, 0.375, 3.0),
            (7, 3, 0.375, 4.0),  # as accurate as a cheaper action: dominated
            (7, 4, 0.625, 6.0),
            (7, 5, 0.625, 6.0),  # the same point as action 4, higher id
            (7, 6, 0.0625, 6.0),  # same cost as 4, less accurate
            (7, 7, 0.625, 8.0),  # as accurate as action 4, dearer
        ]
    )
    hulls = instance_hulls(table)
    assert hulls.vertex_action.tolist() == [0, 2, 4]
    assert hulls.entry_slope.tolist() == [np.inf, 0.125, 0.125 / 1.5]


def test_real_outcomes_solve_at_the_study_budgets(small_study, tmp_path):
    """The pipeline's outcomes table, one run's rows, solved at the default budgets."""
    from toolkit.pipeline import run_study

    result = run_study(small_study, tmp_path, stages=("simulate", "outcomes"))
    backend = db.connect(result.database)
    outcomes = backend.table("outcomes").filter(ibis._.run_id == result.run_id)
    budgets = [b for b in small_study.budgets.values if b <= 16]
    swept = solve_budgets(backend, outcomes, budgets)
    bisected = solve_budgets(backend, outcomes, budgets, solver="bisection")
    for hull, bisection in zip(swept, bisected, strict=True):
        assert hull.binding
        assert hull.mean_cost == pytest.approx(hull.budget, rel=1e-9)
        assert bisection.mean_acc == pytest.approx(hull.mean_acc, rel=1e-12)
        assert hull.lagrangian == pytest.approx(hull.mean_acc, rel=1e-12)
    assert [a.mean_acc for a in swept] == sorted(a.mean_acc for a in swept)
    backend.disconnect()


# --------------------------------------------------------------------------------------------
# Budgets outside the binding range
# --------------------------------------------------------------------------------------------
@pytest.fixture
def two_instances() -> pa.Table:
    # C_min = 1, C_useful = (3 + 1) / 2 = 2, C_max = (3 + 4) / 2 = 3.5
    return outcomes_table([(1, 0, 0.0, 1.0), (1, 1, 1.0, 3.0), (2, 0, 0.5, 1.0), (2, 1, 0.5, 4.0)])


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("budget", [0.5, 3.6])
def test_a_budget_outside_the_range_is_an_error_that_says_the_range(
    backend, two_instances, solver, budget
):
    outcomes = load(backend, two_instances)
    assert budget_range(backend, outcomes) == (1.0, 3.5)
    with pytest.raises(StudyError, match=rf"budget {budget:g} is infeasible: .* from 1 .* to 3.5"):
        solve_budget(backend, outcomes, budget, solver=solver)


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_budget_above_the_best_allocation_does_not_bind(backend, two_instances, solver):
    allocation = solve_budget(backend, load(backend, two_instances), 3.0, solver=solver)
    assert (allocation.lambda_, allocation.mean_cost, allocation.mean_acc) == (0.0, 2.0, 0.75)
    assert not allocation.binding
    assert allocation.lagrangian == 0.75


@pytest.mark.parametrize(("budget", "label"), [(2.0, 0), (2.5, 1)])
def test_oracle_labels_take_the_heavier_action_and_the_cheaper_on_a_tie(backend, budget, label):
    # one instance, B = 2: half on each action (a tie); B = 2.5: three quarters on the dearer
    table = outcomes_table([(5, 0, 0.0, 1.0), (5, 1, 1.0, 3.0)])
    allocation = solve_budget(backend, load(backend, table), budget)
    assert allocation.assignment.column("weight").to_pylist() == [
        pytest.approx(1 - (budget - 1) / 2),
        pytest.approx((budget - 1) / 2),
    ]
    assert oracle_labels(allocation).to_pylist() == [{"instance_id": 5, "action_id": label}]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, 0, 0.5, 1.0), (1, 0, 0.6, 2.0)], "instance 1 has action_id 0 more than once"),
        ([(1, 0, float("nan"), 1.0)], "acc must be finite"),
    ],
)
def test_bad_outcomes_are_errors(rows, message):
    with pytest.raises(StudyError, match=message):
        instance_hulls(outcomes_table(rows))


# --------------------------------------------------------------------------------------------
# Storage and the integer check
# --------------------------------------------------------------------------------------------
def test_write_allocations_lands_solutions_and_assignments():
    source = ibis.duckdb.connect()
    table = outcomes_table(
        [(i, a, (a + 1) * (i % 3 + 1) / 12, 2.0**a) for i in range(30) for a in range(4)]
    )
    outcomes = load(source, table)
    low, _ = budget_range(source, outcomes)
    allocations = solve_budgets(source, outcomes, [low, low + 0.7, 3.0])
    target = ibis.duckdb.connect()
    db.create_schema(target)
    write_allocations(target, 1, allocations, scope="test")
    con: duckdb.DuckDBPyConnection = db.raw(target)
    solutions = con.execute(
        "select budget, solver, lambda_star, mean_cost, n_instances, n_mixed, scope "
        "from solutions order by budget"
    ).fetchall()
    assert [(row[0], row[1], row[4], row[6]) for row in solutions] == [
        (a.budget, "hull", 30, "test") for a in allocations
    ]
    weights = con.execute(
        "select budget, instance_id, sum(weight), count(*) from allocations "
        "group by all order by all"
    ).fetchall()
    assert len(weights) == 3 * 30
    assert all(abs(total - 1) < 1e-12 and rows <= 2 for _, _, total, rows in weights)
    mixed = dict(con.execute("select budget, n_mixed from solutions").fetchall())
    extra = dict(
        con.execute("select budget, count(*) - 30 from allocations group by budget").fetchall()
    )
    assert mixed == extra


@settings(PROPERTY, max_examples=25)
@given(table=any_table, share=budget_share)
def test_integer_gap_is_within_its_bound(table, share, capfd):
    gap = integer_gap(table, binding_budget(table, share))
    assert gap.lp_acc >= gap.integer_acc - 1e-9
    assert gap.integer_acc >= gap.rounded_acc - 1e-9
    assert gap.gap <= gap.bound + 1e-9
    assert capfd.readouterr().out == ""
