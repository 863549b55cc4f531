"""Deployment: a run's learned policy allocates new requests through the same code evaluate
scores, meets the budget on the batch, and refuses bad requests naming the row and column."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from toolkit.config import load_study
from toolkit.deploy import BudgetPolicy
from toolkit.errors import StudyError
from toolkit.ingest import read_requests
from toolkit.pipeline import run_study

STUDY = """\
[study]
name = "deploy-tiny"
seed = 3

[[datasets]]
name = "maths"
source = "counts"
path = "counts.csv"
model = "m1"

[datasets.columns]
id = "id"
n = "n"
n_correct = "n_correct"

[datasets.metadata]
path = "meta.jsonl"

[datasets.metadata.columns]
id = "uid"
text = "problem"
level = "level"
subject = "type"

[[models]]
name = "m1"

[actions]
samples = [1, 2, 4, 8]
aggregation = "pass"
cost = "samples"

[estimation]
samples_per_instance = 16

[budgets]
values = [2.0, 4.0]

[policies]
compare = ["uniform", "learned"]

[learn]
iterations = 30
seeds = [0]
"""
NEW = {"id": "idx", "text": "question", "level": "level", "subject": "type"}


def _problem(rng: random.Random, i: int) -> tuple[dict, float]:
    level, subject = rng.randint(1, 5), rng.choice(["Algebra", "Geometry", "Number Theory"])
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    text = f"What is ${a} + {b}$?" + " Then find the remainder." * (level - 1)
    text += " \\frac{1}{2}" if subject == "Geometry" else ""
    return {"level": f"Level {level}", "type": subject, "text": text}, max(0.02, 0.95 - 0.2 * level)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> tuple[Path, Path]:
    """A run of a small imported study with text (200 problems), and 60 new problems."""
    folder = tmp_path_factory.mktemp("deploy")
    rng = random.Random(5)
    counts, meta, new = ["id,n,n_correct"], [], []
    for i in range(260):
        problem, p = _problem(rng, i)
        if i < 200:
            correct = sum(rng.random() < p for _ in range(16))
            counts.append(f"q{i},16,{correct}")
            meta.append({"uid": f"q{i}", "problem": problem["text"], **problem})
        else:
            new.append({"idx": i, "question": problem["text"], **problem})
    (folder / "counts.csv").write_text("\n".join(counts) + "\n")
    (folder / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    (folder / "new.jsonl").write_text("".join(json.dumps(m) + "\n" for m in new))
    (folder / "study.toml").write_text(STUDY)
    run_study(load_study(folder / "study.toml"), folder / "out", stages=STAGES_NO_REPORT)
    return folder / "out" / "study.duckdb", folder


STAGES_NO_REPORT = ("ingest", "outcomes", "solve", "learn", "evaluate")


def test_deployed_decisions_are_evaluates_allocation(deployed, tmp_path):
    """The run's own test problems, sent as requests: the weights are those evaluate stored
    for learned_batch (same features by the same SQL, same planner, same pricing)."""
    database, folder = deployed
    policy = BudgetPolicy.from_run(database)
    with duckdb.connect(str(database), read_only=True) as con:
        test_ids = [
            source
            for (source,) in con.execute(
                "select i.source_id from splits s join instances i using (run_id, instance_id) "
                "where s.split = 'test' and s.fold = 0 order by i.instance_id"
            ).fetchall()
        ]
        stored = con.execute(
            "select i.source_id, a.name, p.weight from policy_allocations p "
            "join instances i using (run_id, instance_id) join actions a using (run_id, action_id) "
            "where p.policy = 'learned_batch' and p.budget = 2.0 and p.seed = 0"
        ).fetchall()
    meta = {
        row["uid"]: row for row in map(json.loads, (folder / "meta.jsonl").read_text().splitlines())
    }
    requests = folder / "test_requests.jsonl"
    requests.write_text("".join(json.dumps(meta[i]) + "\n" for i in test_ids))
    columns = {"id": "uid", "text": "problem", "level": "level", "subject": "type"}
    weights, _ = policy.weights(read_requests(policy.study, requests, columns), 2.0)
    names = policy.actions.column("name").to_pylist()
    deployed_rows = {
        (test_ids[row], names[column], round(float(weights[row, column]), 12))
        for row, column in zip(*np.nonzero(weights), strict=True)
    }
    assert deployed_rows == {(source, name, round(w, 12)) for source, name, w in stored}


def test_new_requests_meet_the_budget_and_repeat_with_the_seed(deployed):
    database, folder = deployed
    policy = BudgetPolicy.from_run(database)
    assert policy.budgets == [2.0, 4.0] and policy.seed == 0
    requests = read_requests(policy.study, folder / "new.jsonl", NEW)
    assert requests.num_rows == 60
    for budget in (1.5, 3.0, 4.0):
        decisions = policy.allocate(requests, budget, seed=1)
        expected = np.mean(decisions.column("expected_planned_cost").to_numpy())
        assert abs(expected - budget) < 1e-9
        assert decisions.equals(policy.allocate(requests, budget, seed=1))
        assert decisions.column("id").to_pylist() == [str(i) for i in range(200, 260)]
    with pytest.raises(StudyError, match="mean planned cost ranges from 1 .* to 8"):
        policy.allocate(requests, 9.0)


def test_a_bad_request_is_named_by_row_and_column(deployed, tmp_path):
    database, folder = deployed
    policy = BudgetPolicy.from_run(database)
    bad = tmp_path / "bad.jsonl"
    good = {"idx": 1, "question": "Find x.", "level": "Level 2", "type": "Algebra"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "idx": 2, "question": None}))
    with pytest.raises(StudyError, match=r"bad\.jsonl: row 2, column 'question': missing value"):
        read_requests(policy.study, bad, NEW)
    with pytest.raises(StudyError, match=r"no column 'lvl' \(named by --columns level=lvl\)"):
        read_requests(policy.study, bad, {**NEW, "level": "lvl"})
    bad.write_text(json.dumps(good) + "\n" + json.dumps(good))
    with pytest.raises(StudyError, match=r"rows 1 and 2 repeat the key id = '1'"):
        read_requests(policy.study, bad, NEW)
    with pytest.raises(StudyError, match=r"no run 7 \(runs: 1\)"):
        BudgetPolicy.from_run(database, run_id=7)
    with pytest.raises(StudyError, match="'answer' is not a request column"):
        read_requests(policy.study, bad, {**NEW, "answer": "a"})


@pytest.mark.slow
def test_stl_allocate_writes_the_decisions_and_a_summary(deployed, tmp_path):
    database, folder = deployed
    out = tmp_path / "decisions.parquet"
    command = [sys.executable, "-m", "toolkit", "allocate", str(folder / "new.jsonl")]
    command += ["--db", str(database), "--budget", "3", "-o", str(out)]
    for role, column in NEW.items():
        command += ["-c", f"{role}={column}"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("60 requests at B = 3: mean planned cost 3 (priced to meet B")
    import pyarrow.parquet as pq

    written = pq.read_table(out)
    assert written.num_rows == 60 and set(written.column("b").to_pylist()) <= {1, 2, 4, 8}
    shares = [line.split() for line in done.stderr.splitlines()[1:-1]]
    assert sum(int(count.replace(",", "")) for _, count, _ in shares) == 60
    assert written.schema.field("planned_cost").type == pa.float64()
    bad = subprocess.run([*command[:-2], "--budget", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_a_saved_policy_loads_without_the_database_and_decides_the_same(deployed, tmp_path):
    database, folder = deployed
    copy = tmp_path / "study.duckdb"
    copy.write_bytes(database.read_bytes())
    policy = BudgetPolicy.from_run(copy)
    requests = read_requests(policy.study, folder / "new.jsonl", NEW)
    expected = {budget: policy.allocate(requests, budget, seed=4) for budget in (1.5, 3.0)}
    saved = policy.save(tmp_path / "policy")
    copy.unlink()  # the artifact stands alone
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["run_id"] == 1 and manifest["config_hash"] == policy.study.config_hash()
    assert manifest["features"]["names"][:2] == ["dataset", "subject"]
    assert manifest["versions"]["catboost"] and len(manifest["classifiers"]) == 2
    loaded = BudgetPolicy.load(saved)
    for budget, decisions in expected.items():
        assert loaded.allocate(requests, budget, seed=4).equals(decisions)
    policy.save(saved)  # saved again over itself: replaced whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(StudyError, match="exists and is not a policy folder"):
        policy.save(tmp_path / "other")
    with pytest.raises(StudyError, match="not a saved policy"):
        BudgetPolicy.load(tmp_path / "other")


def test_fit_is_the_pipelines_policy(deployed, tmp_path, monkeypatch):
    """BudgetPolicy(study).fit() runs the study's stages up to learn: its decisions are those
    of the run's policy, from a file, from records, or in chunks; unfitted, it says so."""
    database, folder = deployed
    study = load_study(folder / "study.toml")
    with pytest.raises(StudyError, match=r"not fitted; call \.fit\(\)"):
        BudgetPolicy(study).allocate(folder / "new.jsonl", 2.0, columns=NEW)
    expected = BudgetPolicy.from_run(database).allocate(folder / "new.jsonl", 3.0, columns=NEW)
    fitted = BudgetPolicy(folder / "study.toml").fit(tmp_path / "out")
    assert fitted.database == tmp_path / "out" / "study.duckdb" and fitted.run_id == 1
    assert fitted.allocate(folder / "new.jsonl", 3.0, columns=NEW).equals(expected)
    records = [json.loads(line) for line in (folder / "new.jsonl").read_text().splitlines()]
    assert fitted.allocate(records, 3.0, columns=NEW).equals(expected)
    monkeypatch.setattr("toolkit.deploy.CHUNK", 7)  # 60 requests in 9 chunks
    seen = []
    chunked = fitted.allocate(records, 3.0, columns=NEW, progress=lambda d, n: seen.append(d))
    assert chunked.equals(expected) and seen == [*range(7, 60, 7), 60]
    temporary = BudgetPolicy(study).fit()  # into a temporary folder, removed after
    assert temporary.database is None
    assert temporary.allocate(records, 3.0, columns=NEW).equals(expected)
    saved = BudgetPolicy.load(temporary.save(tmp_path / "policy"))
    assert saved.allocate(records, 3.0, columns=NEW).equals(expected)
    with pytest.raises(StudyError, match="a table of rows as read_requests returns them"):
        fitted.allocate(pa.table({"idx": [1]}), 3.0)


