"""Learn: features (the Ibis query against its SQL oracle), splits, budget pricing, and the
fitted CatBoost policies as stored, on real DuckDB files and the real CatBoost."""

from __future__ import annotations

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pytest
from conftest import make_study
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import db, features, solve
from toolkit.config import SplitSpec
from toolkit.learn import (
    SPLITS,
    assign_splits,
    catboost_params,
    read_features,
    read_outcomes,
    read_policies,
    run_outcomes,
    training_sample,
)
from toolkit.pipeline import run_study
from toolkit.policies import (
    calibrate_price,
    fit_difficulty_bins,
    price_choice,
    priced_weights,
    prompt_length_weights,
    random_weights,
    uniform_weights,
)
from toolkit.resources import sql_text

FAST_LEARN = {"iterations": 30, "depth": 4, "learning_rate": 0.2, "seeds": [0, 1]}


def small_study(name: str = "learn-small", seed: int = 5, instances: int = 1200, **over):
    sections = {
        "study": {"name": name, "seed": seed},
        "datasets": [
            {"name": "math", "source": "simulate", "preset": "math", "instances": instances}
        ],
        "budgets": {"values": [2.0, 4.0]},
        "learn": FAST_LEARN,
    }
    sections.update(over)
    return make_study(**sections)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A small study run through learn (and evaluate): (study, database path, run id)."""
    study = small_study()
    result = run_study(study, tmp_path_factory.mktemp("learn"))
    return study, result.database, result.run_id


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------
def test_feature_query_matches_its_sql_oracle(learned):
    _, path, run_id = learned
    backend = db.connect(path, read_only=True)
    try:
        wide, names = read_features(backend, run_id)
        oracle = (
            db.raw(backend)
            .execute(
                f"select * exclude (run_id) from ({sql_text('features/instance_features.sql')}) "
                "where run_id = ? order by instance_id",
                [run_id],
            )
            .fetch_arrow_table()
        )
    finally:
        backend.disconnect()
    assert oracle.column_names == ["instance_id", *names]
    for name in oracle.column_names:
        mine, theirs = wide.column(name), oracle.column(name)
        if name in features.CATEGORICAL:
            assert mine.to_pylist() == theirs.to_pylist(), name
        else:
            np.testing.assert_allclose(
                mine.to_numpy(zero_copy_only=False),
                theirs.to_numpy(zero_copy_only=False),
                rtol=1e-12,
                err_msg=name,
            )


def test_features_are_many_and_never_the_latent_difficulty(learned):
    _, path, run_id = learned
    backend = db.connect(path, read_only=True)
    try:
        instances = backend.table("instances").filter(ibis._.run_id == run_id)
        query = features.instance_features(instances, n_signals=2)
        sql = ibis.to_sql(query)
        stored = backend.to_pyarrow(
            backend.table("feature_catalog").filter(ibis._.run_id == run_id)
        )
    finally:
        backend.disconnect()
    assert '"difficulty"' not in sql  # difficulty_signals is fine, the latent column is not
    names = features.feature_names(2)
    assert len(names) >= 16
    assert "difficulty" not in names
    assert stored.sort_by("position").column("feature").to_pylist() == names


def test_features_ignore_the_latent_difficulty_column():
    con = duckdb.connect()
    for path in db.table_files():
        con.execute(path.read_text())
    backend = ibis.duckdb.from_connection(con)
    con.execute(
        "insert into instances by name select 1 as run_id, 0 as instance_id, 'math' as dataset, "
        "3 as level, 'Algebra' as subject, 0.0 as difficulty, 40 as prompt_tokens, "
        "2 as n_sentences, 3 as n_digits, 1 as n_math_symbols, 4 as n_latex, "
        "1 as n_question_words, [0.5, -1.0] as difficulty_signals, 0.6 as probe_entropy, "
        "0.75 as probe_agreement"
    )
    first = backend.to_pyarrow(features.instance_features(backend.table("instances"), n_signals=2))
    con.execute("update instances set difficulty = 9.0")
    second = backend.to_pyarrow(features.instance_features(backend.table("instances"), n_signals=2))
    assert first.equals(second)
    assert first.column("signal_mean").to_pylist() == [-0.25]
    assert first.column("digits_per_token").to_pylist() == [3 / 40]


def test_long_features_hold_every_instance_and_feature(learned):
    study, path, run_id = learned
    with duckdb.connect(str(path), read_only=True) as con:
        rows, instances, feature_count = con.execute(
            "select count(*), count(distinct instance_id), count(distinct feature) "
            "from features where run_id = ?",
            [run_id],
        ).fetchone()
        categorical = con.execute(
            "select count(*) from features where run_id = ? and category is not null",
            [run_id],
        ).fetchone()[0]
    assert instances == study.datasets[0].instances
    assert rows == instances * feature_count
    assert categorical == 2 * instances


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------
def _instances(n: int, datasets=("a",)) -> pa.Table:
    return pa.table(
        {
            "instance_id": pa.array(np.arange(n), pa.int64()),
            "dataset": [datasets[i % len(datasets)] for i in range(n)],
        }
    )


def test_splits_are_seeded_exact_and_per_dataset():
    spec = SplitSpec(train=0.6, validation=0.2, test=0.2)
    table = _instances(1001, datasets=("a", "b"))
    first = assign_splits(table, spec, seed=3)
    assert first.equals(assign_splits(table, spec, seed=3))
    assert not first.equals(assign_splits(table, spec, seed=4))
    assert sorted(first.column("instance_id").to_pylist()) == list(range(1001))
    split = np.array(first.column("split").to_pylist())
    assert set(split) == set(SPLITS)
    for name in ("a", "b"):
        members = np.array(table.column("dataset").to_pylist()) == name
        counts = {s: int((split[members] == s).sum()) for s in SPLITS}
        size = int(members.sum())
        assert sum(counts.values()) == size
        assert abs(counts["train"] - 0.6 * size) < 1
        assert abs(counts["validation"] - 0.2 * size) < 1


def test_stored_splits_partition_the_run(learned):
    study, path, run_id = learned
    with duckdb.connect(str(path), read_only=True) as con:
        counts = dict(
            con.execute(
                "select split, count(*) from splits where run_id = ? group by split", [run_id]
            ).fetchall()
        )
    n = study.datasets[0].instances
    assert sum(counts.values()) == n
    assert counts["train"] == round(0.6 * n)


# --------------------------------------------------------------------------------------------
# Pricing and baselines
# --------------------------------------------------------------------------------------------
COST = np.array([1.0, 2.0, 4.0, 8.0, 16.0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 60),
    budget=st.floats(1.0, 16.0),
    coarse=st.booleans(),
)
def test_calibrated_price_meets_the_budget_exactly(seed, n, budget, coarse):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, 5))
    if coarse:  # many identical rows: ties at the price, as CatBoost leaves give
        scores = np.round(scores[rng.integers(0, min(3, n), n)], 1)
    scores = np.maximum.accumulate(scores, axis=1)  # accuracy curves rise with b
    cal = calibrate_price(scores, COST, budget, min_price=None)
    weights = priced_weights(scores, COST, cal)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (weights >= -1e-12).all()
    assert (weights @ COST).mean() == pytest.approx(budget, rel=1e-9, abs=1e-9)


def test_accuracy_prices_never_go_negative():
    scores = np.tile([0.5, 0.6, 0.6, 0.6, 0.6], (10, 1))
    cal = calibrate_price(scores, COST, 8.0, min_price=0.0)
    assert cal.price_low >= 0.0
    weights = priced_weights(scores, COST, cal)
    # more than b = 2 buys nothing: the budget is left unspent
    assert (weights @ COST).mean() == pytest.approx(2.0)
    assert list(price_choice(scores, COST, 0.0)) == [1] * 10


def test_baselines_meet_the_budget_and_are_allocations():
    rng = np.random.default_rng(0)
    acc = np.sort(rng.random((300, 5)), axis=1)
    mean_acc = acc.mean(axis=0)
    for budget in (1.0, 2.0, 3.0, 5.5, 16.0):
        uniform = uniform_weights(300, budget, COST, mean_acc)
        assert (uniform @ COST).mean() == pytest.approx(budget)
        assert (uniform > 0).sum(axis=1).max() <= 2
        lengths = rng.integers(5, 400, 300).astype(float)
        prompt, kappa = prompt_length_weights(lengths, budget, COST, mean_acc)
        assert (prompt @ COST).mean() == pytest.approx(budget, rel=1e-9)
        assert kappa > 0
        np.testing.assert_allclose(prompt.sum(axis=1), 1.0)
    # longer prompts never get less
    lengths = np.linspace(10, 200, 300)
    prompt, _ = prompt_length_weights(lengths, 4.0, COST, mean_acc)
    assert np.all(np.diff(prompt @ COST) >= -1e-12)
    mix = np.array([0.5, 0.0, 0.25, 0.25, 0.0])
    assert (random_weights(7, mix) @ COST).mean() == pytest.approx(mix @ COST)


def test_difficulty_bins_are_quantiles_with_training_curves():
    rng = np.random.default_rng(1)
    signal = rng.normal(size=1000)
    acc = np.sort(rng.random((1000, 5)), axis=1)
    bins = fit_difficulty_bins("signal_1", signal, acc, n_bins=5)
    assigned = bins.bin_of(signal)
    assert np.bincount(assigned).tolist() == [200] * 5
    np.testing.assert_allclose(bins.bin_acc[2], acc[assigned == 2].mean(axis=0))
    assert bins.bin_of(np.array([np.nan]))[0] == 2
    levels = fit_difficulty_bins("level", rng.integers(1, 6, 1000).astype(float), acc)
    assert len(levels.edges) == 4


def test_catboost_settings_are_the_fast_ones():
    params = catboost_params(small_study().learn, seed=9)
    assert params["random_seed"] == 9
    assert params["one_hot_max_size"] >= 7  # MATH's seven subjects: one-hot, no CTRs
    assert params["max_ctr_complexity"] == 1
    assert params["boosting_type"] == "Plain"
    assert params["thread_count"] == 2


# --------------------------------------------------------------------------------------------
# Labels and models as stored
# --------------------------------------------------------------------------------------------
def test_training_labels_are_the_solvers_and_others_the_oracle_at_lambda(learned):
    study, path, run_id = learned
    backend = db.connect(path, read_only=True)
    try:
        outcomes = run_outcomes(backend, run_id)
        labels = backend.to_pyarrow(
            backend.table("oracle_labels").filter(ibis._.run_id == run_id)
        ).to_pandas()
        train_ids = labels.loc[labels.split == "train", "instance_id"].unique()
        train = outcomes.filter(outcomes.instance_id.isin(train_ids.tolist()))
        for budget in study.budgets.values:
            mine = labels[labels.budget == budget].set_index("instance_id").sort_index()
            allocation = solve.solve_budget(backend, train, budget)
            assert mine.lambda_star.unique().tolist() == [allocation.lambda_]
            expected = solve.oracle_labels(allocation).to_pandas().set_index("instance_id")
            assert (mine.loc[expected.index, "action_id"] == expected.action_id).all()
            everything = backend.to_pyarrow(
                solve.oracle_actions(outcomes).order_by("instance_id"),
                params={solve.LAMBDA: allocation.lambda_},
            ).to_pandas()
            held_out = mine[mine.split != "train"]
            chosen = everything.set_index("instance_id").loc[held_out.index, "action_id"]
            assert (held_out.action_id == chosen).all()
            assert (mine.gap >= 0).all()
    finally:
        backend.disconnect()


def test_stored_models_load_and_reproduce_their_calibration(learned):
    study, path, run_id = learned
    backend = db.connect(path, read_only=True)
    try:
        policies = read_policies(backend, run_id)
        wide, names = read_features(backend, run_id)
        splits = backend.to_pyarrow(
            backend.table("splits").filter(ibis._.run_id == run_id)
        ).to_pandas()
        everything = read_outcomes(backend, run_outcomes(backend, run_id))
    finally:
        backend.disconnect()
    assert len(policies) == len(study.budgets.values) * len(study.learn.seeds)
    validation_ids = np.sort(splits.loc[splits.split == "validation", "instance_id"].to_numpy())
    index = np.searchsorted(wide.column("instance_id").to_numpy(), validation_ids)
    frame = features.to_frame(wide.take(pa.array(index)), names)
    validation = everything.subset(validation_ids)
    for policy in policies:
        assert policy.model is not None
        probabilities = policy.probabilities(frame)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        weights = policy.calibrated_weights(probabilities)
        # the stored price meets the budget on the validation split it was bisected on
        assert (weights * validation.cost).sum(axis=1).mean() == pytest.approx(
            policy.budget, rel=1e-9
        )
    by_seed = {(p.budget, p.seed): p for p in policies}
    a = by_seed[(2.0, 0)].probabilities(frame)
    b = by_seed[(2.0, 1)].probabilities(frame)
    assert not np.allclose(a, b)  # the CatBoost seed matters


def test_a_budget_whose_labels_are_all_one_action_needs_no_classifier(tmp_path):
    study = small_study(name="learn-constant", instances=400, budgets={"values": [1.0]})
    result = run_study(study, tmp_path)
    with duckdb.connect(str(result.database), read_only=True) as con:
        formats = con.execute(
            "select distinct model_format from policy_models where run_id = ?", [result.run_id]
        ).fetchall()
        spent = con.execute(
            "select max(abs(value)) from evaluations where run_id = ? and metric = 'budget_error' "
            "and policy = 'learned_batch'",
            [result.run_id],
        ).fetchone()[0]
    assert formats == [("constant",)]
    assert spent == pytest.approx(0.0, abs=1e-12)


def test_catboost_sees_at_most_max_train_rows_a_seeded_sample_stated_in_the_report(tmp_path):
    study = make_study(
        study={"name": "sampled", "seed": 5},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 1500}],
        budgets={"values": [4.0]},
        learn={"iterations": 30, "seeds": [0], "max_train_rows": 400},
    )
    result = run_study(study, tmp_path)
    with duckdb.connect(str(result.database), read_only=True) as con:
        rows, train = con.execute(
            "select max(train_rows), (select count(*) from splits where split = 'train') "
            "from policy_models"
        ).fetchone()
    assert (rows, train) == (400, 900)
    sample = training_sample(np.arange(900), 400, 5)
    assert len(np.unique(sample)) == 400 and np.array_equal(sample, np.sort(sample))
    assert np.array_equal(sample, training_sample(np.arange(900), 400, 5))
    assert np.array_equal(training_sample(np.arange(300), 400, 5), np.arange(300))
    page = result.report.read_text()
    assert "CatBoost fitted on 400 of 900 training instances" in page
    assert "max_train_rows = 400" in page
