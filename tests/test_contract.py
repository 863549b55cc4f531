"""The contract with a hostile or careless user: no value formatted into SQL, `stl sql` sees
the study database and nothing else, and an interrupted run exits 130 having written nothing."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import make_study, table_snapshot

from toolkit import bi
from toolkit.errors import StudyError
from toolkit.pipeline import run_study

HOSTILE = "x'; drop table runs cascade; select '"

QUICK_STUDY = """\
[study]
name = "contract"
seed = {seed}

[[datasets]]
name = "math"
source = "simulate"
preset = "math"
instances = {instances}

[[models]]
name = "qwen2.5-7b"
preset = "qwen2.5-7b"

[estimation]
samples_per_instance = 16

[budgets]
values = [2.0, 4.0]

[learn]
iterations = {iterations}
seeds = [0]
"""


def test_a_hostile_output_path_is_a_path_and_never_sql(tmp_path):
    folder = tmp_path / HOSTILE
    study = make_study(
        study={"name": "hostile", "seed": 1},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 200}],
        estimation={"samples_per_instance": 16},
        engine={"memory_limit": "2GB"},
    )
    first = run_study(study, folder, stages=("simulate", "outcomes"))
    assert first.database.parent.name == HOSTILE
    again = make_study(
        study={"name": "hostile-2", "seed": 2},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 200}],
        estimation={"samples_per_instance": 16},
        engine={"memory_limit": "2GB"},
    )
    run_study(again, folder, stages=("simulate", "outcomes"))
    with duckdb.connect(str(first.database), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 2
        assert con.execute("select current_setting('memory_limit')").fetchone()[0]


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("contract")
    study = make_study(
        study={"name": "sandbox", "seed": 3},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 200}],
        estimation={"samples_per_instance": 16},
    )
    return run_study(study, folder, stages=("simulate", "outcomes")).database


@pytest.mark.parametrize(
    "statement",
    [
        "attach '{other}' as other",
        "copy (select 1) to '{folder}/leak.csv'",
        "select * from read_csv('{folder}/outside.csv')",
        "select * from '{folder}/outside.csv'",
        "install httpfs",
        "load httpfs",
        "set enable_external_access = true",
        "set lock_configuration = false",
    ],
)
def test_stl_sql_reads_the_study_database_and_nothing_else(study_db, tmp_path, statement):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("create table secret as select 42 as answer")
    (tmp_path / "outside.csv").write_text("a,b\n1,2\n")
    before = other.read_bytes()
    sql = tmp_path / "hostile.sql"
    sql.write_text(statement.format(other=other, folder=tmp_path))
    with pytest.raises(StudyError, match="query failed"):
        bi.run_sql_file(sql, study_db)
    assert not (tmp_path / "leak.csv").exists()
    assert other.read_bytes() == before
    # the database itself, and its views, stay readable
    (tmp_path / "ok.sql").write_text("select count(*) as n from run_overview")
    assert bi.run_sql_file(tmp_path / "ok.sql", study_db) == [{"n": 1}]


def test_allow_files_opens_one_folder_to_reading(study_db, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "prices.csv").write_text("model,price\nqwen2.5-7b,0.3\n")
    (tmp_path / "outside.csv").write_text("a\n1\n")
    sql = tmp_path / "join.sql"
    sql.write_text(
        f"select p.price, count(*) as n from actions a join read_csv('{allowed}/prices.csv') p "
        "using (model) group by 1"
    )
    assert bi.run_sql_file(sql, study_db, allow_files=allowed) == [{"price": 0.3, "n": 5}]
    sql.write_text(f"select * from read_csv('{tmp_path}/outside.csv')")
    with pytest.raises(StudyError, match="query failed"):
        bi.run_sql_file(sql, study_db, allow_files=allowed)
    with pytest.raises(StudyError, match="not a folder"):
        bi.run_sql_file(sql, study_db, allow_files=tmp_path / "missing")


def start_run(folder: Path, out: str, seed: int, iterations: int) -> subprocess.Popen:
    (folder / f"study-{seed}.toml").write_text(
        QUICK_STUDY.format(seed=seed, instances=3000, iterations=iterations)
    )
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", f"study-{seed}.toml", "--out", out],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def interrupt_during_learn(process: subprocess.Popen, signum: int) -> tuple[int, str]:
    """Wait until the run reports its learn stage, then send ``signum``."""
    assert process.stderr is not None
    for line in process.stderr:
        if "learn" in line:
            time.sleep(0.5)
            process.send_signal(signum)
            break
    _, rest = process.communicate(timeout=120)
    return process.returncode, rest


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_exits_130_and_leaves_nothing(tmp_path, signum):
    process = start_run(tmp_path, "new/out", seed=5, iterations=3000)
    status, stderr = interrupt_during_learn(process, signum)
    assert status == 130, stderr
    assert "interrupted: nothing was written" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "new").exists(), "the folders the run made are gone"


@pytest.mark.slow
def test_an_interrupted_run_leaves_the_earlier_runs_as_they_were(tmp_path):
    first = start_run(tmp_path, "out", seed=6, iterations=20)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    database = tmp_path / "out" / "study.duckdb"
    before = table_snapshot(database)
    second = start_run(tmp_path, "out", seed=7, iterations=3000)
    status, stderr = interrupt_during_learn(second, signal.SIGINT)
    assert status == 130, stderr
    assert table_snapshot(database) == before


def interrupt_in(process: subprocess.Popen, stage: str, signum: int) -> tuple[int, str]:
    """Send ``signum`` the moment the stage before ``stage`` reports it is done (the run's
    progress lines, on stderr), so that it lands as ``stage`` begins."""
    before = {"simulate": "check", "outcomes": "simulate", "solve": "outcomes"}
    before |= {"learn": "solve", "evaluate": "learn"}
    assert process.stderr is not None
    for line in process.stderr:
        if line.strip() == f"{before[stage]} done":
            process.send_signal(signum)
            break
    _, rest = process.communicate(timeout=120)
    return process.returncode, rest


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A folder holding one finished run (out/study.duckdb), for tests to copy."""
    folder = tmp_path_factory.mktemp("finished")
    first = start_run(folder, "out", seed=6, iterations=20)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    return folder / "out"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("stage", ["simulate", "outcomes", "solve", "learn", "evaluate"])
