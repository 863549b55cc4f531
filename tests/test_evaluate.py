"""Evaluate: every policy at matched budgets, the paired bootstrap, the stored tables, and the
regret bound of Solve-then-Learn over several seeds and budgets (real DuckDB, real CatBoost)."""

from __future__ import annotations

import importlib

import duckdb
import numpy as np
import pytest
from conftest import make_study

from toolkit.evaluate import (
    LEARNED,
    POLICIES,
    PairedBootstrap,
    bootstrap_counts,
    expand_policies,
    interval,
)
from toolkit.pipeline import run_study

BUDGETS = [2.0, 3.0, 4.0, 6.0, 8.0]
SEEDS = [0, 1, 2]
METRICS = {
    "accuracy",
    "cost",
    "budget_error",
    "gain",
    "relative_gain",
    "gain_at_cost",
    "oracle_share",
    "imitation_accuracy",
    "balanced_accuracy",
    "lagrangian_regret",
    "regret_bound",
}
EXACT_BUDGET = ("oracle", "uniform", "random", "prompt_length", "difficulty_bins", "learned_batch")


def evaluation_study(seed: int, instances: int = 1500):
    return make_study(
        study={"name": f"evaluate-{seed}", "seed": seed},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": instances}],
        budgets={"values": BUDGETS},
        learn={"iterations": 40, "depth": 4, "learning_rate": 0.2, "seeds": SEEDS},
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Two studies (study seeds 21 and 22) in one database: (study, path, run id) each."""
    folder = tmp_path_factory.mktemp("evaluate")
    runs = []
    for seed, instances in ((21, 1500), (22, 800)):
        study = evaluation_study(seed, instances)
        result = run_study(study, folder)
        runs.append((study, result.database, result.run_id))
    return runs


def query(path, sql: str, params=()):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def metric(path, run_id: int, name: str) -> dict[tuple, float]:
    """{(policy, budget, seed): value} of one metric of a run."""
    rows = query(
        path,
        "select policy, budget, seed, value from evaluations where run_id = ? and metric = ?",
        [run_id, name],
    )
    return {(p, b, s): v for p, b, s, v in rows}


def test_every_policy_budget_seed_and_metric_is_evaluated(evaluated):
    study, path, run_id = evaluated[0]
    rows = query(
        path,
        "select policy, budget, seed, metric from evaluations where run_id = ?",
        [run_id],
    )
    assert len(rows) == len(set(rows)), "one row per policy, budget, seed and metric"
    seedless = [p for p in POLICIES if p not in LEARNED]
    expected = {(p, b, None, m) for p in seedless for b in BUDGETS for m in METRICS} | {
        (p, b, s, m) for p in LEARNED for b in BUDGETS for s in SEEDS for m in METRICS
    }
    assert set(rows) == expected


def test_matched_budgets_are_met_exactly_and_the_oracle_is_the_upper_bound(evaluated):
    for _, path, run_id in evaluated:
        for (policy, budget, _), cost in metric(path, run_id, "cost").items():
            if policy in EXACT_BUDGET:
                assert cost == pytest.approx(budget, rel=1e-9), (policy, budget)
        accuracy = metric(path, run_id, "accuracy")
        for (policy, budget, seed), value in accuracy.items():
            if policy in EXACT_BUDGET:
                assert value <= accuracy[("oracle", budget, None)] + 1e-12, (policy, budget, seed)


def test_regret_bound_holds_in_every_evaluated_run(evaluated):
    checked = 0
    for _, path, run_id in evaluated:
        rows = query(
            path,
            "select policy, budget, seed, regret, bound, holds, imitation_error, delta_max "
            "from regret_bounds where run_id = ?",
            [run_id],
        )
        for policy, budget, seed, regret, bound, holds, eps, delta_max in rows:
            assert holds, (policy, budget, seed)
            assert regret >= -1e-12
            assert regret <= bound + 1e-12
            assert bound == pytest.approx(eps * delta_max)
            checked += 1
    learned_rows = len(LEARNED) * len(BUDGETS) * len(SEEDS)
    assert checked == 2 * (learned_rows + (len(POLICIES) - len(LEARNED)) * len(BUDGETS))


def test_regret_recomputed_in_sql_from_the_stored_allocations(evaluated):
    """The regret table against an independent SQL computation from policy_allocations,
    outcomes and oracle_labels (the Lagrangian at lambda* per test instance)."""
    _, path, run_id = evaluated[0]
    recomputed = query(
        path,
        """
        with lagrangian as (
            select o.instance_id, o.action_id, l.budget,
                   o.acc - l.lambda_star * o.cost as value,
                   o.action_id = l.action_id as is_label
            from outcomes o
            join oracle_labels l using (run_id, instance_id)
            where o.run_id = ? and l.split = 'test'
        ),
        per_instance as (
            select budget, instance_id, max(value) as best, max(value) - min(value) as gap
            from lagrangian group by all
        ),
        chosen as (
            select a.policy, a.budget, a.seed, a.instance_id,
                   sum(a.weight * g.value) as value,
                   sum(a.weight * g.is_label::int) as on_label
            from policy_allocations a
            join lagrangian g using (budget, instance_id, action_id)
            where a.run_id = ?
            group by all
        )
        select c.policy, c.budget, c.seed,
               avg(p.best - c.value) as regret,
               (1 - avg(c.on_label)) * max(p.gap) as bound
        from chosen c join per_instance p using (budget, instance_id)
        group by all
        """,
        [run_id, run_id],
    )
    stored = {
        (p, b, s): (r, bd)
        for p, b, s, r, bd in query(
            path,
            "select policy, budget, seed, regret, bound from regret_bounds where run_id = ?",
            [run_id],
        )
    }
    assert len(recomputed) == len(stored)
    for policy, budget, seed, regret, bound in recomputed:
        assert stored[(policy, budget, seed)] == pytest.approx((regret, bound), abs=1e-12)


def test_gains_are_paired_against_uniform_and_intervals_hold_the_estimate(evaluated):
    _, path, run_id = evaluated[0]
    rows = query(
        path,
        "select policy, metric, value, ci_low, ci_high from evaluations "
        "where run_id = ? and metric <> 'regret_bound'",
        [run_id],
    )
    for policy, metric, value, low, high in rows:
        if policy == "uniform" and metric in ("gain", "relative_gain", "oracle_share"):
            assert (value, low, high) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
        if policy == "oracle" and metric == "oracle_share":
            assert (value, low, high) == pytest.approx((1.0, 1.0, 1.0))
        if np.isfinite(low):
            assert low - 1e-9 <= high
        if metric in ("accuracy", "cost", "gain"):
            assert low - 1e-9 <= value <= high + 1e-9, (policy, metric)


def test_confusion_classes_and_sweep_agree_with_the_evaluations(evaluated):
    study, path, run_id = evaluated[0]
    n_test = round(study.split.test * study.datasets[0].instances)
    imitation = metric(path, run_id, "imitation_accuracy")
    confusion = query(
        path,
        "select policy, budget, seed, sum(n), sum(n) filter (true_action_id = predicted_action_id)"
        ", count(*) from confusion where run_id = ? group by all",
        [run_id],
    )
    assert len(confusion) == len(imitation)
    for policy, budget, seed, total, diagonal, cells in confusion:
        assert total == pytest.approx(n_test)
        assert cells == 25
        assert diagonal / total == pytest.approx(imitation[(policy, budget, seed)])
    balanced = dict(
        query(
            path,
            "select policy || budget || coalesce(seed, -1), value from evaluations "
            "where run_id = ? and metric = 'balanced_accuracy'",
            [run_id],
        )
    )
    recalls = query(
        path,
        "select policy || budget || coalesce(seed, -1), avg(recall) from imitation_classes "
        "where run_id = ? and support > 0 group by all",
        [run_id],
    )
    for key, value in recalls:
        assert balanced[key] == pytest.approx(value)
    sweep = query(
        path,
        "select count(*), count(*) filter (s.accuracy = e.value) from budget_sweep s "
        "join evaluations e using (run_id, policy, budget) "
        "where s.run_id = ? and e.metric = 'accuracy' and s.seed is not distinct from e.seed",
        [run_id],
    )[0]
    assert sweep[0] == len(imitation) and sweep[1] == sweep[0]


def test_allocations_are_distributions_over_the_test_split(evaluated):
    study, path, run_id = evaluated[1]
    rows = query(
        path,
        "select policy, budget, seed, count(distinct instance_id), min(w), max(w) from ("
        "  select policy, budget, seed, instance_id, sum(weight) as w from policy_allocations"
        "  where run_id = ? group by all) group by all",
        [run_id],
    )
    n_test = round(study.split.test * study.datasets[0].instances)
    for policy, _, _, instances, low, high in rows:
        assert instances == n_test, policy
        assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    outside = query(
        path,
        "select count(*) from policy_allocations a join splits s using (run_id, instance_id) "
        "where a.run_id = ? and s.split <> 'test'",
        [run_id],
    )[0][0]
    assert outside == 0


def test_the_learned_policy_learns_something(evaluated):
    """At the smallest budget the calibrated classifier keeps a real share of the oracle's gain
    over uniform, on every CatBoost seed (a weak floor: these are tiny, fast fits)."""
    _, path, run_id = evaluated[0]
    shares = [
        v
        for (v,) in query(
            path,
            "select value from evaluations where run_id = ? and policy = 'learned_batch' "
            "and budget = 2 and metric = 'oracle_share'",
            [run_id],
        )
    ]
    assert len(shares) == len(SEEDS)
    assert min(shares) > 0.3


def test_bootstrap_is_seeded_and_resamples_whole_test_sets():
    counts = bootstrap_counts(50, 200, seed=3)
    assert counts.shape == (200, 50)
    np.testing.assert_array_equal(counts.sum(axis=1), 50)
    np.testing.assert_array_equal(counts, bootstrap_counts(50, 200, seed=3))
    assert not np.array_equal(counts, bootstrap_counts(50, 200, seed=4))
    low, high = interval(np.arange(1001.0))
    assert (low, high) == pytest.approx((25.0, 975.0))
    assert np.isnan(interval(np.array([np.nan]))[0])


def test_compare_names_expand_to_the_evaluated_policies():
    assert expand_policies(["learned"]) == ["oracle", "uniform", *LEARNED]
    assert expand_policies(["random"]) == ["oracle", "uniform", "random"]


def test_paired_bootstrap_blocked_form_has_the_same_resamples(monkeypatch):
    """Small: exactly ``bootstrap_counts @ values / n``. Beyond DENSE_BOOTSTRAP_CELLS: the same
    draws as uint8 counts, means summed over blocks of instances (equal up to rounding)."""
    evaluate_module = importlib.import_module("toolkit.evaluate")  # the package re-exports
    # the function of the same name

    n, resamples, seed = 1237, 300, 11
    values = np.random.default_rng(0).random((n, 7))
    dense = PairedBootstrap(n, resamples, seed)
    assert dense.dense
    counts = bootstrap_counts(n, resamples, seed)
    np.testing.assert_array_equal(dense.means(values), counts @ values / n)

    monkeypatch.setattr(evaluate_module, "DENSE_BOOTSTRAP_CELLS", 0)
    monkeypatch.setattr(evaluate_module, "_BLOCK_CELLS", 300 * 100)  # several blocks
    blocked = PairedBootstrap(n, resamples, seed)
    assert not blocked.dense and blocked.counts.dtype == np.uint8
    np.testing.assert_array_equal(blocked.counts, counts)
    np.testing.assert_allclose(blocked.means(values), counts @ values / n, rtol=1e-13, atol=0)
