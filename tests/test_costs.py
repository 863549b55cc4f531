"""Planned cost: the cost planner on its own, and a real run on a log whose output tokens vary
tenfold across instances, where every priced policy must still spend its budget."""

from __future__ import annotations

import csv
import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import make_study

from toolkit.costs import CostPlanner, fit_cost_planner
from toolkit.pipeline import run_study

PRICED = ("best_fixed", "uniform", "random", "prompt_length", "difficulty_bins", "learned_batch")


def test_a_constant_variable_cost_needs_no_model():
    frame = pd.DataFrame({"x": np.arange(50.0)})
    known = np.tile([1.0, 2.0, 4.0], (50, 1))
    planner = fit_cost_planner(frame, known, known)
    assert planner.method == "constant" and planner.model is None
    np.testing.assert_array_equal(planner.planned(frame, known), known)


def test_the_model_planner_follows_the_features_and_is_unbiased_on_training():
    rng = np.random.default_rng(0)
    length = rng.uniform(1, 10, 600)
    frame = pd.DataFrame({"prompt_tokens": length, "noise": rng.normal(size=600)})
    known = np.tile([10.0, 10.0], (600, 1))
    output = 100 * length * np.exp(0.05 * rng.normal(size=600))
    cost = known + np.column_stack([output, 4 * output])
    planner = fit_cost_planner(frame, known, cost, seed=1)
    assert planner.method == "catboost"
    planned = planner.planned(frame, known)
    np.testing.assert_allclose(planned.mean(axis=0), cost.mean(axis=0), rtol=1e-9)
    # it tracks the per-instance cost far better than the training mean does
    error = np.abs(planned - cost).mean() / np.abs(cost.mean(axis=0) - cost).mean()
    assert error < 0.2
    stored = CostPlanner.from_stored(
        planner.method, planner.mean_variable, planner.shift, planner.model_bytes()
    )
    np.testing.assert_allclose(stored.planned(frame, known), planned)
    mean_only = fit_cost_planner(frame, known, cost, method="mean")
    np.testing.assert_allclose(mean_only.planned(frame, known)[0], cost.mean(axis=0))


def write_tenfold_log(folder, n: int = 2000, samples: int = 8, seed: int = 3) -> None:
    """A samples log (CSV) and its questions (JSONL): question length 5..50 words, each
    answer's output tokens about 20 per question word (100..1,000: tenfold), longer questions
    harder. A vote over more samples pays for more output."""
    rng = np.random.default_rng(seed)
    words = rng.integers(5, 51, n)
    with open(folder / "questions.jsonl", "w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"q{i}", "question": "word " * words[i]}) + "\n")
    p_correct = 1 / (1 + np.exp(-(2.5 - words / 12 + rng.normal(0, 1.2, n))))
    with open(folder / "log.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "answer", "gold", "output_tokens"])
        for i in range(n):
            for _ in range(samples):
                right = rng.random() < p_correct[i]
                answer = "42" if right else str(rng.choice([7, 8, 9], p=[0.6, 0.3, 0.1]))
                tokens = max(1, int(20 * words[i] * np.exp(0.1 * rng.normal())))
                writer.writerow([f"q{i}", answer, "42", tokens])


@pytest.mark.slow
def test_every_priced_policy_spends_its_budget_when_output_tokens_vary_tenfold(tmp_path):
    write_tenfold_log(tmp_path)
    study = make_study(
        study={"name": "tenfold-tokens", "seed": 11},
        datasets=[
            {
                "name": "log",
                "source": "samples",
                "path": str(tmp_path / "log.csv"),
                "model": "m",
                "columns": {
                    "id": "id",
                    "answer": "answer",
                    "reference": "gold",
                    "tokens": "output_tokens",
                },
                "metadata": {
                    "path": str(tmp_path / "questions.jsonl"),
                    "columns": {"id": "id", "text": "question"},
                },
            }
        ],
        models=[{"name": "m", "accuracy": {}, "output_tokens": {}}],
        actions={"samples": [1, 2, 4, 8], "aggregation": "majority", "cost": "tokens"},
        estimation={"samples_per_instance": 8},
        budgets={"values": [1200.0, 2000.0, 3000.0], "grid": 8},
        policies={
            "compare": [
                "oracle",
                "uniform",
                "random",
                "prompt_length",
                "difficulty_bins",
                "learned",
            ]
        },
        learn={"iterations": 60, "depth": 4, "seeds": [0]},
    )
    result = run_study(
        study, tmp_path / "out", stages=("ingest", "outcomes", "solve", "learn", "evaluate")
    )
    with duckdb.connect(str(result.database), read_only=True) as con:
        rows = con.execute(
            "select policy, budget, metric, value from evaluations "
            "where metric in ('planned_cost', 'cost')"
        ).fetchall()
        spread = con.execute(
            "select max(m) / min(m) from (select instance_id, avg(tokens) as m from samples "
            "group by instance_id)"
        ).fetchone()[0]
    assert spread > 8  # output tokens per instance vary about tenfold
    values = {(p, b, m): v for p, b, m, v in rows}
    checked = 0
    for (policy, budget, name), value in values.items():
        if policy in PRICED and name == "cost":
            assert values[(policy, budget, "planned_cost")] == pytest.approx(budget, rel=1e-9)
            assert abs(value / budget - 1) <= 0.02, (policy, budget, value)
            checked += 1
    assert checked == len(PRICED) * 3
