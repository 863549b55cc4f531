"""Evaluate: every policy at matched budgets, the paired bootstrap, the stored tables, and the
regret bound of Solve-then-Learn over several seeds and budgets (real DuckDB, real CatBoost)."""

from __future__ import annotations

import duckdb
import pytest
from conftest import make_study

from toolkit.evaluate import LEARNED, METRICS, expand_policies
from toolkit.pipeline import run_study

BUDGETS = [2.0, 3.0, 4.0, 6.0, 8.0]
SEEDS = [0, 1, 2]
BATCH_PRICED = (
    "best_fixed",
    "uniform",
    "random",
    "prompt_length",
    "difficulty_bins",
    "learned_batch",
)
"""Priced on the test batch's inputs: planned mean cost B exactly."""


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
    assert len(rows) == len(rows and set(rows)), "one row per policy, budget, seed and metric"
    evaluated = expand_policies(list(study.policies.compare))
    assert "label_known" in evaluated and "oracle_probe" not in evaluated  # no probe here
    seedless = [p for p in evaluated if p not in LEARNED]
    expected = {(p, b, None, m) for p in seedless for b in BUDGETS for m in METRICS} | {
        (p, b, s, m) for p in LEARNED for b in BUDGETS for s in SEEDS for m in METRICS
    }
    assert set(rows) == expected


def test_batch_priced_policies_plan_b_exactly_and_matched_spend_realises_b(evaluated):
    for _, path, run_id in evaluated:
        planned = metric(path, run_id, "planned_cost")
        for (policy, budget, _), value in planned.items():
            if policy in BATCH_PRICED:
                assert value == pytest.approx(budget, rel=1e-9), (policy, budget)
        # the matched allocation mixes two curve points whose realised costs bracket B
        mixes = query(
            path,
            "select s.policy, s.budget, s.seed, s.matched_weight, lo.cost, hi.cost "
            "from policy_settings s "
            "join policy_curves lo on lo.run_id = s.run_id and lo.policy = s.policy "
            "  and lo.seed is not distinct from s.seed and lo.budget = s.matched_low_budget "
            "join policy_curves hi on hi.run_id = s.run_id and hi.policy = s.policy "
            "  and hi.seed is not distinct from s.seed and hi.budget = s.matched_high_budget "
            "where s.run_id = ? and s.policy <> 'oracle' and s.fold is not distinct from 0",
            [run_id],
        )
        assert len(mixes) > 0
        for policy, budget, _, weight, low, high in mixes:
            assert 0.0 <= weight <= 1.0
            assert weight * low + (1 - weight) * high == pytest.approx(budget, rel=1e-9), policy


def test_no_allocation_beats_the_oracle_at_the_same_realised_spend(evaluated):
    for _, path, run_id in evaluated:
        matched = metric(path, run_id, "matched_accuracy")
        for (policy, budget, seed), value in matched.items():
            if value is not None:
                assert value <= matched[("oracle", budget, None)] + 1e-12, (policy, budget, seed)
        costs = metric(path, run_id, "cost")
        for budget in BUDGETS:
            assert costs[("oracle", budget, None)] == pytest.approx(budget, rel=1e-9)


def test_no_float_anywhere_is_nan_or_inf(evaluated):
    _, path, run_id = evaluated[0]
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where data_type in ('DOUBLE', 'FLOAT', 'REAL') and table_schema = 'main' "
            "and table_name in (select table_name from information_schema.tables "
            "where table_type = 'BASE TABLE')"
        ).fetchall()
        assert len(columns) > 40
        for table, column in columns:
            bad = con.execute(
                f'select count(*) from "{table}" where isnan("{column}") or isinf("{column}")'
            ).fetchone()[0]
            assert bad == 0, (table, column)


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
    seedless = len(
        expand_policies(["learned", "random", "prompt_length", "difficulty_bins"])
    ) - len(LEARNED)
    assert checked == 2 * (learned_rows + seedless * len(BUDGETS))


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


def test_gains_are_paired_against_the_references_and_intervals_hold_the_estimate(evaluated):
    _, path, run_id = evaluated[0]
    rows = query(
        path,
        "select policy, metric, value, ci_low, ci_high from evaluations "
        "where run_id = ? and metric <> 'regret_bound'",
        [run_id],
    )
    zero = {("best_fixed", "gain_vs_best_fixed"), ("uniform", "gain_vs_uniform")}
    for policy, metric_name, value, low, high in rows:
        if (policy, metric_name) in zero or (policy, metric_name) == ("best_fixed", "oracle_share"):
            assert (value, low, high) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
        if policy == "oracle" and metric_name == "oracle_share":
            assert (value, low, high) == pytest.approx((1.0, 1.0, 1.0))
        assert (value is None) == (low is None) == (high is None), (policy, metric_name)
        if low is not None:
            assert low - 1e-9 <= high
        if value is not None and metric_name in (
            "accuracy",
            "matched_accuracy",
            "cost",
            "gain_vs_best_fixed",
        ):
            assert low - 1e-9 <= value <= high + 1e-9, (policy, metric_name)


def test_confusion_classes_and_curves_agree_with_the_evaluations(evaluated):
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
    curve = query(
        path,
        "select count(*), count(*) filter (abs(c.accuracy - e.value) < 1e-12) "
        "from policy_curves c join evaluations e using (run_id, policy, budget) "
        "where c.run_id = ? and e.metric = 'accuracy' and c.seed is not distinct from e.seed",
        [run_id],
    )[0]
    assert curve[0] == len(imitation) and curve[1] == curve[0]


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
    """At the smallest budget the batch-priced classifier keeps a real share of the oracle's
    gain over best_fixed at matched spend, on every CatBoost seed (a weak floor: these are
    tiny, fast fits)."""
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
    assert min(shares) > 0.2


def test_summaries_rank_the_oracle_first_and_reach_the_best_action(evaluated):
    _, path, run_id = evaluated[0]
    rows = {
        (p, s): (aiq, reach, saving, target)
        for p, s, aiq, reach, saving, target in query(
            path,
            "select policy, seed, aiq, cost_to_reach, saving, target_cost "
            "from policy_summaries where run_id = ?",
            [run_id],
        )
    }
    oracle = rows[("oracle", None)]
    assert all(aiq <= oracle[0] + 1e-12 for aiq, *_ in rows.values())
    assert oracle[1] < oracle[3]  # the oracle reaches the best action's accuracy for less
    assert oracle[2] == pytest.approx(1 - oracle[1] / oracle[3])
    assert rows[("best_fixed", None)][1] == pytest.approx(rows[("best_fixed", None)][3])


def test_compare_names_expand_to_the_evaluated_policies():
    assert expand_policies(["learned"]) == [
        "oracle",
        "best_fixed",
        "uniform",
        *LEARNED,
        "label_known",
    ]
    assert expand_policies(["learned"], probe=True)[-3:] == [
        "oracle_probe",
        "learned_probe",
        "label_known",
    ]
    assert expand_policies(["random"]) == ["oracle", "best_fixed", "uniform", "random"]
    assert expand_policies(["always"], ("a", "a", "b")) == [
        "oracle",
        "best_fixed",
        "uniform",
        "always_a",
        "always_b",
    ]