def test_a_run_killed_in_any_stage_leaves_the_earlier_runs(stage, signum, finished_run, tmp_path):
    """SIGINT exits 130 having rolled back; kill -9 cannot clean up, but the database still
    opens with the earlier run's tables hash-identical (the run was never committed), and the
    next run over it works."""
    shutil.copytree(finished_run, tmp_path / "out")
    database = tmp_path / "out" / "study.duckdb"
    before = table_snapshot(database)
    status, stderr = interrupt_in(start_run(tmp_path, "out", seed=7, iterations=20), stage, signum)
    assert status == (130 if signum == signal.SIGINT else -signal.SIGKILL), stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert table_snapshot(database) == before
    if signum == signal.SIGKILL:
        again = start_run(tmp_path, "out", seed=7, iterations=20)
        _, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, stderr
        assert table_snapshot(database)["runs"][0] == before["runs"][0] + 1


def _interpreter_start() -> float:
    """Seconds until this interpreter can run the toolkit's first line (its own start and the
    site packages, the fastest of three): before that no code of ours can catch a signal."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import toolkit.entry"], check=True)
        times.append(time.perf_counter() - start)
    return min(times)


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.8])
def test_an_interrupt_while_the_command_starts_exits_130(delay, tmp_path):
    """Ctrl-C while the modules load (the first second or so after the interpreter is up):
    one line and 130, not a traceback from whichever import it hit, or ImportError and
    status 1."""
    (tmp_path / "study.toml").write_text(QUICK_STUDY.format(seed=1, instances=100, iterations=5))
    wait = _interpreter_start() + delay
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", "study.toml", "--out", "out"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    time.sleep(wait)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip(f"the run finished within {wait:.2f} s")
    ours = set(re.findall(r'File "[^"]*/toolkit/([^"]+)"', stderr))
    before_handlers = {"__init__.py", "__main__.py", "entry.py", "errors.py"}
    if "init_import_site" in stderr or (
        process.returncode == -signal.SIGINT and ours <= before_handlers
    ):
        # a slow start this time: the interpreter (or the package's first lines) was still
        # starting when the signal came, before toolkit.entry put its handlers in
        pytest.skip(f"the interrupt at {wait:.2f} s landed before the handlers were in")
    assert process.returncode == 130, stderr
    assert "interrupted: nothing was written" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_an_interrupt_after_the_run_landed_says_it_landed(tmp_path):
    """Interrupted in the report stage (here by the progress hook, as Ctrl-C would be): the
    run has committed and is kept, and the interrupt says so."""
    from toolkit.config import load_study
    from toolkit.errors import InterruptedAfterLanding

    @contextlib.contextmanager
    def progress(stage: str):
        if stage == "report":
            raise KeyboardInterrupt
        yield

    (tmp_path / "study.toml").write_text(QUICK_STUDY.format(seed=1, instances=100, iterations=5))
    with pytest.raises(InterruptedAfterLanding, match="run 1 landed in .*report was not written"):
        run_study(load_study(tmp_path / "study.toml"), tmp_path / "out", progress=progress)
    assert table_snapshot(tmp_path / "out" / "study.duckdb")["runs"][0] == 1


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.4, 0.8])
def test_ctrl_c_around_the_commit_says_what_happened(delay, finished_run, tmp_path):
    """Ctrl-C just before or after the commit: the message matches the database, rolled back
    ("nothing was written") or landed ("run 2 landed in ..., its report was not written" or
    "..., its report in ..."), whether it came in the report or in the summary after it."""
    shutil.copytree(finished_run, tmp_path / "out")
    database = tmp_path / "out" / "study.duckdb"
    runs_before = table_snapshot(database)["runs"][0]
    process = start_run(tmp_path, "out", seed=8, iterations=20)
    assert process.stderr is not None
    for line in process.stderr:
        if line.strip() == "evaluate done":
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip(f"the run finished within {delay} s of evaluate")
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    if "interrupted: run 2 landed in out/study.duckdb, its report" in stderr:  # was or was not
        assert table_snapshot(database)["runs"][0] == runs_before + 1
    else:
        assert "interrupted: nothing was written" in stderr
        assert table_snapshot(database)["runs"][0] == runs_before


def stl(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args], cwd=folder, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("make", "out", "expected"),
    [
        (lambda d: (d / "afile").write_text("x"), "afile", "afile is a file, not a folder"),
        (lambda d: (d / "afile").write_text("x"), "afile/sub", "afile is a file, not a folder"),
        (
            lambda d: (d / "o" / "study.duckdb").mkdir(parents=True),
            "o",
            "study.duckdb: is a folder, not a study database",
        ),
        (
            lambda d: (d / "o").mkdir() or (d / "o" / "study.duckdb").write_text("not a db"),
            "o",
            "cannot open the study database",
        ),
        (lambda d: None, "/proc/none/out", "--out /proc/none/out: cannot write in /proc"),
        (
            lambda d: (d / "o" / "report.html").mkdir(parents=True),
            "o",
            "report.html: is a folder, not a report",
        ),
    ],
)
def test_an_output_that_cannot_hold_a_database_is_named(make, out, expected, tmp_path):
    (tmp_path / "study.toml").write_text(QUICK_STUDY.format(seed=1, instances=100, iterations=5))
    make(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    done = stl(tmp_path, "run", "study.toml", "--out", out)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before, "nothing created or removed"


def _immutable(path: Path) -> None:
    """``chattr +i``, which even root cannot write through; the test is skipped where the
    file system or the user cannot set it."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip()}")


