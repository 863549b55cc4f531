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
from toolkit.config import SplitSpec, parse_study
from toolkit.errors import StudyError
from toolkit.learn import read_planners, read_policies, training_sample
from toolkit.learned import catboost_params
from toolkit.pipeline import run_study
from toolkit.resources import sql_text
from toolkit.run_data import read_features, read_outcomes, run_outcomes
from toolkit.splits import (
    SPLITS,
    _counts,
    assign_splits,
    check_split_sizes,
    folds_of,
    split_counts,
)

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
        table = read_features(backend, run_id)
        wide, names = table.wide, table.names
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
        "1 as n_question_words, [0.5, -1.0] as difficulty_signals"
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
    assert set(first.column("fold").to_pylist()) == {0}
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


@pytest.mark.parametrize("folds", [1, 3, 5])
@pytest.mark.parametrize("n", [2, 7, 101])
def test_split_counts_are_what_assign_splits_deals(n, folds):
    spec = SplitSpec(train=0.6, validation=0.2, test=0.2)
    if folds > 1:
        spec = SplitSpec(train=0.8, validation=0.2, folds=folds)
    split = np.array(assign_splits(_instances(n), spec, seed=1).column("split").to_pylist())
    dealt = [[int((part == s).sum()) for s in SPLITS] for part in split.reshape(folds, n)]
    assert split_counts(n, spec).tolist() == dealt


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 10**7),
    fractions=st.lists(st.floats(0.001, 1.0), min_size=2, max_size=3)
    | st.integers(2, 50).map(lambda k: [1.0] * k),
)
def test_the_plain_python_largest_remainder_is_numpys_to_the_instance(n, fractions):
    """``_counts`` (no numpy, for stl validate) against the numpy formula it stands for."""
    array = np.array(fractions)
    want = array / array.sum() * n
    counts = np.floor(want).astype(int)
    counts[np.argsort(-(want - counts), kind="stable")[: n - counts.sum()]] += 1
    assert _counts(n, fractions) == counts.tolist()


def test_a_split_without_an_instance_to_train_on_or_score_is_refused():
    spec = SplitSpec(train=0.6, validation=0.2, test=0.2)
    check_split_sizes({"a": 5}, spec)  # 3 / 1 / 1
    with pytest.raises(StudyError, match="leave 2 to train on, 1 to validate and 0 to score"):
        check_split_sizes({"a": 3}, spec)
    check_split_sizes({"a": 3, "b": 5}, spec)  # each cut alike, then summed: 5 / 2 / 1
    folded = SplitSpec(train=0.8, validation=0.2, folds=5)
    with pytest.raises(StudyError, match=r"split.folds = 5 folds \(fold 4\) leave 3 to train"):
        check_split_sizes({"a": 4}, folded)


def test_stored_splits_partition_the_run(learned):
    study, path, run_id = learned
    with duckdb.connect(str(path), read_only=True) as con:
        counts = dict(
            con.execute(
                "select split, count(*) from splits where run_id = ? and fold = 0 group by split",
                [run_id],
            ).fetchall()
        )
    n = study.datasets[0].instances
    assert sum(counts.values()) == n
    assert counts["train"] == round(0.6 * n)


# --------------------------------------------------------------------------------------------
# The classifier (pricing and the baselines: tests/test_policies.py)
# --------------------------------------------------------------------------------------------
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
        table = read_features(backend, run_id)
        splits = backend.to_pyarrow(backend.table("splits").filter(ibis._.run_id == run_id))
        everything = read_outcomes(backend, run_outcomes(backend, run_id))
        planner = read_planners(backend, run_id)[0]
    finally:
        backend.disconnect()
    assert len(policies) == len(study.budgets.values) * len(study.learn.seeds)
    (fold,) = folds_of(splits)
    frame = table.frame(fold.validation)
    validation = everything.subset(fold.validation)
    # cost in samples: planned cost is the known cost, b, exactly
    planned = planner.planned(frame, validation.known)
    assert planner.method == "constant"
    np.testing.assert_array_equal(planned, validation.cost)
    for policy in policies:
        assert policy.model is not None
        probabilities = policy.probabilities(frame)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        assert policy.budget in policy.calibrations
        for budget, calibration in policy.calibrations.items():
            scores = policy.scores(probabilities)
            from toolkit.policies import priced_weights

            spent = (priced_weights(scores, planned, calibration) * planned).sum(axis=1).mean()
            if calibration.price_high == 0.0:  # more compute buys no expected accuracy
                assert spent <= budget * (1 + 1e-9)
            else:  # the stored price meets its budget on the validation split
                assert spent == pytest.approx(budget, rel=1e-9)
    by_seed = {(p.budget, p.seed): p for p in policies}
    a = by_seed[(2.0, 0)].probabilities(frame)
    b = by_seed[(2.0, 1)].probabilities(frame)
    assert not np.allclose(a, b)  # the CatBoost seed matters


