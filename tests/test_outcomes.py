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

from toolkit.config import resolve_model
from toolkit.outcomes import (
    answer_profiles,
    best_of_accuracy,
    estimate_outcomes,
    majority_vote_accuracies_iid,
    majority_vote_accuracy,
    majority_vote_accuracy_iid,
    pass_at_b,
    profile_keys,
    score_levels,
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


def best_of_by_enumeration(scores: list[float], correct: list[bool], b: int) -> float:
    """Average over every b-subset of P(its highest-scored sample is correct), ties uniform."""
    total, count = 0.0, 0
    for subset in itertools.combinations(range(len(scores)), b):
        top = max(scores[i] for i in subset)
        best = [i for i in subset if scores[i] == top]
        total += sum(correct[i] for i in best) / len(best)
        count += 1
    return total / count


@settings(max_examples=300, deadline=None)
@given(
    samples=st.lists(
        st.tuples(st.sampled_from([-1.5, 0.0, 0.25, 2.0, 7.0]), st.booleans()),
        min_size=1,
        max_size=10,
    ),
    data=st.data(),
)
def test_best_of_b_matches_enumeration(samples, data):
    """Exact best-of-b from the score levels (few distinct scores, so ties are common) against
    every b-subset, to 1e-12 (the levels counted here; the next test takes them from the
    pipeline's Ibis reduction)."""
    b = data.draw(st.integers(1, len(samples)))
    m, c = Counter(s for s, _ in samples), Counter(s for s, right in samples if right)
    levels = pa.table(
        {
            "instance_id": [7] * len(m),
            "score": list(m),
            "m": [m[s] for s in m],
            "c": [c[s] for s in m],
        }
    )
    ids, acc = best_of_accuracy(levels, b)
    assert ids.tolist() == [7]
    scores, correct = [s for s, _ in samples], [c for _, c in samples]
    assert acc[0] == pytest.approx(best_of_by_enumeration(scores, correct, b), abs=1e-12)


def test_best_of_b_is_vectorized_over_instances():
    rng = np.random.default_rng(3)
    rows, expected = [], {}
    for instance in range(40):
        n = int(rng.integers(3, 9))
        scores = rng.integers(0, 4, n).astype(float).tolist()
        correct = (rng.random(n) < 0.5).tolist()
        rows += [
            {"instance_id": instance, "model": "m", "score": s, "correct": c}
            for s, c in zip(scores, correct, strict=True)
        ]
        expected[instance] = (scores, correct)
    levels = ibis.duckdb.connect().to_pyarrow(
        score_levels(ibis.memtable(pa.Table.from_pylist(rows)))
    )
    for b in (1, 2, 3):
        ids, acc = best_of_accuracy(levels, b)
        assert ids.tolist() == list(range(40))
        truth = [best_of_by_enumeration(*expected[i], b) for i in range(40)]
        np.testing.assert_allclose(acc, truth, rtol=0, atol=1e-12)
    _, beyond = best_of_accuracy(levels, 9)  # more than any instance holds
    assert np.isnan(beyond).all()


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


def _profile_keys_by_dict(profiles: pa.Table):
    """The reference: distinct (n, correct groups, wrong groups) in order of first appearance,
    with a Python dict (what ``profile_keys`` replaces with one Arrow hash pass)."""
    index: dict = {}
    inverse = [
        index.setdefault((int(n), tuple(c or ()), tuple(w or ())), len(index))
        for n, c, w in zip(
            profiles.column("n").to_pylist(),
            profiles.column("correct_groups").to_pylist(),
            profiles.column("wrong_groups").to_pylist(),
            strict=True,
        )
    ]
    return index, np.array(inverse, dtype=np.int64)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 9),
            st.one_of(st.none(), st.lists(st.integers(1, 5), max_size=2)),
            st.one_of(st.none(), st.lists(st.integers(1, 5), max_size=4)),
        ),
        min_size=1,
        max_size=40,
    ),
    chunks=st.integers(1, 3),
)
def test_profile_keys_match_a_dict_of_tuples(rows, chunks):
    lists = pa.list_(pa.int64())
    table = pa.table(
        {
            "n": pa.array([r[0] for r in rows], pa.int64()),
            "correct_groups": pa.array([r[1] for r in rows], lists),
            "wrong_groups": pa.array([r[2] for r in rows], lists),
        }
    )
    size = -(-len(rows) // chunks)  # a chunked table, as an engine may return
    table = pa.concat_tables([table.slice(i, size) for i in range(0, len(rows), size)])
    index, inverse = _profile_keys_by_dict(table)
    distinct_n, correct, wrong, got_inverse = profile_keys(table)
    got = zip(distinct_n, correct, wrong, strict=True)
    assert [(int(n), tuple(c), tuple(w)) for n, c, w in got] == list(index)
    np.testing.assert_array_equal(got_inverse, inverse)


def _outcome_study(cost: str, models: int = 1):
    from conftest import make_study

    return make_study(
        study={"name": "outcomes-table"},
        models=[{"name": f"m{i}", "preset": "qwen2.5-7b"} for i in range(models)],
        actions={"samples": [1, 2, 3], "cost": cost},
        estimation={"samples_per_instance": 4},
        budgets={"values": [1.5, 2.0]},
    )


def _random_profiles(rng, models: list[str], ids_per_model: list[np.ndarray]):
    rows = []
    for model, ids in zip(models, ids_per_model, strict=True):
        for i in ids:
            n = 4
            right = int(rng.integers(0, n + 1))
            wrong = []
            left = n - right
            while left:
                size = int(rng.integers(1, left + 1))
                wrong.append(size)
                left -= size
            rows.append(
                {
                    "instance_id": int(i),
                    "model": model,
                    "n": n,
                    "n_correct": right,
                    "mean_tokens": float(rng.uniform(100, 900)),
                    "correct_groups": [right] if right else [],
                    "wrong_groups": sorted(wrong),
                }
            )
    order = rng.permutation(len(rows))  # an engine returns groups in any order
    return pa.Table.from_pylist([rows[j] for j in order])


@pytest.mark.parametrize("cost", ["samples", "usd"])
@pytest.mark.parametrize("shared", [True, False])
def test_outcome_table_is_sorted_and_complete_whichever_way_it_is_built(cost, shared):
    """Shared instances interleave the columns, others concatenate and sort: the same table."""
    rng = np.random.default_rng(5)
    study = _outcome_study(cost, models=2)
    ids = [np.arange(30), np.arange(30) if shared else np.arange(5, 40)]
    profiles = _random_profiles(rng, ["m0", "m1"], ids)
    prompts = pa.table(
        {
            "instance_id": pa.array(np.arange(35), pa.int64()),
            "prompt_tokens": pa.array(rng.integers(10, 90, 35), pa.int64()),
        }
    )
    got = estimate_outcomes(study, profiles, prompts)
    keys = list(
        zip(got.column("instance_id").to_pylist(), got.column("action_id").to_pylist(), strict=True)
    )
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    expected_rows = sum(len(i) for i in ids) * 3
    assert got.num_rows == expected_rows
    assert got.column("acc_true").null_count == expected_rows
    # each row is its own model's profile: the same value as computing that profile alone
    by_key = {(r["instance_id"], r["model"]): r for r in profiles.to_pylist()}
    model_of = {a: f"m{a // 3}" for a in range(6)}
    b_of = {a: [1, 2, 3][a % 3] for a in range(6)}
    prompt_of = dict(
        zip(prompts["instance_id"].to_pylist(), prompts["prompt_tokens"].to_pylist(), strict=True)
    )
    model = resolve_model(study.models[0])  # both models use the same preset
    for row in got.to_pylist()[::7]:
        profile = by_key[(row["instance_id"], model_of[row["action_id"]])]
        b = b_of[row["action_id"]]
        want = majority_vote_accuracy(
            [profile["correct_groups"]], [profile["wrong_groups"]], np.array([4]), b
        )[0]
        assert row["acc"] == pytest.approx(want, abs=1e-12)
        if cost == "samples":
            assert row["cost"] == b
        else:  # a missing prompt (instances 35..39 of m1) costs like 0 prompt tokens
            prompt = prompt_of.get(row["instance_id"], 0)
            usd = prompt * model.price_input_per_mtok
            usd += b * profile["mean_tokens"] * model.price_output_per_mtok
            assert row["cost"] == pytest.approx(usd / 1e6, rel=1e-12)


def test_iid_truth_is_the_same_with_threads_and_without(monkeypatch):
    import toolkit.outcomes.accuracy as accuracy

    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=3 * accuracy._BLOCK + 17)
    threaded = majority_vote_accuracies_iid(p[:, 0], p[:, 1:], [1, 6, 16])
    monkeypatch.setattr(accuracy, "_THREADS", 1)
    single = majority_vote_accuracies_iid(p[:, 0], p[:, 1:], [1, 6, 16])
    np.testing.assert_array_equal(threaded, single)


@pytest.mark.parametrize("wrong", [1, 2, 4, 7])
def test_iid_truth_of_every_b_at_once_is_the_per_b_product(wrong):
    """One pass for every b (each x's product once, the free series where b - x < x) gives
    what one polynomial product per b gives (``bench.outcomes.reference_iid``, what ``stl
    bench outcomes`` times it against), a wrong answer of probability 0 included."""
    from toolkit.bench.outcomes import reference_iid

    rng = np.random.default_rng(wrong)
    p = rng.dirichlet(np.full(wrong + 1, 0.7), size=500)
    p[:7, -1] = 0.0
    p[:7] /= p[:7].sum(axis=1, keepdims=True)
    bs = [16, 1, 5, 2, 9, 12, 3, 4, 8, 6]
    got = majority_vote_accuracies_iid(p[:, 0], p[:, 1:], bs)
    assert got.shape == (500, len(bs))
    for column, b in enumerate(bs):
        np.testing.assert_allclose(got[:, column], reference_iid(p[:, 0], p[:, 1:], b), atol=1e-12)
    # the largest b's arithmetic does not depend on which smaller b are read beside it
    np.testing.assert_array_equal(got[:, 0], majority_vote_accuracy_iid(p[:, 0], p[:, 1:], 16))
