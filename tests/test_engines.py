"""The engine contract: every core query gives the same answer on DuckDB and on Spark.

Each contract test runs once per engine (``ENGINES``) and checks the engine's result against a
reference computed here without any engine (numpy, or DuckDB SQL from ``sql/`` for the
features), so both backends pass the same assertions. The last tests run the whole default
study on both engines and compare what lands in the two DuckDB records.

Spark runs in local mode and needs Java; ``.ci/run`` installs both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import duckdb
import ibis
import numpy as np
import pyarrow as pa
import pytest
from conftest import REPO, make_study

from toolkit import db, features, solve
from toolkit.config import default_study_path, load_study, with_engine
from toolkit.errors import StudyError
from toolkit.outcomes import answer_profiles
from toolkit.pipeline import run_study

SPARK = "pyspark://local[2]"
ENGINES = ["duckdb", pytest.param(SPARK, marks=pytest.mark.spark)]
BUDGETS = [1.5, 2.0, 3.3, 4.0, 8.0, 15.0]
TOLERANCE = 1e-9

needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="Spark needs a Java runtime (.ci/run installs one)"
)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """A small simulated study's samples and outcomes in a DuckDB file (the reference data)."""
    study = make_study(
        study={"name": "contract", "seed": 11},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 600}],
    )
    out = tmp_path_factory.mktemp("contract")
    result = run_study(study, out, stages=("simulate", "outcomes"))
    return result.database


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, record, tmp_path_factory):
    """The record's tables on the engine under test (Spark: staged as Parquet views)."""
    if request.param != "duckdb" and shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (.ci/run installs one)")
    store = db.connect(record, read_only=True)
    staging = tmp_path_factory.mktemp("staging") / "run-1"
    engine = db.open_engine(store, request.param, staging=staging)
    if engine.separate:
        for name in ("samples", "outcomes", "instances"):
            engine.stage(name, store.to_pyarrow(store.table(name)))
    yield engine
    engine.release()
    store.disconnect()


def _read(record, sql: str) -> pa.Table:
    with duckdb.connect(str(record), read_only=True) as con:
        return con.execute(sql).fetch_arrow_table()


