"""The command line read through a pipe, as a log file or another program sees it: help texts
keep their brackets, lines are not wrapped at 80 columns, the run's summary is aligned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ENGINE_HELP = (
    "Where the core queries run: 'duckdb' or 'pyspark://MASTER' (e.g. pyspark://local[2]); "
    "overrides the study's [engine] url."
)

TINY_STUDY = """\
[study]
name = "cli-tiny"
seed = 3

[[datasets]]
name = "math"
source = "simulate"
preset = "math"
instances = 300

[[models]]
name = "qwen2.5-7b"
preset = "qwen2.5-7b"

[estimation]
samples_per_instance = 16

[budgets]
values = [2.0, 4.0]

[learn]
iterations = 20
seeds = [0]
"""


def stl(*args: str, columns: int | None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, stdout and stderr pipes; COLUMNS set or removed."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


@pytest.mark.parametrize("columns", [200, None])
def test_help_keeps_bracketed_text_on_one_unwrapped_line(columns):
    done = stl("run", "--help", columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Usage: python -m toolkit run [OPTIONS] [study]"
    assert f"  --engine <str>    {ENGINE_HELP}" in lines
    assert "\x1b[" not in done.stdout, "no terminal escapes in a pipe"


def test_help_wraps_to_the_columns_asked_for():
    done = stl("run", "--help", columns=60)
    assert done.returncode == 0, done.stderr
    assert max(map(len, done.stdout.splitlines())) <= 60
    assert "overrides the study's [engine] url." in " ".join(done.stdout.split())


def test_an_error_message_is_one_line_however_long_its_path(tmp_path):
    missing = tmp_path / ("a-rather-long-folder-name-" * 4) / "study.toml"
    done = stl("validate", str(missing), columns=None)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {missing}: cannot read study file: No such file or directory"
    ]


LOADED_AFTER = """\
import contextlib, io, json, sys
sys.argv = ["stl", *json.loads(sys.argv[1])]
from toolkit import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        cli.main()
    except SystemExit as done:
        assert not done.code, done.code
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""
"""Run ``stl`` with the arguments given (JSON) in this process; print the top-level modules
it loaded."""

HEAVY = ("catboost", "scipy", "matplotlib", "duckdb", "ibis", "pyarrow", "numpy", "pandas")


def loaded_by(*args: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded once ``stl ARGS`` has finished."""
    code = [sys.executable, "-c", LOADED_AFTER, json.dumps(args)]
    done = subprocess.run(code, capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_help_loads_neither_the_libraries_of_the_stages_nor_pydantic_or_rich():
    unneeded = {*HEAVY, "pydantic", "rich"}
    loaded = loaded_by("--help")
    assert "typer" in loaded
    assert loaded.isdisjoint(unneeded), sorted(loaded & unneeded)


def test_validate_of_a_simulated_study_loads_none_of_the_stages_libraries():
    from toolkit.config import default_study_path

    loaded = loaded_by("validate", str(default_study_path()))
    assert "pydantic" in loaded  # the study file's settings
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "tiny.toml").write_text(TINY_STUDY)
    done = stl("run", "tiny.toml", "--out", "out", columns=200, cwd=folder)
    assert done.returncode == 0, done.stderr
    return done, folder / "out" / "study.duckdb"


def test_run_summary_aligns_every_number_in_one_column(tiny_run):
    done, database = tiny_run
    lines = done.stdout.splitlines()
    assert lines[0] == "run 1 -> out/study.duckdb"
    end = lines.index("report -> out/report.html")
    block = lines[1:end]
    # then the headline: every budget's policies at matched spend
    assert lines[end + 1] == ""
    assert lines[end + 2].startswith("Policies at the same realised spend")
    assert lines[end + 3].startswith("B = ") and "samples per question" in lines[end + 3]
    table_at = [line.split()[0] for line in block].index("table")
    stages, tables = block[1:table_at], block[table_at + 1 :]
    assert [line.split()[0] for line in stages] == [
        "check", "simulate", "outcomes", "solve", "learn", "evaluate", "report",
    ]  # fmt: skip
    names = [line.split()[0] for line in block]
    width = max(map(len, names))
    value_width = len("seconds")
    # every line: two spaces, the name padded to the longest, two spaces, the value right-aligned
    assert {len(line) for line in block} == {2 + width + 2 + value_width}
    assert block[0] == f"  {'stage':<{width}}  seconds"
    assert block[table_at] == f"  {'table':<{width}}  {'rows':>{value_width}}"
    for line in block:
        name, value = line.split()
        assert line == f"  {name:<{width}}  {value:>{value_width}}"
    assert "  " + "samples".ljust(width) + "    4,800" in block  # 300 instances x 16 samples
    assert "  " + "outcomes".ljust(width) + "    1,500" in block  # x 5 actions
    assert max(map(len, names)) > 12, "long table names (policy_allocations) are aligned too"
    with duckdb.connect(str(database), read_only=True) as con:
        for line in tables:
            table, rows = line.split()
            count = con.execute(f"select count(*) from {table} where run_id = 1").fetchone()[0]
            assert int(rows.replace(",", "")) == count, table


def test_run_progress_goes_to_stderr_plain(tiny_run):
    done, _ = tiny_run
    stages = ("check", "simulate", "outcomes", "solve", "learn", "evaluate", "report")
    assert done.stderr.splitlines() == [f"  {stage} done" for stage in stages]
    assert "\x1b[" not in done.stderr


def test_a_run_database_carries_the_column_comments(tiny_run):
    _, database = tiny_run
    with duckdb.connect(str(database), read_only=True) as con:
        missing = con.execute(
            "select table_name, column_name from duckdb_columns() where not internal "
            "and schema_name = 'main' and (comment is null or comment = '')"
        ).fetchall()
        samples = con.execute(
            "select comment from duckdb_columns() where table_name = 'samples' "
            "and column_name = 'correct'"
        ).fetchone()[0]
    assert missing == []
    assert samples == "whether the answer is right"
