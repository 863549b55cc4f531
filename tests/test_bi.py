"""BI access: every view read through SQLAlchemy (duckdb-engine), as Superset or Metabase would,
equals the same numbers computed from the toolkit's own tables; exports and read-only opens."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy

from toolkit import bi
from toolkit.errors import StudyError
from toolkit.pipeline import STAGES, run_study

NO_REPORT = tuple(stage for stage in STAGES if stage != "report")


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    """A fresh study database with two runs (two seeds of the small simulated study, every
    stage but the report, CatBoost kept short)."""
    from conftest import make_study

    out = tmp_path_factory.mktemp("bi")
    for seed in (5, 6):
        study = make_study(
            study={"name": "bi-small", "seed": seed},
            datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 1500}],
            learn={"iterations": 60, "seeds": [0, 1]},
        )
        path = run_study(study, out, stages=NO_REPORT).database
    return path


def tables(path: Path) -> dict[str, pd.DataFrame]:
    """Every base table of the database as a DataFrame."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        return {name: con.table(name).df() for name in names}


# Each view's numbers computed independently with pandas from the base tables: (frame, key).
def expect_run_overview(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    frame = t["runs"][["run_id", "study", "seed", "config_hash", "cost_unit", "aggregation"]]
    sizes = {
        "n_instances": t["instances"].groupby("run_id").size(),
        "n_datasets": t["instances"].groupby("run_id").dataset.nunique(),
        "n_actions": t["actions"].groupby("run_id").size(),
        "n_models": t["actions"].groupby("run_id").model.nunique(),
        "n_samples": t["samples"].groupby("run_id").size(),
    }
    for name, values in sizes.items():
        frame = frame.join(values.rename(name), on="run_id")
    return frame, ["run_id"]


def expect_action_accuracy(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    outcomes = t["outcomes"].assign(abs_error=(t["outcomes"].acc - t["outcomes"].acc_true).abs())
    frame = (
        outcomes.groupby(["run_id", "action_id"])
        .agg(
            n_instances=("acc", "size"),
            mean_acc=("acc", "mean"),
            mean_acc_true=("acc_true", "mean"),
            mean_abs_error=("abs_error", "mean"),
            mean_cost=("cost", "mean"),
            mean_samples=("samples", "mean"),
        )
        .reset_index()
        .merge(t["actions"][["run_id", "action_id", "name", "b"]], on=["run_id", "action_id"])
        .rename(columns={"name": "action"})
    )
    return frame, ["run_id", "action_id"]


def expect_level_action_accuracy(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    joined = t["outcomes"].merge(
        t["instances"][["run_id", "instance_id", "dataset", "level"]], on=["run_id", "instance_id"]
    )
    frame = (
        joined.groupby(["run_id", "dataset", "level", "action_id"])
        .agg(
            n_instances=("acc", "size"),
            mean_acc=("acc", "mean"),
            mean_acc_true=("acc_true", "mean"),
            mean_cost=("cost", "mean"),
        )
        .reset_index()
    )
    return frame, ["run_id", "dataset", "level", "action_id"]


def expect_policy_frontier(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    evaluations = t["evaluations"].assign(seed=t["evaluations"].seed.fillna(-1))
    wide = evaluations.pivot_table(
        index=["run_id", "policy", "budget", "seed"],
        columns="metric",
        values=["value", "ci_low", "ci_high"],
    )
    frame = pd.DataFrame(
        {
            "accuracy": wide[("value", "accuracy")],
            "accuracy_ci_low": wide[("ci_low", "accuracy")],
            "cost": wide[("value", "cost")],
            "planned_cost": wide[("value", "planned_cost")],
            "matched_accuracy": wide[("value", "matched_accuracy")],
            "gain_vs_best_fixed": wide[("value", "gain_vs_best_fixed")],
            "gain_vs_best_fixed_ci_high": wide[("ci_high", "gain_vs_best_fixed")],
            "gain_vs_uniform": wide[("value", "gain_vs_uniform")],
            "relative_gain_vs_uniform": wide[("value", "relative_gain_vs_uniform")],
            "oracle_share": wide[("value", "oracle_share")],
            "imitation_accuracy": wide[("value", "imitation_accuracy")],
            "balanced_accuracy": wide[("value", "balanced_accuracy")],
            "regret_bound": wide[("value", "regret_bound")],
        }
    )
    grouped = frame.groupby(level=["run_id", "policy", "budget"])
    frame = grouped.mean().assign(n_seeds=grouped.size()).reset_index()
    return frame, ["run_id", "policy", "budget"]


def expect_allocations_by_level(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    test = t["splits"].query("split == 'test'")[["run_id", "instance_id"]]
    levels = t["instances"][["run_id", "instance_id", "dataset", "level"]]
    sizes = (
        test.merge(levels, on=["run_id", "instance_id"])
        .groupby(["run_id", "dataset", "level"])
        .size()
        .rename("n_instances")
        .reset_index()
    )
    allocations = t["policy_allocations"].assign(seed=t["policy_allocations"].seed.fillna(-1))
    seeds = (
        allocations.groupby(["run_id", "policy", "budget"]).seed.nunique().rename("n_seeds")
    ).reset_index()
    joined = allocations.merge(levels, on=["run_id", "instance_id"]).merge(
        t["outcomes"][["run_id", "instance_id", "action_id", "cost"]],
        on=["run_id", "instance_id", "action_id"],
    )
    joined["weighted_cost"] = joined.weight * joined.cost
    key = ["run_id", "policy", "budget", "dataset", "level", "action_id"]
    frame = (
        joined.groupby(key)[["weight", "weighted_cost"]]
        .sum()
        .reset_index()
        .merge(sizes, on=["run_id", "dataset", "level"])
        .merge(seeds, on=["run_id", "policy", "budget"])
    )
    frame["share"] = frame.weight / (frame.n_instances * frame.n_seeds)
    frame["cost_contribution"] = frame.weighted_cost / (frame.n_instances * frame.n_seeds)
    return frame[[*key, "n_instances", "n_seeds", "share", "cost_contribution"]], key


def expect_regret_bound_check(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    key = ["run_id", "policy", "budget"]
    grouped = t["regret_bounds"].groupby(key)
    frame = grouped[["imitation_error", "delta_max", "regret", "bound"]].mean()
    frame["n_seeds"] = grouped.size()
    frame["holds"] = grouped.holds.all()
    return frame.reset_index(), key


def expect_imitation_by_action(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[str]]:
    key = ["run_id", "policy", "budget", "action_id"]
    frame = t["imitation_classes"].groupby(key)[["support", "predicted", "recall"]].mean()
    return frame.reset_index(), key


EXPECTED: dict[str, Callable[[dict[str, pd.DataFrame]], tuple[pd.DataFrame, list[str]]]] = {
    "run_overview": expect_run_overview,
    "action_accuracy": expect_action_accuracy,
    "level_action_accuracy": expect_level_action_accuracy,
    "policy_frontier": expect_policy_frontier,
    "allocations_by_level": expect_allocations_by_level,
    "regret_bound_check": expect_regret_bound_check,
    "imitation_by_action": expect_imitation_by_action,
}


def test_every_view_has_an_independent_expectation():
    assert sorted(EXPECTED) == sorted(bi.view_names())


@pytest.mark.filterwarnings("ignore:duckdb-engine doesn't yet support reflection on indices")
def test_every_view_through_sqlalchemy_equals_the_toolkit_tables(study_db):
    engine = sqlalchemy.create_engine(bi.sqlalchemy_url(study_db))
    base = tables(study_db)
    try:
        with engine.connect() as connection:
            listed = set(sqlalchemy.inspect(connection).get_view_names())
            assert set(bi.view_names()) <= listed, "a BI tool lists every view"
            for view, expect in EXPECTED.items():
                actual = pd.read_sql_table(view, connection)
                expected, key = expect(base)
                assert len(actual) == len(expected) > 0, view
                assert actual.run_id.nunique() == 2, view
                merged = actual.merge(expected, on=key, suffixes=("", "_expected"))
                assert len(merged) == len(expected), view
                for column in expected.columns.difference(key):
                    pd.testing.assert_series_equal(
                        merged[column],
                        merged[f"{column}_expected"],
                        check_names=False,
                        check_dtype=False,
                        rtol=1e-9,
                        obj=f"{view}.{column}",
                    )
    finally:
        engine.dispose()


def read_export(con: duckdb.DuckDBPyConnection, folder: Path) -> duckdb.DuckDBPyRelation:
    """One exported table or view, read back as any DuckDB user would."""
    return con.read_parquet(str(folder / "**" / "*.parquet"), hive_partitioning=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_every_table_and_view_and_reads_back_whole(study_db, tmp_path):
    before = digest(study_db)
    out = tmp_path / "parquet"
    exported = bi.export_study(study_db, out)
    assert digest(study_db) == before, "the export only reads the database"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [bi.EXPORT_MANIFEST, *(item.name for item in exported)]
    )
    assert not list(tmp_path.glob(".parquet.*")), "no temporary folder is left beside it"
    con = duckdb.connect()
    with duckdb.connect(str(study_db), read_only=True) as source:
        tables = sorted(
            t for (t,) in source.execute("select table_name from duckdb_tables()").fetchall()
        )
        assert [i.name for i in exported if i.kind == "table"] == tables
        assert [i.name for i in exported if i.kind == "view"] == bi.view_names()
        for item in exported:
            expected = source.table(item.name).count("*").fetchone()[0]
            back = read_export(con, out / item.name)
            assert back.count("*").fetchone()[0] == item.rows == expected, item.name
            if item.partitioned:
                # one hive folder per run, each holding exactly that run's rows
                per_run = dict(source.table(item.name).aggregate("run_id, count(*)").fetchall())
                # (a table without rows is one empty file that keeps its schema)
                assert sorted(p.name for p in (out / item.name).iterdir()) == (
                    [f"run_id={run}" for run in sorted(per_run)] or ["part-0.parquet"]
                )
                assert dict(back.aggregate("run_id, count(*)").fetchall()) == per_run
    partitioned = {item.name for item in exported if item.partitioned}
    assert {"samples", "outcomes", "instances", "policy_allocations"} <= partitioned
    assert not partitioned & {"runs", "evaluations", "solutions", *bi.view_names()}
    manifest = json.loads((out / bi.EXPORT_MANIFEST).read_text())
    assert [o["name"] for o in manifest["objects"]] == [item.name for item in exported]


def test_exported_views_equal_the_database_views(study_db, tmp_path):
    bi.export_study(study_db, tmp_path / "parquet")
    with duckdb.connect(str(study_db), read_only=True) as con:
        for name in bi.view_names():
            exported = read_export(con, tmp_path / "parquet" / name).to_arrow_table()
            original = con.table(name).to_arrow_table()
            assert exported.schema == original.schema, name
            assert exported.num_rows == original.num_rows > 0, name
            # a view's rows come in no particular order, and its float sums may differ in the
            # last bits between two executions (parallel aggregation)
            key = [
                f.name
                for f in original.schema
                if f.name == "budget" or not pa.types.is_floating(f.type)
            ]
            pd.testing.assert_frame_equal(
                exported.to_pandas().sort_values(key, ignore_index=True),
                original.to_pandas().sort_values(key, ignore_index=True),
                rtol=1e-9,
                obj=name,
            )


def test_export_lands_whole_or_not_at_all(study_db, tmp_path, monkeypatch):
    out = tmp_path / "parquet"
    bi.export_study(study_db, out)
    earlier = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")}
    real_write = bi._write_object
    written = []

    def failing_write(con, name, partitioned, folder):
        if len(written) == 5:
            raise OSError("disk full")
        written.append(name)
        return real_write(con, name, partitioned, folder)

    monkeypatch.setattr(bi, "_write_object", failing_write)
    with pytest.raises(OSError, match="disk full"):
        bi.export_study(study_db, out)
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")} == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parquet"], "no partial folder left"
    monkeypatch.undo()
    again = bi.export_study(study_db, out)  # an earlier export is replaced whole
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(i.name for i in again)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parquet"]


def test_export_refuses_a_folder_that_is_not_an_export(study_db, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "export", "--db", str(study_db), "-o", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2
    assert f"error: {out}: the folder is not empty and holds no earlier export" in done.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_many_readers_at_once_but_not_while_a_study_writes(study_db):
    first, second = bi.open_read_only(study_db), bi.open_read_only(study_db)
    first.disconnect()
    second.disconnect()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', "
            "flush=True); time.sleep(30)",
            str(study_db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        with pytest.raises(StudyError, match="while a study writes to it"):
            bi.open_read_only(study_db)
    finally:
        writer.kill()
        writer.wait()
    bi.open_read_only(study_db).disconnect()


def test_missing_views_are_added_as_temporary_views(tmp_path, study_db):
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute(f"attach '{study_db}' as study (read_only)")
        for name in ("runs", "actions", "instances", "outcomes", "samples"):
            con.execute(f"create table {name} as select * from study.{name}")
    backend = bi.open_read_only(old)
    try:
        assert backend.table("action_accuracy").count().to_pyarrow().as_py() == 10
        # views over tables this database lacks are left out
        assert "action_accuracy" in bi.available_views(backend)
        assert "policy_frontier" not in bi.available_views(backend)
    finally:
        backend.disconnect()


def test_open_read_only_names_a_missing_file(tmp_path):
    with pytest.raises(StudyError, match="no study database"):
        bi.open_read_only(tmp_path / "none.duckdb")


# --------------------------------------------------------------------------------------------
# The results API: a run's tables for a notebook, without SQL
# --------------------------------------------------------------------------------------------
def test_open_run_reads_one_run_as_arrow_and_matches_sql(study_db):
    import toolkit

    with toolkit.open_run(study_db) as latest:
        assert latest.run_id == 2 and latest.seed == 6 and latest.study == "bi-small"
        assert latest.config["study"]["seed"] == 6 and latest.cost_unit == "samples"
        frontier = latest.frontier()
        assert set(frontier.column("run_id").to_pylist()) == {2}
        with duckdb.connect(str(study_db), read_only=True) as con:
            rows = con.execute(
                "select count(*), sum(weight) from policy_allocations "
                "where run_id = 2 and policy = 'uniform' and budget = 2.0"
            ).fetchone()
        uniform = latest.allocations(policy="uniform", budget=2.0)
        assert uniform.num_rows == rows[0]
        assert sum(uniform.column("weight").to_pylist()) == pytest.approx(rows[1])
        # a seedless policy's rows: seed is null
        assert latest.evaluations(policy="uniform", seed=None).num_rows > 0
        assert latest.overview()["n_instances"] == 1500
        assert "oracle_labels" in latest.names() and "runs" in latest.names()
    with toolkit.open_run(study_db, run_id=1) as first:
        assert first.seed == 5
        assert not first.frontier().equals(frontier)


def test_open_run_names_what_is_not_there(study_db, tmp_path):
    from toolkit.results import open_run

    with pytest.raises(StudyError, match=r"no run 9 \(runs: 1, 2\)"):
        open_run(study_db, run_id=9)
    with open_run(study_db) as run:
        with pytest.raises(StudyError, match="no table or view 'frontier'"):
            run.table("frontier")
        with pytest.raises(StudyError, match="policy_frontier: no column 'polcy'"):
            run.frontier(polcy="uniform")
    with pytest.raises(StudyError, match="no study database here"):
        open_run(tmp_path / "missing.duckdb")
