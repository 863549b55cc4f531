"""The simulator: calibration to the presets, determinism, and the preset layouts."""

from __future__ import annotations

import collections
import json

import duckdb
import numpy as np
import pytest
from conftest import make_study

from toolkit.pipeline import run_study
from toolkit.presets import DATASET_PRESETS, MODEL_PRESETS
from toolkit.simulate import level_targets

ALL_MODELS = [{"name": name, "preset": name} for name in MODEL_PRESETS]


@pytest.fixture(scope="module")
def calibration_db(tmp_path_factory):
    """Every preset model on both dataset presets, 20,000 instances each, 16 samples."""
    study = make_study(
        study={"name": "calibration", "seed": 11},
        datasets=[
            {"name": "math", "source": "simulate", "preset": "math", "instances": 20_000},
            {"name": "gsm8k", "source": "simulate", "preset": "gsm8k", "instances": 20_000},
        ],
        models=ALL_MODELS,
        actions={"samples": [1, 2, 4, 8, 16]},
        estimation={"samples_per_instance": 16},
    )
    out = tmp_path_factory.mktemp("calibration")
    result = run_study(study, out, stages=("simulate",))
    return study, result.database


@pytest.mark.parametrize("preset", ["math", "gsm8k"])
def test_per_level_accuracy_within_two_points_of_target(calibration_db, preset):
    study, path = calibration_db
    targets = level_targets(study, preset)
    levels = DATASET_PRESETS[preset].level_values
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            """
            select s.model, i.level, avg(s.correct::double) as accuracy
            from samples s join instances i using (run_id, instance_id)
            where i.dataset = ?
            group by all
            """,
            [preset],
        ).fetchall()
    measured = {(model, level): acc for model, level, acc in rows}
    assert len(measured) == len(MODEL_PRESETS) * len(levels)
    for model in MODEL_PRESETS:
        for level, target in zip(levels, targets[model], strict=True):
            got = measured[(model, level)]
            assert abs(got - target) < 0.02, (model, preset, level, got, target)
        # and the level targets average to the preset's overall accuracy
        weights = DATASET_PRESETS[preset].level_proportions
        overall = float(np.dot(weights, targets[model]))
        assert overall == pytest.approx(MODEL_PRESETS[model].accuracy[preset], abs=1e-9)


def test_levels_decline_and_features_track_difficulty(calibration_db):
    _, path = calibration_db
    with duckdb.connect(str(path), read_only=True) as con:
        by_level = con.execute(
            "select level, avg(correct::double) from samples join instances "
            "using (run_id, instance_id) where dataset = 'math' group by 1 order by 1"
        ).fetchall()
        corr = con.execute(
            "select corr(difficulty, ln(prompt_tokens)), corr(difficulty, n_latex), "
            "corr(difficulty, difficulty_signals[1]) from instances where dataset = 'math'"
        ).fetchone()
    accuracies = [acc for _, acc in by_level]
    assert all(a > b for a, b in zip(accuracies, accuracies[1:], strict=False))
    assert all(c > 0.2 for c in corr), corr


def _table_digest(path, table):
    with duckdb.connect(str(path), read_only=True) as con:
        columns = [
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns where table_name = ? "
                "and column_name not in ('created_at', 'versions') order by ordinal_position",
                [table],
            ).fetchall()
        ]
        rows = con.execute(f"select {', '.join(columns)} from {table} order by all").fetchall()
    return columns, rows


def test_same_seed_same_tables_bit_for_bit(small_study, tmp_path):
    first = run_study(small_study, tmp_path / "a", stages=("simulate", "outcomes"))
    second = run_study(small_study, tmp_path / "b", stages=("simulate", "outcomes"))
    for table in ("instances", "samples", "sim_truth", "actions", "outcomes", "runs"):
        assert _table_digest(first.database, table) == _table_digest(second.database, table)
    other_seed = small_study.model_copy(
        update={"study": small_study.study.model_copy(update={"seed": 8})}
    )
    third = run_study(other_seed, tmp_path / "c", stages=("simulate",))
    assert _table_digest(first.database, "samples") != _table_digest(third.database, "samples")


def test_presets_match_the_real_question_sets(shared_data):
    levels = collections.Counter()
    subjects = collections.Counter()
    for line in (shared_data / "math_test5000.jsonl").read_text().splitlines():
        record = json.loads(line)
        levels[int(record["level"].removeprefix("Level "))] += 1
        subjects[record["type"]] += 1
    math = DATASET_PRESETS["math"]
    assert tuple(levels[level] for level in math.level_values) == math.level_counts
    assert tuple(subjects[s] for s in math.subjects) == math.subject_counts

    steps = collections.Counter()
    for line in (shared_data / "gsm8k_test.jsonl").read_text().splitlines():
        solution = json.loads(line)["answer"].split("####")[0].strip()
        steps[min(len(solution.splitlines()), 8)] += 1
    gsm8k = DATASET_PRESETS["gsm8k"]
    assert tuple(steps[s] for s in gsm8k.level_values) == gsm8k.level_counts


def test_model_overrides_reach_the_targets():
    study = make_study(
        models=[
            {"name": "steep", "preset": "qwen2.5-7b", "level_slope": 1.2, "accuracy": {"math": 0.5}}
        ]
    )
    targets = level_targets(study, "math")["steep"]
    weights = DATASET_PRESETS["math"].level_proportions
    assert float(np.dot(weights, targets)) == pytest.approx(0.5, abs=1e-9)
    logits = np.log(targets / (1 - targets))
    np.testing.assert_allclose(np.diff(logits), -1.2, atol=1e-9)


def test_a_study_without_declared_signals_runs_and_has_no_signal_features(tmp_path):
    study = make_study(
        study={"name": "no-signals", "seed": 3},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 800}],
        simulation={"signal_noise": []},
        budgets={"values": [4.0]},
        learn={"iterations": 20, "seeds": [0]},
    )
    result = run_study(study, tmp_path, stages=("simulate", "outcomes", "solve", "learn"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        rows = con.execute("select distinct feature from features").fetchall()
        names = {name for (name,) in rows}
        empty = con.execute("select bool_and(len(difficulty_signals) = 0) from instances")
        assert empty.fetchone()[0]
    assert "prompt_tokens" in names and not any(name.startswith("signal") for name in names)
    assert not any(name.startswith("probe") for name in names)  # no probe: no free samples