def test_cross_fitting_scores_every_instance_once_by_policies_that_never_saw_it(tmp_path):
    study = small_study(name="learn-folds", instances=600)
    data = study.model_dump(mode="json")
    data["split"] = {"train": 0.6, "validation": 0.2, "folds": 3}
    study = parse_study(data, "<folds study>")
    result = run_study(study, tmp_path, stages=("simulate", "outcomes", "solve", "learn"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        tested = con.execute(
            "select count(*), count(distinct instance_id) from splits where split = 'test'"
        ).fetchone()
        roles = con.execute(
            "select fold, split, count(*) from splits group by all order by all"
        ).fetchall()
        leaks = con.execute(
            "select count(*) from splits t join splits o using (run_id, instance_id) "
            "where t.split = 'test' and t.fold = o.fold and o.split <> 'test'"
        ).fetchone()[0]
        models = con.execute("select count(distinct fold) from policy_models").fetchone()[0]
        planners = con.execute("select count(*) from cost_planners").fetchone()[0]
    assert tested == (600, 600)  # every instance is test exactly once
    assert leaks == 0
    by_fold = {}
    for fold, split, count in roles:
        by_fold.setdefault(fold, {})[split] = count
    assert sorted(by_fold) == [0, 1, 2]
    for counts in by_fold.values():
        assert counts["test"] == 200 and counts["train"] + counts["validation"] == 400
        assert counts["train"] == 300  # train : validation = 0.6 : 0.2
    assert models == 3 and planners == 3


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
            "select max(train_rows), "
            "(select count(*) from splits where split = 'train' and fold = 0) from policy_models"
        ).fetchone()
    assert (rows, train) == (400, 900)
    sample = training_sample(np.arange(900), 400, 5)
    assert len(np.unique(sample)) == 400 and np.array_equal(sample, np.sort(sample))
    assert np.array_equal(sample, training_sample(np.arange(900), 400, 5))
    assert np.array_equal(training_sample(np.arange(300), 400, 5), np.arange(300))
    page = result.report.read_text()
    assert "CatBoost fitted on 400 of 900 training instances" in page
    assert "max_train_rows = 400" in page


def test_long_stages_report_their_steps(tmp_path):
    """learn tells its progress after each CatBoost fit, evaluate after each policy's curve
    and each policy at each budget: (done, in all), counting up to the total."""
    import contextlib

    from toolkit.pipeline import run_study

    seen: dict[str, list[tuple[int, int]]] = {}

    @contextlib.contextmanager
    def recording(stage: str):
        seen[stage] = []
        yield lambda done, total: seen[stage].append((done, total))

    study = make_study(
        study={"name": "steps", "seed": 2},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 300}],
        estimation={"samples_per_instance": 16},
        learn={"iterations": 5, "seeds": [0, 1]},
    )
    run_study(study, tmp_path, stages=STAGES_TO_EVALUATE, progress=recording)
    fits = len(study.budgets.values) * 2  # one fold, one menu, two seeds
    assert seen["learn"] == [(i, fits) for i in range(1, fits + 1)]
    done, total = zip(*seen["evaluate"], strict=True)
    assert list(done) == list(range(1, total[0] + 1)) and set(total) == {total[0]}
    assert total[0] % (1 + len(study.budgets.values)) == 0  # per policy: a curve, each budget
    assert seen["simulate"] == [] and seen["solve"] == []


STAGES_TO_EVALUATE = ("simulate", "outcomes", "solve", "learn", "evaluate")
