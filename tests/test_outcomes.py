"""Outcome estimation: exact vote probabilities against brute-force enumeration."""

from __future__ import annotations

import itertools
from collections import Counter

import ibis
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.outcomes import (
    answer_profiles,
    majority_vote_accuracy,
    majority_vote_accuracy_iid,
    pass_at_b,
)


def vote_by_enumeration(answers: list[int], correct: set[int], b: int) -> float:
    """Average over every b-subset of the samples of P(the vote is correct), ties uniform."""
    total, count = 0.0, 0
    for subset in itertools.combinations(range(len(answers)), b):
        votes = Counter(answers[i] for i in subset)
        top = max(votes.values())
        winners = [a for a, v in votes.items() if v == top]
        total += sum(a in correct for a in winners) / len(winners)
        count += 1
    return total / count


def groups(answers: list[int], correct: set[int]) -> tuple[list[int], list[int]]:
    counts = Counter(answers)
    right = sorted((v for a, v in counts.items() if a in correct), reverse=True)
    wrong = sorted((v for a, v in counts.items() if a not in correct), reverse=True)
    return right, wrong


@settings(max_examples=300, deadline=None)
@given(
    answers=st.lists(st.integers(0, 4), min_size=1, max_size=10),
    n_correct_answers=st.integers(0, 2),
    data=st.data(),
)
def test_majority_vote_matches_enumeration(answers, n_correct_answers, data):
    b = data.draw(st.integers(1, len(answers)))
    correct = set(range(n_correct_answers))
    right, wrong = groups(answers, correct)
    exact = majority_vote_accuracy([right], [wrong], np.array([len(answers)]), b)[0]
    assert exact == pytest.approx(vote_by_enumeration(answers, correct, b), abs=1e-12)


def test_majority_vote_is_vectorized_over_profiles():
    cases = [([0, 0, 1, 1, 2], {0}, 3), ([0, 1, 1, 1, 2, 0, 0], {0}, 4), ([3, 3, 3], {3}, 2)]
    rights, wrongs, ns = [], [], []
    for answers, correct, _ in cases:
        right, wrong = groups(answers, correct)
        rights.append(right)
        wrongs.append(wrong)
        ns.append(len(answers))
    for b in (1, 2, 3):
        got = majority_vote_accuracy(rights, wrongs, np.array(ns), b)
        want = [vote_by_enumeration(a, c, b) for a, c, _ in cases]
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_majority_vote_at_48_samples_is_a_probability_and_ties_split():
    # 24 right, 24 wrong (one answer): with b = 2 the vote is a coin flip on a 1-1 tie.
    acc = majority_vote_accuracy([[24]], [[24]], np.array([48]), 2)[0]
    assert acc == pytest.approx(0.5, abs=1e-12)
    acc16 = majority_vote_accuracy([[30]], [[10, 5, 3]], np.array([48]), 16)[0]
    assert 0.9 < acc16 <= 1.0


def iid_by_enumeration(p: float, wrong: list[float], b: int) -> float:
    probs = [p, *wrong]
    total = 0.0
    for draw in itertools.product(range(len(probs)), repeat=b):
        weight = float(np.prod([probs[d] for d in draw]))
        votes = Counter(draw)
        top = max(votes.values())
        winners = [a for a, v in votes.items() if v == top]
        total += weight * (0 in winners) / len(winners)
    return total


@settings(max_examples=60, deadline=None)
@given(
    shares=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4),
    b=st.integers(1, 5),
)
def test_iid_majority_vote_matches_enumeration(shares, b):
    probs = np.asarray(shares) / np.sum(shares)
    got = majority_vote_accuracy_iid(probs[:1], probs[None, 1:], b)[0]
    assert got == pytest.approx(iid_by_enumeration(probs[0], list(probs[1:]), b), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 12), data=st.data())
def test_pass_at_b_matches_enumeration(n, data):
    c = data.draw(st.integers(0, n))
    b = data.draw(st.integers(1, n))
    flags = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(flags, b))
    expected = sum(any(s) for s in subsets) / len(subsets)
    assert pass_at_b(np.array([n]), np.array([c]), b)[0] == pytest.approx(expected, abs=1e-12)


def test_answer_profiles_given_expect():
    samples = pa.table(
        {
            "instance_id": pa.array([1, 1, 1, 1, 1, 2, 2, 2], pa.int64()),
            "model": ["m"] * 8,
            "sample_idx": pa.array([0, 1, 2, 3, 4, 0, 1, 2], pa.int32()),
            "answer": pa.array([0, 0, 2, 2, 2, 5, None, None], pa.int32()),
            "correct": [True, True, False, False, False, True, False, False],
            "tokens": pa.array([10, 20, 30, 40, 50, None, None, None], pa.int32()),
        }
    )
    backend = ibis.duckdb.connect()
    got = backend.to_pyarrow(answer_profiles(ibis.memtable(samples))).sort_by("instance_id")
    rows = got.to_pylist()
    assert rows[0]["n"] == 5 and rows[0]["n_correct"] == 2
    assert rows[0]["correct_groups"] == [2] and rows[0]["wrong_groups"] == [3]
    assert rows[0]["mean_tokens"] == pytest.approx(30.0)
    # null answers are singleton groups; no tokens -> null mean
    assert rows[1]["wrong_groups"] == [1, 1] and rows[1]["correct_groups"] == [1]
    assert rows[1]["mean_tokens"] is None
