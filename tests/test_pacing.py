"""Online budget pacing: a stream whose difficulty mix shifts halfway keeps its running mean
planned cost within 1% of B, at the accuracy of the batch-priced policy on the same stream,
without seeing an outcome; and the window's exact price is the bisection's."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from toolkit.config import load_study
from toolkit.deploy import BudgetPolicy
from toolkit.errors import StudyError
from toolkit.ingest import read_requests
from toolkit.pacing import BudgetPacer, PriceWindow
from toolkit.pipeline import run_study
from toolkit.policies import calibrate_price, priced_weights

STUDY = """\
[study]
name = "pacing"
seed = 11

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
values = [2.5, 4.0]

[policies]
compare = ["uniform", "learned"]

[learn]
iterations = 100
seeds = [0]
"""
COLUMNS = {"id": "idx", "text": "question", "level": "level", "subject": "type"}
STREAM = 20_000


def _problem(rng: random.Random, level: int) -> tuple[dict, float]:
    """A problem and its true chance that one sample is right (by level and subject)."""
    subject = rng.choice(["Algebra", "Geometry", "Number Theory"])
    a, b = rng.randint(1, 99), rng.randint(1, 99)
    text = f"What is ${a} + {b}$?" + " Then find the remainder." * (level - 1)
    text += " \\frac{1}{2}" if subject == "Geometry" else ""
    p = max(0.02, 0.97 - 0.21 * level + (0.1 if subject == "Algebra" else 0.0))
    return {"level": f"Level {level}", "type": subject, "text": text}, p


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    """A policy trained on 2,000 problems of every level, and a stream of 20,000 new ones:
    the first half mostly easy (levels 1-2), the second mostly hard (4-5); with each request's
    true accuracy at every action (pass@b = 1 - (1 - p)^b)."""
    folder = tmp_path_factory.mktemp("pacing")
    rng = random.Random(5)
    counts, meta = ["id,n,n_correct"], []
    for i in range(2_000):
        problem, p = _problem(rng, rng.randint(1, 5))
        counts.append(f"q{i},16,{sum(rng.random() < p for _ in range(16))}")
        meta.append({"uid": f"q{i}", "problem": problem["text"], **problem})
    (folder / "counts.csv").write_text("\n".join(counts) + "\n")
    (folder / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    (folder / "study.toml").write_text(STUDY)
    stages = ("ingest", "outcomes", "solve", "learn")
    run_study(load_study(folder / "study.toml"), folder / "out", stages=stages)
    stream, chance = [], []
    for i in range(STREAM):
        mix = [5, 4, 2, 1, 1] if i < STREAM // 2 else [1, 1, 2, 4, 5]
        problem, p = _problem(rng, rng.choices([1, 2, 3, 4, 5], mix)[0])
        stream.append({"idx": i, "question": problem["text"], **problem})
        chance.append(p)
    (folder / "stream.jsonl").write_text("".join(json.dumps(s) + "\n" for s in stream))
    policy = BudgetPolicy.from_run(folder / "out" / "study.duckdb")
    requests = read_requests(policy.study, folder / "stream.jsonl", COLUMNS)
    b = policy.actions.column("b").to_numpy()
    accuracy = 1.0 - (1.0 - np.asarray(chance)[:, None]) ** b[None, :]
    return policy, requests, accuracy, folder


def _one_at_a_time(pacer: BudgetPacer, scores: np.ndarray, planned: np.ndarray) -> np.ndarray:
    chosen = [pacer.decide(scores[i : i + 1], planned[i : i + 1])[1][0] for i in range(len(scores))]
    return np.asarray(chosen)


@pytest.mark.slow
@pytest.mark.parametrize("budget", [2.5, 4.0])
def test_a_drifting_stream_keeps_its_running_mean_cost_at_the_budget(paced, budget):
    policy, requests, accuracy, _ = paced
    inputs = policy.inputs(requests)
    planned = inputs.planned_cost
    pacer = BudgetPacer(policy, budget, seed=0)
    classifier = pacer._classifier
    scores = classifier.scores(classifier.probabilities(inputs.frame))
    chosen = _one_at_a_time(pacer, scores, planned)
    rows = np.arange(STREAM)
    cost = planned[rows, chosen]
    running = np.cumsum(cost) / np.arange(1, STREAM + 1)
    assert np.abs(running[1_000:] / budget - 1.0).max() < 0.01
    assert pacer.stats().requests == STREAM
    assert pacer.stats().mean_planned_cost == pytest.approx(running[-1], rel=1e-12)

    # the batch-priced policy on the whole stream (it sees every request before deciding)
    weights, _ = policy.weights(requests, budget)
    batch = float((weights * accuracy).sum(axis=1).mean())
    online = float(accuracy[rows, chosen].mean())
    assert abs(online - batch) < 0.01, (online, batch)

    # the drift is real: at a price frozen after the first 1,000 requests, the second half
    # spends off B; the paced stream spends B in each half
    frozen = PriceWindow(1_000, planned.shape[1], classifier.min_price())
    frozen.add(scores[:1_000], planned[:1_000])
    late = priced_weights(scores[STREAM // 2 :], planned[STREAM // 2 :], frozen.calibrate(budget))
    late_cost = (late * planned[STREAM // 2 :]).sum(axis=1).mean()
    # (measured: 2.56 at B = 2.5, 4.87 at B = 4; paced 2.501 and 4.006)
    paced_error = abs(cost[STREAM // 2 :].mean() / budget - 1.0)
    assert paced_error < 0.01 and abs(late_cost / budget - 1.0) > 10 * paced_error


def test_the_same_stream_and_seed_give_the_same_decisions(paced):
    policy, requests, _, _ = paced
    head = requests.slice(0, 300)
    runs = []
    for _ in range(2):
        pacer = BudgetPacer(policy, 4.0, seed=7)
        runs.append([pacer.allocate(head.slice(i, 30)) for i in range(0, 300, 30)])
        stats = pacer.stats()
        assert stats.requests == 300 and stats.window == 300
        total = sum(float(np.sum(d.column("planned_cost").to_numpy())) for d in runs[-1])
        assert stats.deficit == pytest.approx(total - 300 * 4.0)
    assert all(a.equals(b) for a, b in zip(*runs, strict=True))
    assert runs[0][0].column_names[-1] == "price"
    # allocate is decide on the policy's scores and planned costs
    pacer, again = BudgetPacer(policy, 4.0, seed=7), BudgetPacer(policy, 4.0, seed=7)
    inputs = policy.inputs(head)
    scores = again._classifier.scores(again._classifier.probabilities(inputs.frame))
    for i in range(0, 300, 30):
        decided = pacer.allocate(head.slice(i, 30))
        _, chosen = again.decide(scores[i : i + 30], inputs.planned_cost[i : i + 30])
        names = policy.actions.column("name").to_pylist()
        assert decided.column("action").to_pylist() == [names[c] for c in chosen]


def test_bad_settings_are_refused(paced):
    policy = paced[0]
    with pytest.raises(StudyError, match="--budget: a positive number"):
        BudgetPacer(policy, 0.0)
    with pytest.raises(StudyError, match="--window: a whole number of requests >= 1"):
        BudgetPacer(policy, 4.0, window=0)


@pytest.mark.parametrize("min_price", [None, 0.0])
def test_the_window_price_is_the_bisections(min_price):
    """Without ties, the window's exact price gives calibrate_price's weights; with ties (in
    score and cost) it still meets the target exactly."""
    rng = np.random.default_rng(3)
    for trial in range(200):
        n, k = int(rng.integers(1, 200)), int(rng.integers(1, 7))
        scores = rng.random((n, k)) if min_price == 0.0 else np.log(rng.dirichlet(np.ones(k), n))
        tied = trial % 4 == 0
        if tied:
            scores = np.round(scores, 1)
        base = np.sort(rng.choice([1.0, 2.0, 3.0, 4.0, 8.0, 16.0, 32.0], k, replace=tied))
        cost = np.tile(base, (n, 1)) * (rng.uniform(0.5, 2.0, (n, 1)) if trial % 3 else 1.0)
        window = PriceWindow(500, k, min_price)
        window.add(scores, cost)
        target = float(rng.uniform(cost.min(axis=1).mean(), window._start[:n].mean()))
        weights = priced_weights(scores, cost, window.calibrate(target))
        assert (weights * cost).sum(axis=1).mean() == pytest.approx(target, rel=1e-9)
        if not tied:
            reference = calibrate_price(scores, cost, target, min_price=min_price)
            assert np.allclose(weights, priced_weights(scores, cost, reference))


def test_the_window_keeps_only_the_last_requests():
    """Three of four requests kept: their switch prices are 0.8, 0.7 and 0.1 (the first's,
    0.9, is gone), so a target of 5/3 is met between 0.1 and 0.7."""
    window = PriceWindow(3, 2, 0.0)
    for score in (0.9, 0.8, 0.7, 0.1):  # the dear action's gain over the cheap one
        window.add(np.array([[0.0, score]]), np.array([[1.0, 2.0]]))
    assert len(window) == 3
    calibration = window.calibrate(5 / 3)
    assert calibration.price_high == pytest.approx(0.4) and calibration.mix == 0.0
    assert window.calibrate(5.0).calibration_cost == pytest.approx(2.0)  # price 0: all dear
    assert window.calibrate(0.5).calibration_cost == pytest.approx(1.0)  # all cheap
