"""SQL files: every view is documented column by column and follows the house layout; every
example analysis runs on a fresh study database and returns rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import bi, db
from toolkit.pipeline import STAGES, run_study

VIEW_FILES = db.view_files()
ANALYSIS_FILES = bi.analysis_files()


NO_REPORT = tuple(stage for stage in STAGES if stage != "report")


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    """A fresh study database: the small simulated study with two stopping-rule families (so
    the adaptive analyses have rows too), every stage but the report, CatBoost kept short."""
    from conftest import make_study

    rules = [
        {"rule": "first_agree", "k": [2, 3], "cap": 16},
        {"rule": "adaptive_consistency", "threshold": [0.9], "cap": 16},
    ]
    study = make_study(
        study={"name": "sql-small", "seed": 11},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 1500}],
        actions={"rules": rules},
        learn={"iterations": 60, "seeds": [0, 1]},
    )
    return run_study(study, tmp_path_factory.mktemp("sql"), stages=NO_REPORT).database


def documented_columns(text: str) -> list[str]:
    """Column names from a view's header comment: the lines ``--   name   what it is``."""
    header = text[: text.index("\nwith")]
    return re.findall(r"^--   (\w+)\s", header, flags=re.MULTILINE)


def test_views_and_analyses_exist():
    assert len(VIEW_FILES) >= 3
    assert len(ANALYSIS_FILES) >= 3


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: p.stem)
def test_view_file_follows_the_layout(path):
    text = path.read_text()
    assert text.startswith(f"-- {path.stem}: "), "the header names the view"
    assert text.rstrip().endswith("select * from final")
    code = "\n".join(line.split("--")[0] for line in text.splitlines())
    assert code == code.lower(), "lower-case SQL"
    assert ";" not in code, "a view file is one SELECT body"


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: p.stem)
def test_view_header_documents_exactly_its_columns(path, study_db):
    backend = bi.open_read_only(study_db)
    try:
        columns = list(backend.table(path.stem).columns)
    finally:
        backend.disconnect()
    assert documented_columns(path.read_text()) == columns


@pytest.mark.parametrize("path", ANALYSIS_FILES, ids=lambda p: p.stem)
def test_analysis_returns_rows(path, study_db):
    rows = bi.run_sql_file(path, study_db)
    assert rows, f"{path.name} returned no rows"
    assert all(row["run_id"] == 1 for row in rows)


def test_sql_command_prints_a_table(study_db):
    analysis = ANALYSIS_FILES[0]
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "sql", str(analysis), "--db", str(study_db)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    header, rule, *body = done.stdout.splitlines()
    assert header.split()[0] == "run_id"
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(body) == len(bi.run_sql_file(analysis, study_db))


def test_sql_command_names_a_bad_query(study_db, tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("select no_such_column from runs")
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "sql", str(bad), "--db", str(study_db)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "query failed" in done.stderr and "no_such_column" in done.stderr