@pytest.mark.parametrize("what", ["folder", "report"])
@pytest.mark.slow
def test_an_output_that_cannot_be_written_is_refused_before_the_run(what, tmp_path):
    """An immutable output folder (or report) is named before a stage runs: earlier, the run
    committed and then the report raised PermissionError, or the commit failed."""
    (tmp_path / "study.toml").write_text(QUICK_STUDY.format(seed=1, instances=100, iterations=5))
    assert stl(tmp_path, "run", "study.toml", "--out", "o").returncode == 0
    database = tmp_path / "o" / "study.duckdb"
    before = table_snapshot(database)
    locked = tmp_path / "o" if what == "folder" else tmp_path / "o" / "report.html"
    _immutable(locked)
    try:
        for command in ("validate", "run"):
            done = stl(tmp_path, command, "study.toml", "--out", "o")
            assert done.returncode == 2, done.stderr
            assert "Traceback" not in done.stderr
            expected = "--out o: cannot write in o" if what == "folder" else "cannot write it"
            assert expected in done.stderr and "Operation not permitted" in done.stderr
            assert "simulate done" not in done.stderr
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert table_snapshot(database) == before


@pytest.mark.slow
def test_a_report_that_cannot_be_written_leaves_no_partial_file(tmp_path):
    from toolkit.report import write_report

    (tmp_path / "study.toml").write_text(QUICK_STUDY.format(seed=1, instances=100, iterations=5))
    assert stl(tmp_path, "run", "study.toml", "--out", "o").returncode == 0
    (tmp_path / "afile").write_text("x")
    with pytest.raises(
        StudyError, match=r"report\.html: cannot write the report: .*afile is a file"
    ):
        write_report(tmp_path / "o" / "study.duckdb", tmp_path / "afile" / "report.html")
    # and a report rewritten over an old one replaces it whole, leaving no temporary file
    write_report(tmp_path / "o" / "study.duckdb", tmp_path / "o" / "report.html")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.html", "study.duckdb"]


