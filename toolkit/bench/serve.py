"""``stl serve`` under load: a real server process on localhost and a real HTTP client (one
keep-alive connection, as a gateway in front of it would hold).

    stl bench serve                                        # a small study trained here
    stl bench serve --policy P --requests new.jsonl -c id=idx -c text=problem --budget 16

Rows: ``GET /health`` (the HTTP floor: routing and JSON, no decision; the reference of the same
run), ``POST /allocate`` with one record, and with batches of 1,000 records; p50 and p99
latency, and decisions per second. Targets: p99 < 20 ms for one record, >= 20,000 decisions/s
in batches of 1,000, on 2 cores.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.errors import StudyError

ONE_RECORD_P99_MS = 20.0
BATCH_DECISIONS_PER_S = 20_000.0
BATCH = 1_000

_STUDY = """\
[study]
name = "bench-serve"
seed = 1

[[datasets]]
name = "maths"
source = "counts"
path = "counts.csv"
model = "m1"
columns = { id = "id", n = "n", n_correct = "n_correct" }

[datasets.metadata]
path = "meta.jsonl"
columns = { id = "uid", text = "problem", level = "level", subject = "type" }

[[models]]
name = "m1"

[actions]
samples = [1, 2, 4, 8, 16]
aggregation = "pass"
cost = "samples"

[estimation]
samples_per_instance = 16

[budgets]
values = [4.0]

[policies]
compare = ["uniform", "learned"]

[learn]
iterations = 200
seeds = [0]
"""
_COLUMNS = {"id": "uid", "text": "problem", "level": "level", "subject": "type"}


def _problems(rng: random.Random, n: int) -> list[tuple[dict, float]]:
    out = []
    for i in range(n):
        level = rng.randint(1, 5)
        subject = rng.choice(["Algebra", "Geometry", "Number Theory"])
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        text = f"What is ${a} + {b}$?" + " Then find the remainder." * (level - 1)
        p = max(0.02, 0.97 - 0.21 * level + (0.1 if subject == "Algebra" else 0.0))
        out.append(
            ({"uid": f"q{i}", "problem": text, "level": f"Level {level}", "type": subject}, p)
        )
    return out


def _trained(folder: Path) -> tuple[list[str], list[dict]]:
    """A small study trained here: the server's arguments and 5,000 new records."""
    from toolkit.config import load_study
    from toolkit.pipeline import run_study

    rng = random.Random(3)
    problems = _problems(rng, 7_000)
    counts = ["id,n,n_correct"] + [
        f"{r['uid']},16,{sum(rng.random() < p for _ in range(16))}" for r, p in problems[:2_000]
    ]
    (folder / "counts.csv").write_text("\n".join(counts) + "\n")
    meta = "".join(json.dumps(r) + "\n" for r, _ in problems[:2_000])
    (folder / "meta.jsonl").write_text(meta)
    (folder / "study.toml").write_text(_STUDY)
    stages = ("ingest", "outcomes", "solve", "learn")
    run_study(load_study(folder / "study.toml"), folder / "out", stages=stages)
    arguments = ["--db", str(folder / "out" / "study.duckdb"), "--budget", "4"]
    for role, column in _COLUMNS.items():
        arguments += ["-c", f"{role}={column}"]
    return arguments, [r for r, _ in problems[2_000:]]


def _records(path: Path) -> list[dict]:
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        raise StudyError(f"--requests {path}: give a .jsonl file of records")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        raise StudyError(f"--requests {path}: cannot read it: {error}") from None


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _timed(connection: http.client.HTTPConnection, method: str, path: str, body=None) -> float:
    data = None if body is None else json.dumps(body)
    start = time.perf_counter()
    connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise StudyError(f"{method} {path}: {response.status} {payload[:300]!r}")
    return elapsed


def run(
    server_arguments: list[str] | None = None,
    records: list[dict] | None = None,
    singles: int = 1_000,
    batches: int = 20,
) -> list[dict]:
    """Start ``stl serve`` with ``server_arguments`` (by default on a study trained here),
    send ``records`` (by default new problems): one at a time, then in batches of 1,000."""
    with tempfile.TemporaryDirectory() as folder:
        if server_arguments is None:
            server_arguments, records = _trained(Path(folder))
        if not records:
            raise StudyError("--requests: no records to send")
        port = _port()
        command = [sys.executable, "-m", "toolkit", "serve", *server_arguments]
        server = subprocess.Popen(
            [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            connection = _connect(server, port)
            for record in records[:20]:  # warm: first queries compile and cache
                _timed(connection, "POST", "/allocate", record)
            health = [_timed(connection, "GET", "/health") for _ in range(singles)]
            one = [
                _timed(connection, "POST", "/allocate", records[i % len(records)])
                for i in range(singles)
            ]
            batch = []
            for i in range(batches):
                start = (i * BATCH) % len(records)
                chunk = [
                    {
                        **(r := records[(start + j) % len(records)]),
                        **_unique_id(r, server_arguments, j),
                    }
                    for j in range(BATCH)
                ]
                batch.append(_timed(connection, "POST", "/allocate", chunk))
            connection.close()
        finally:
            server.terminate()
            try:
                server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    return _rows(np.array(health), np.array(one), np.array(batch))


def _unique_id(record: dict, arguments: list[str], index: int) -> dict:
    """A batch repeats no id (the checks refuse it): the id field numbered within the batch."""
    id_column = "id"
    for flag, value in zip(arguments, arguments[1:], strict=False):
        if flag in ("-c", "--columns") and value.startswith("id="):
            id_column = value[3:]
    return {id_column: f"{record.get(id_column)}-{index}"}


def _connect(server: subprocess.Popen, port: int) -> http.client.HTTPConnection:
    for _ in range(1_200):
        if server.poll() is not None:
            stderr = server.stderr.read() if server.stderr is not None else b""
            raise StudyError(f"stl serve exited: {stderr.decode()[-500:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            _timed(connection, "GET", "/health")
            return connection
        except OSError:
            time.sleep(0.1)
    raise StudyError("stl serve did not answer within 120 s")


def _rows(health: np.ndarray, one: np.ndarray, batch: np.ndarray) -> list[dict]:
    def ms(values: np.ndarray, q: float) -> float:
        return float(np.quantile(values, q) * 1e3)

    floor = ms(health, 0.5)
    p99 = ms(one, 0.99)
    rate = BATCH / float(np.median(batch))
    return [
        {
            "request": "GET /health (reference)",
            "n": len(health),
            "p50_ms": floor,
            "p99_ms": ms(health, 0.99),
            "decisions_per_s": None,
            "vs_reference": 1.0,
            "target": "",
        },
        {
            "request": "POST /allocate, 1 record",
            "n": len(one),
            "p50_ms": ms(one, 0.5),
            "p99_ms": p99,
            "decisions_per_s": 1.0 / float(np.median(one)),
            "vs_reference": ms(one, 0.5) / floor,
            "target": f"p99 < {ONE_RECORD_P99_MS:g} ms: "
            + ("met" if p99 < ONE_RECORD_P99_MS else "MISSED"),
        },
        {
            "request": f"POST /allocate, {BATCH:,} records",
            "n": len(batch),
            "p50_ms": ms(batch, 0.5),
            "p99_ms": ms(batch, 0.99),
            "decisions_per_s": rate,
            "vs_reference": ms(batch, 0.5) / floor,
            "target": f">= {BATCH_DECISIONS_PER_S:,.0f}/s: "
            + ("met" if rate >= BATCH_DECISIONS_PER_S else "MISSED"),
        },
    ]


__all__ = ["run"]
