"""Storage: the database matches sql/, runs replace themselves whole, reads stay consistent."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
from conftest import table_snapshot

from toolkit import db
from toolkit.errors import StudyError
from toolkit.pipeline import run_study


def schema_of(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = current_schema() order by table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, []).append((column, dtype))
    return out


@pytest.mark.slow
def test_cli_run_writes_a_database_matching_sql_schema(small_study, tmp_path):
    study_file = tmp_path / "small.toml"
    # the CLI reads TOML; write the small study back out as TOML via a tiny serializer
    study_file.write_text(to_toml(small_study.model_dump(mode="json")))
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", str(study_file), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "o" / "study.duckdb"
    assert path.exists()

    reference = duckdb.connect()
    for file in db.table_files():
        reference.execute(file.read_text())
    expected = schema_of(reference)
    with duckdb.connect(str(path), read_only=True) as con:
        actual = schema_of(con)
        assert {t: actual[t] for t in expected} == expected
        counts = dict(
            con.execute(
                "select 'samples', count(*) from samples union all "
                "select 'instances', count(*) from instances union all "
                "select 'outcomes', count(*) from outcomes"
            ).fetchall()
        )
    assert counts["instances"] == 1500
    assert counts["samples"] == 1500 * 48
    assert counts["outcomes"] == 1500 * 5


def test_rerun_replaces_the_run_and_other_runs_stay(small_study, tmp_path):
    first = run_study(small_study, tmp_path, stages=("simulate", "outcomes"))
    other = small_study.model_copy(
        update={"study": small_study.study.model_copy(update={"seed": 99})}
    )
    second = run_study(other, tmp_path, stages=("simulate", "outcomes"))
    again = run_study(small_study, tmp_path, stages=("simulate", "outcomes"))
    assert (first.run_id, second.run_id, again.run_id) == (1, 2, 1)
    assert (first.replaced, second.replaced, again.replaced) == (False, False, True)
    with duckdb.connect(str(first.database), read_only=True) as con:
        per_run = dict(con.execute("select run_id, count(*) from samples group by 1").fetchall())
        runs = con.execute("select count(*) from runs").fetchone()[0]
    assert per_run == {1: 1500 * 48, 2: 1500 * 48}
    assert runs == 2


def to_toml(data: dict) -> str:
    """Enough TOML for study dicts: tables, arrays of tables, scalars and flat lists."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + "}"
        return repr(v)

    lines = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items() if v is not None]
        else:
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in body.items() if v is not None]
    return "\n".join(lines) + "\n"


def test_a_run_failing_midway_leaves_nothing_behind(small_study, tmp_path):
    import pytest

    from toolkit.errors import StudyError

    run_study(small_study, tmp_path, stages=("simulate", "outcomes"))
    before = table_snapshot(tmp_path / "study.duckdb")
    # an infeasible budget fails in the solve stage, after samples and outcomes were written
    bad = small_study.model_copy(
        update={
            "study": small_study.study.model_copy(update={"seed": 5}),
            "budgets": small_study.budgets.model_copy(update={"values": [0.5]}),
        }
    )
    with pytest.raises(StudyError, match="budget 0.5 is infeasible"):
        run_study(bad, tmp_path)
    assert table_snapshot(tmp_path / "study.duckdb") == before
    # into a new folder: no database file, nor the folder, is left at all
    with pytest.raises(StudyError):
        run_study(bad, tmp_path / "fresh" / "out")
    assert not (tmp_path / "fresh").exists()


def _digest_all(path):
    """Every table's rows, less the columns that record when or how long (not what)."""
    volatile = {"created_at", "versions", "fit_seconds"}
    with duckdb.connect(str(path), read_only=True) as con:
        out = {}
        for (table,) in con.execute("select table_name from duckdb_tables()").fetchall():
            columns = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "order by ordinal_position",
                    [table],
                ).fetchall()
                if name not in volatile
            ]
            out[table] = con.execute(
                f"select {', '.join(columns)} from {table} order by all"
            ).fetchall()
        return out


@pytest.mark.slow
def test_the_whole_pipeline_is_deterministic(small_study, tmp_path):
    study = small_study.model_copy(
        update={"learn": small_study.learn.model_copy(update={"iterations": 30, "seeds": [0]})}
    )
    first = run_study(study, tmp_path / "a")
    second = run_study(study, tmp_path / "b")
    digests = _digest_all(first.database)
    assert digests == _digest_all(second.database)
    assert digests["policy_models"] and digests["evaluations"]


def test_a_run_into_a_database_in_use_says_so(tmp_path, small_study):
    database = tmp_path / "study.duckdb"
    duckdb.connect(str(database)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', "
            "flush=True); time.sleep(30)",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StudyError, match="in use by another process"):
            run_study(small_study, tmp_path, stages=("simulate",))
    finally:
        holder.kill()
        holder.wait()
    assert database.exists()  # not ours to remove