@pytest.mark.parametrize(
    ("instances", "samples", "expected"),
    [
        (3, 16, "split: 3 instance(s) cut train 0.6 / validation 0.2 / test 0.2 leave 2 to "
         "train on, 1 to validate and 0 to score"),
        (100_000_000, 100_000, "the study is too large for this machine: 100,000,000 instances, "
         "10,000,000,000,000 samples: an estimated peak of"),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_a_study_that_cannot_run_is_refused_by_validate_and_run_alike(
    instances, samples, expected, tmp_path
):
    """Too few instances to split, or too many for this machine: named before anything is
    written, by `stl validate` and `stl run` in the same words (earlier: a misleading "evaluate
    needs the learn stage first" after four stages, or MemoryError after allocating)."""
    text = QUICK_STUDY.format(seed=1, instances=instances, iterations=5)
    (tmp_path / "study.toml").write_text(
        text.replace("samples_per_instance = 16", f"samples_per_instance = {samples}")
    )
    for command in ("validate", "run"):
        done = stl(tmp_path, command, "study.toml", "--out", "o")
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]


def test_a_database_larger_than_the_free_disk_is_refused(tmp_path):
    from toolkit.preflight import SizeEstimate, check_size

    free = shutil.disk_usage(tmp_path).free
    fits = SizeEstimate(instances=1, samples=1, cells=1, memory_bytes=1, disk_bytes=free // 2)
    check_size(fits, tmp_path / "out" / "study.duckdb")
    too_big = SizeEstimate(instances=1, samples=1, cells=1, memory_bytes=1, disk_bytes=2 * free)
    with pytest.raises(StudyError, match=r"out: the study would not fit on its disk: .* is free"):
        check_size(too_big, tmp_path / "out" / "study.duckdb")


def test_a_file_that_is_not_a_database_is_named_by_readers(tmp_path):
    (tmp_path / "report.html").write_text("<html></html>")
    done = stl(tmp_path, "report", "--db", "report.html")
    assert done.returncode == 2
    assert "report.html: not a DuckDB database" in done.stderr


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped one
def test_an_interrupt_python_dropped_still_stops_the_run(tmp_path):
    """Python drops an exception raised in a ``__del__`` (an ibis object's, when Ctrl-C lands
    there): the request is kept, and the run stops at its next check, writing nothing."""
    from toolkit import errors
    from toolkit.config import load_study

    class Finalised:
        def __del__(self):
            errors.request_interrupt()

    (tmp_path / "study.toml").write_text(QUICK_STUDY.format(seed=1, instances=100, iterations=5))
    study = load_study(tmp_path / "study.toml")
    Finalised()  # "Exception ignored in ... KeyboardInterrupt": the raise is gone
    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(study, tmp_path / "out")
    finally:
        errors._Interrupt.requested = False
    assert not (tmp_path / "out").exists()


def test_an_error_duckdb_raises_from_ctrl_c_counts_as_an_interrupt():
    from toolkit.cli import _caused_by_interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise RuntimeError("Query interrupted") from interrupt
    except RuntimeError as error:
        assert _caused_by_interrupt(error)
    assert not _caused_by_interrupt(RuntimeError("a bug"))


def test_an_import_broken_by_ctrl_c_is_not_imported_again():
    """Ctrl-C inside ``import duckdb`` leaves the extension half-registered; importing it again
    raised "type 'ExplainType' is already registered" and the interpreter died (SIGSEGV, seen
    in CI at a 0.3 s delay). Deciding whether an error came from the interrupt imports
    nothing."""
    code = (
        "import sys\n"
        "from toolkit.cli import _caused_by_interrupt\n"
        "assert 'duckdb' not in sys.modules\n"
        "assert not _caused_by_interrupt(ImportError('initialization failed'))\n"
        "print('duckdb' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
