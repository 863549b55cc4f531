"""The score-weighted vote against enumeration, the majority vote and the real log."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.errors import StudyError
from toolkit.outcomes import majority_vote_accuracy
from toolkit.scores import EXACT_MAX_SUBSETS, vote_weights, weighted_vote_accuracy


def enumerate_subsets(keys, scores, correct, b) -> float:
    """Every b-subset, one at a time: sum the scores per answer, split ties exactly."""
    total, count = Fraction(0), 0
    for subset in combinations(range(len(keys)), b):
        sums: dict[int, Fraction] = {}
        right: dict[int, bool] = {}
        for i in subset:
            # the decimal a score was written as: 0.1 + 0.2 ties 0.3, as a reward model's
            # printed scores mean (the toolkit ties sums within 1e-12 relative)
            sums[keys[i]] = sums.get(keys[i], Fraction(0)) + Fraction(f"{scores[i]:.6f}")
            right[keys[i]] = bool(correct[i])
        best = max(sums.values())
        winners = [k for k, v in sums.items() if v == best]
        total += Fraction(sum(right[k] for k in winners), len(winners))
        count += 1
    return float(total / count)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 7),
    b=st.integers(1, 7),
    seed=st.integers(0, 10_000),
    coarse=st.booleans(),
)
def test_the_weighted_vote_is_exact(n, b, seed, coarse):
    """Random answers (some shared, equal answers equally correct), random scores (coarse:
    few values, so score sums tie), every b-subset enumerated."""
    b = min(b, n)
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 3, n)
    right_answer = rng.integers(0, 3)
    correct = keys == right_answer
    scores = rng.integers(1, 3, n).astype(float) if coarse else rng.random(n).round(3) + 0.001
    acc, se = weighted_vote_accuracy(keys[None], scores[None], correct[None], b)
    assert se is None
    assert acc[0] == pytest.approx(enumerate_subsets(keys, scores, correct, b), abs=1e-12)


def test_equal_scores_give_the_majority_vote():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 4, (50, 9))
    correct = keys == 0
    scores = np.ones(keys.shape)
    for b in (1, 2, 3, 5, 9):
        acc, _ = weighted_vote_accuracy(keys, scores, correct, b)
        groups = [np.bincount(row, minlength=4) for row in keys]
        majority = majority_vote_accuracy(
            [[g[0]] if g[0] else [] for g in groups],
            [sorted(int(x) for x in g[1:] if x) for g in groups],
            np.full(50, 9),
            b,
        )
        np.testing.assert_allclose(acc, majority, atol=1e-12)


def test_too_many_subsets_fall_back_to_a_seeded_monte_carlo():
    rng = np.random.default_rng(4)
    n, b = 30, 8
    assert len(list(combinations(range(12), 6))) < EXACT_MAX_SUBSETS < 5_852_925  # C(30, 8)
    keys = rng.integers(0, 3, (3, n))
    correct = keys == 1
    scores = np.ones((3, n))
    acc, se = weighted_vote_accuracy(keys, scores, correct, b, orders=4000, seed=[1, 2])
    groups = [np.bincount(row, minlength=3) for row in keys]
    exact = majority_vote_accuracy(
        [[g[1]] for g in groups], [sorted([g[0], g[2]]) for g in groups], np.full(3, n), b
    )
    assert se is not None and (se > 0).all()
    assert (np.abs(acc - exact) <= 3 * se).all()
    again, _ = weighted_vote_accuracy(keys, scores, correct, b, orders=4000, seed=[1, 2])
    assert again.tobytes() == acc.tobytes()  # seeded: bit for bit


@pytest.mark.slow
def test_the_qwen_log_weighted_vote(shared_data, tmp_path):
    """On the real log: b = 1 is one sample (mean accuracy 0.91, the data README's fact), and
    with two samples the heavier of two answers is the higher-scored one: best-of-2, 0.9279."""
    from toolkit.config import load_study
    from toolkit.pipeline import run_study

    study = load_study("toolkit/studies/qwen25math_weighted.toml")
    result = run_study(study, tmp_path, stages=("simulate", "outcomes"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        acc = dict(con.execute("select b, mean_acc from action_accuracy").fetchall())
    assert acc[1] == pytest.approx(0.91, abs=1e-12)
    assert acc[2] == pytest.approx(0.9279, abs=5e-5)
    assert acc[4] <= acc[8] == pytest.approx(0.94, abs=5e-5)


def test_negative_scores_are_refused_or_mapped_by_the_logistic():
    """A negative weight would make three agreeing samples weigh less than one: refused as
    scores; as logits, the logistic keeps their order and makes every weight positive."""
    scores = np.array([[-1.0, -1.0, -1.0, -1.0]])
    with pytest.raises(StudyError, match="negative score"):
        vote_weights(scores, "score", "m")
    weights = vote_weights(np.array([[-4.0, 0.0, 3.0]]), "sigmoid", "m")
    assert (weights > 0).all() and (np.diff(weights) > 0).all()
    keys = np.array([[0, 0, 0, 1]])
    acc, _ = weighted_vote_accuracy(keys, vote_weights(scores, "sigmoid", "m"), keys == 0, 4)
    assert acc[0] == 1.0  # the three agreeing samples win