def _other_math_problems(shared_data: Path, out: Path) -> int:
    """The MATH test problems not in MATH-500, as requests (idx, problem, level, type)."""
    chosen = {
        json.loads(line)["problem"]
        for line in (shared_data / "math500.jsonl").read_text().splitlines()
    }
    rows = [json.loads(line) for line in (shared_data / "math_test5000.jsonl").open()]
    other = [row for row in rows if row["problem"] not in chosen]
    with out.open("w") as handle:
        for i, row in enumerate(other):
            keep = {"idx": i, "problem": row["problem"], "level": row["level"], "type": row["type"]}
            handle.write(json.dumps(keep) + "\n")
    return len(other)


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_math500_policy_allocates_the_other_4500_problems(shared_data, tmp_path):
    """The issue's must-show: a policy fitted by the MATH-500 study allocates the 4,500 other
    MATH test problems through stl allocate, meets B to 1e-9 in planned mean cost, repeats with
    the seed, and decides the same saved and loaded."""
    from test_studies import quick

    policy = BudgetPolicy(quick("math500_llama")).fit(tmp_path / "out")
    requests = tmp_path / "other.jsonl"
    assert _other_math_problems(shared_data, requests) == 4500
    policy.save(tmp_path / "policy")
    columns = ["-c", "id=idx", "-c", "text=problem", "-c", "level=level", "-c", "subject=type"]

    def allocate(source: list[str], budget: float, name: str):
        out = tmp_path / name
        command = [sys.executable, "-m", "toolkit", "allocate", str(requests), *source]
        command += ["--budget", str(budget), "--seed", "11", *columns, "-o", str(out)]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(f"4,500 requests at B = {budget:g}: mean planned cost")
        import pyarrow.parquet as pq

        return pq.read_table(out)

    database = ["--db", str(tmp_path / "out" / "study.duckdb")]
    for budget in (4.0, 16.0, 64.0):
        first = allocate(database, budget, "first.parquet")
        expected = np.mean(first.column("expected_planned_cost").to_numpy())
        assert abs(expected - budget) < 1e-9 * budget
        assert first.num_rows == 4500
        assert allocate(database, budget, "again.parquet").equals(first)
        assert allocate(["--policy", str(tmp_path / "policy")], budget, "saved.parquet").equals(
            first
        )
        assert first.equals(
            policy.allocate(
                requests,
                budget,
                seed=11,
                columns=dict(id="idx", text="problem", level="level", subject="type"),
            )
        )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _http(method: str, url: str, body: object = None) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_stl_serve_decides_over_http_and_stops_on_sigterm(deployed):
    """A real ``stl serve`` process on localhost, asked by a real HTTP client."""
    import signal
    import time

    database, folder = deployed
    port = _free_port()
    command = [sys.executable, "-m", "toolkit", "serve", "--db", str(database), "--budget", "3"]
    command += ["--port", str(port)]
    for role, column in NEW.items():
        command += ["-c", f"{role}={column}"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # it loads the policy first
            try:
                status, health = _http("GET", f"{base}/health")
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                time.sleep(0.1)
        assert status == 200 and health["run_id"] == 1 and health["budget"] == 3.0
        record = {"idx": 7, "question": "What is $2 + 2$?", "level": "Level 1", "type": "Algebra"}
        status, answer = _http("POST", f"{base}/allocate", record)
        assert status == 200, answer
        (decision,) = answer["decisions"]
        assert decision["id"] == "7" and decision["b"] in {1, 2, 4, 8}
        assert decision["action"] == f"m1@b={decision['b']}"
        batch = [{**record, "idx": i} for i in range(10, 30)]
        status, answer = _http("POST", f"{base}/allocate", batch)
        assert status == 200 and [d["id"] for d in answer["decisions"]] == [
            str(i) for i in range(10, 30)
        ]
        status, bad = _http("POST", f"{base}/allocate", [record, {**record, "question": None}])
        assert status == 422
        assert bad["error"] == (
            "request: row 2, column 'question': missing value (named by --columns text=question)"
        )
        status, bad = _http("POST", f"{base}/allocate", {"idx": 1, "level": "Level 2"})
        assert status == 422 and "no column 'question'" in bad["error"]
        status, stats = _http("GET", f"{base}/stats")
        assert status == 200 and stats["requests"] == 21  # the refused ones do not count
        assert stats["budget"] == 3.0 and stats["price"] is not None
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == 0, stderr
        assert "stopped after 21 requests" in stderr and "Traceback" not in stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


@pytest.mark.slow
def test_a_simulated_studys_policy_names_the_signals_requests_lack(tmp_path):
    """A simulated study's policy reads the simulator's difficulty signals, which no request
    has: allocating new requests is refused naming them (exit 2), not an AttributeError."""
    from conftest import make_study

    from toolkit.pipeline import run_study

    study = make_study(
        study={"name": "signals", "seed": 2},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 300}],
        learn={"iterations": 10, "seeds": [0]},
    )
    database = run_study(
        study, tmp_path, stages=("simulate", "outcomes", "solve", "learn")
    ).database
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        '{"id": 1, "question": "Solve $x^2 = 4$.", "level": 2, "subject": "Algebra"}\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "allocate",
            str(requests),
            "--budget",
            "4",
            "--db",
            str(database),
            "-c",
            "id=id",
            "-c",
            "text=question",
            "-c",
            "level=level",
            "-c",
            "subject=subject",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "difficulty signals" in done.stderr and "Traceback" not in done.stderr