def _matrix(record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """acc and cost as (instances, actions) arrays, and the instance ids."""
    table = _read(record, "select * from outcomes order by instance_id, action_id")
    ids = np.unique(table.column("instance_id").to_numpy())
    shape = (len(ids), -1)
    acc = table.column("acc").to_numpy().reshape(shape)
    cost = table.column("cost").to_numpy().reshape(shape)
    return ids, acc, cost


# --------------------------------------------------------------------------------------------
# The contract, one engine at a time
# --------------------------------------------------------------------------------------------
def test_answer_profiles_match_a_count_of_the_samples(engine, record):
    samples = _read(record, "select instance_id, answer, correct from samples").to_pydict()
    expected: dict[int, tuple] = {}
    groups: dict[int, dict] = {}
    for i, answer, correct in zip(*samples.values(), strict=True):
        groups.setdefault(i, {}).setdefault((answer, correct), 0)
        groups[i][(answer, correct)] += 1
    for i, sizes in groups.items():
        right = sorted(n for (_, ok), n in sizes.items() if ok)
        wrong = sorted(n for (_, ok), n in sizes.items() if not ok)
        expected[i] = (sum(sizes.values()), sum(right), right, wrong)

    got = engine.to_pyarrow(answer_profiles(engine.table("samples"))).to_pylist()
    assert len(got) == len(expected)
    for row in got:
        n, n_correct, right, wrong = expected[row["instance_id"]]
        assert (row["n"], row["n_correct"]) == (n, n_correct)
        assert (row["correct_groups"] or []) == right
        assert (row["wrong_groups"] or []) == wrong


@pytest.mark.parametrize("price", [0.0, 0.004, 0.0125, 0.03, 0.2])
def test_oracle_matches_numpy_with_ties_to_the_cheaper_action(engine, record, price):
    ids, acc, cost = _matrix(record)
    score = acc - price * cost
    best = score.max(axis=1, keepdims=True)
    # among the best scores, the cheapest action (then the lowest action_id)
    candidates = np.where(score == best, cost, np.inf)
    expected = candidates.argmin(axis=1)

    chosen = engine.to_pyarrow(
        solve.oracle_actions(engine.table("outcomes")).order_by("instance_id"),
        params={solve.LAMBDA: price},
    )
    assert chosen.column("instance_id").to_numpy().tolist() == ids.tolist()
    np.testing.assert_array_equal(chosen.column("action_id").to_numpy(), expected)


def test_bisection_on_the_engine_equals_the_exact_solution(engine, record):
    reference = solve.solve_budgets(
        ibis.duckdb.connect(),
        ibis.memtable(_read(record, "select * from outcomes")),
        BUDGETS,
        solver="hull",
    )
    got = solve.solve_budgets(engine, engine.table("outcomes"), BUDGETS, solver="bisection")
    assert [a.budget for a in got] == [a.budget for a in reference]
    for mine, exact in zip(got, reference, strict=True):
        assert mine.lambda_ == exact.lambda_  # the same slope, bit for bit (int64 keys)
        assert mine.binding == exact.binding
        assert abs(mine.mean_cost - exact.mean_cost) <= TOLERANCE * mine.budget
        if mine.binding:
            assert abs(mine.mean_cost - mine.budget) <= TOLERANCE * mine.budget
        assert abs(mine.mean_acc - exact.mean_acc) <= TOLERANCE
        ours, theirs = _by_row(mine.assignment), _by_row(exact.assignment)
        assert ours.select(["instance_id", "action_id"]).equals(
            theirs.select(["instance_id", "action_id"])
        )
        np.testing.assert_allclose(
            ours.column("weight").to_numpy(),
            theirs.column("weight").to_numpy(),
            rtol=0,
            atol=TOLERANCE,
        )


def _by_row(assignment: pa.Table) -> pa.Table:
    return assignment.sort_by([("instance_id", "ascending"), ("action_id", "ascending")])


def test_features_match_the_sql_definition(engine, record):
    instances = engine.table("instances")
    n_signals = int(engine.to_pyarrow(features.signal_count(instances)).as_py())
    got = engine.to_pyarrow(
        features.instance_features(instances, n_signals=n_signals).order_by("instance_id")
    )
    sql = (REPO / "sql" / "features" / "instance_features.sql").read_text()
    expected = _read(record, f"select * from ({sql}) order by instance_id")
    for name in features.feature_names(n_signals):
        mine, theirs = got.column(name).to_pylist(), expected.column(name).to_pylist()
        if (
            features.feature_infos(n_signals)[features.feature_names(n_signals).index(name)].kind
            == "categorical"
        ):
            assert mine == theirs, name
        else:
            np.testing.assert_allclose(
                np.array(mine, dtype=float),
                np.array(theirs, dtype=float),
                rtol=1e-12,
                atol=0,
                equal_nan=True,
                err_msg=name,
            )


# --------------------------------------------------------------------------------------------
# The whole default study on both engines
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def both_runs(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (.ci/run installs one)")
    study = load_study(default_study_path())
    out = tmp_path_factory.mktemp("engines")
    duck = run_study(
        study, out / "duckdb", stages=("simulate", "outcomes", "solve", "learn", "evaluate")
    )
    spark = run_study(
        with_engine(study, SPARK),
        out / "spark",
        stages=("simulate", "outcomes", "solve", "learn", "evaluate"),
    )
    return duck, spark


def _rows(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.spark
def test_default_study_on_spark_gives_the_same_lambda_allocations_and_accuracy(both_runs):
    duck, spark = both_runs
    for sql in (
        "select scope, budget, solver, lambda_star, mean_cost, mean_acc from solutions "
        "order by all",
        "select scope, solver, budget, instance_id, action_id, weight from allocations "
        "order by all",
        "select budget, instance_id, action_id, lambda_star from oracle_labels order by all",
        "select policy, budget, seed, instance_id, action_id, weight from policy_allocations "
        "order by all",
    ):
        assert _rows(duck.database, sql) == _rows(spark.database, sql), sql
    metrics = "select policy, budget, seed, metric, value, ci_low, ci_high from evaluations "
    mine = _rows(duck.database, metrics + "order by all")
    theirs = _rows(spark.database, metrics + "order by all")
    assert [r[:4] for r in mine] == [r[:4] for r in theirs]
    values = np.array([r[4:] for r in mine], dtype=float)
    other = np.array([r[4:] for r in theirs], dtype=float)
    np.testing.assert_allclose(values, other, rtol=0, atol=TOLERANCE, equal_nan=True)
    assert _rows(spark.database, "select engine from runs") == [("pyspark",)]


@pytest.mark.spark
def test_spark_keeps_the_samples_and_stages_the_run_beside_the_record(both_runs):
    _, spark = both_runs
    assert _rows(spark.database, "select count(*) from samples") == [(0,)]
    staged = spark.database.parent / "spark" / f"run-{spark.run_id}"
    assert (staged / "samples").is_dir() and any((staged / "samples").iterdir())
    assert _rows(spark.database, "select count(*) from outcomes") == [(25_000,)]


# --------------------------------------------------------------------------------------------
# Settings and failures
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["postgres://x", "spark", "pyspark:/local"])
def test_an_unknown_engine_is_refused_naming_the_field(url):
    with pytest.raises(StudyError, match="engine.url"):
        make_study(engine={"url": url})


def test_the_cli_flag_is_checked_too():
    with pytest.raises(StudyError, match="--engine"):
        with_engine(load_study(default_study_path()), "mysql://")


def test_the_engine_is_not_part_of_the_config_hash():
    study = load_study(default_study_path())
    assert with_engine(study, SPARK).config_hash() == study.config_hash()


def test_missing_pyspark_gives_a_clear_message(tmp_path):
    """With pyspark unimportable, asking for it says how to install it."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from pathlib import Path\n"
        "from toolkit import db\n"
        "store = db.connect(':memory:')\n"
        "try:\n"
        f"    db.open_engine(store, {SPARK!r}, staging=Path({str(tmp_path)!r}))\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("StudyError engine pyspark: pyspark is not installed")
    assert ".[spark]" in out.stdout


@needs_java
@pytest.mark.spark
def test_a_failing_spark_run_leaves_no_database_and_no_staged_tables(tmp_path):
    study = with_engine(
        make_study(
            study={"name": "fails", "seed": 3},
            datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 300}],
            # half a token: below the cheapest action, known only once the data are (solve)
            actions={"cost": "tokens"},
            budgets={"values": [0.5]},
        ),
        SPARK,
    )
    with pytest.raises(StudyError, match="0.5"):
        run_study(study, tmp_path, stages=("simulate", "outcomes", "solve"))
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "spark"])
    assert not any((tmp_path / "spark").glob("run-*/*")) if (tmp_path / "spark").exists() else True


@needs_java
@pytest.mark.spark
def test_a_failing_cell_on_spark_leaves_no_cell_staged(tmp_path):
    """The first cell lands its staged tables, the second fails in solve: the transaction rolls
    back both runs, and both runs' staged tables go with it."""
    study = with_engine(
        make_study(
            study={"name": "cells", "seed": 3, "separately": ["dataset"]},
            datasets=[
                {"name": "gsm", "source": "simulate", "preset": "gsm8k", "instances": 300},
                {"name": "math", "source": "simulate", "preset": "math", "instances": 300},
            ],
            # 450 tokens a question: within GSM8K's range, below MATH's cheapest action
            actions={"cost": "tokens"},
            budgets={"values": [450.0]},
        ),
        SPARK,
    )
    with pytest.raises(StudyError, match="450"):
        run_study(study, tmp_path, stages=("simulate", "outcomes", "solve"))
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "spark"])
    assert not any((tmp_path / "spark").glob("run-*/*")) if (tmp_path / "spark").exists() else True


def test_a_memory_limit_must_be_a_size():
    with pytest.raises(StudyError, match="engine.memory_limit"):
        make_study(engine={"memory_limit": "lots"})


def test_duckdb_applies_the_memory_limit_and_a_run_under_a_small_one_completes(tmp_path):
    """A 64 MB limit; the scaling benchmark (``stl bench scale``) shows the spilling at 1e7."""
    backend = db.connect(tmp_path / "probe.duckdb", memory_limit="64MB")
    limit, spill = (
        db.raw(backend)
        .execute("select current_setting('memory_limit'), current_setting('temp_directory')")
        .fetchone()
    )
    backend.disconnect()
    assert limit.replace(" ", "").upper().startswith(("61.0MIB", "64.0MB", "61MIB", "64MB"))
    assert spill.endswith("probe.duckdb.tmp")
    limited = make_study(
        study={"name": "limited", "seed": 7},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 20_000}],
        engine={"memory_limit": "64MB"},
    )
    result = run_study(limited, tmp_path, stages=("simulate", "outcomes"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        assert con.execute("select count(*) from outcomes").fetchone()[0] == 100_000
