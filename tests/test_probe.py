"""The probe: exact accuracies after a probe against brute-force enumeration, and what the
probe sees against what it is scored on."""

from __future__ import annotations

import itertools
from fractions import Fraction

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import make_study
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.pipeline import run_study
from toolkit.probe import (
    probe_features,
    probe_profiles,
    probed_accuracy,
    probed_pass_at_b,
    probed_vote_accuracy,
)


def brute_force(remaining, seen, correct, more) -> float:
    """Enumerate every ``more``-subset of the remaining samples; vote with the probe's."""
    pool = [j for j, r in enumerate(remaining) for _ in range(int(r))]
    subsets = list(itertools.combinations(range(len(pool)), more))
    total = Fraction(0)
    for subset in subsets:
        votes = list(seen)
        for index in subset:
            votes[pool[index]] += 1
        top = max(votes)
        winners = [j for j, v in enumerate(votes) if v == top]
        total += Fraction(sum(correct[j] for j in winners), len(winners))
    return float(total / len(subsets))


groups = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 3), st.booleans()), min_size=1, max_size=4
)


@settings(max_examples=150, deadline=None)
@given(groups=groups, more=st.integers(0, 6))
def test_a_vote_after_the_probe_is_exact(groups, more):
    remaining = [r for r, _, _ in groups]
    seen = [s for _, s, _ in groups]
    correct = [c for _, _, c in groups]
    if sum(remaining) < more or sum(seen) + more == 0:
        return
    got = probed_vote_accuracy(np.array([remaining]), np.array([seen]), np.array([correct]), more)[
        0
    ]
    assert got == pytest.approx(brute_force(remaining, seen, correct, more), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 9), c=st.integers(0, 9), seen=st.integers(0, 2), more=st.integers(0, 5))
def test_pass_after_the_probe_is_exact(n, c, seen, more):
    c = min(c, n)
    if more > n:
        return
    pool = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(pool, more))
    expected = 1.0 if seen else float(np.mean([any(s) for s in subsets]))
    got = probed_pass_at_b(np.array([n]), np.array([c]), np.array([seen]), more)[0]
    assert got == pytest.approx(expected, abs=1e-12)


def test_the_probe_sees_its_samples_and_is_scored_on_the_rest():
    # two instances of 6 samples: answers coded, sample 0 is right for instance 0
    table = pa.table(
        {
            "instance_id": pa.array([0] * 6 + [1] * 6, pa.int64()),
            "sample_idx": pa.array(list(range(6)) * 2, pa.int32()),
            "answer": pa.array([0, 0, 1, 1, 2, None, 3, 3, 3, 3, 3, 3], pa.int32()),
            "correct": [True, True, False, False, False, False] + [True] * 6,
            "tokens": pa.array(np.arange(12) * 10 + 5, pa.int64()),
        }
    )
    profiles = probe_profiles(table, k=2, seed=1)
    assert profiles.seen.sum(axis=1).tolist() == [2, 2]
    assert (profiles.remaining.sum(axis=1) == 4).all()
    assert profiles.seen.sum() + profiles.remaining.sum() == 12
    # the same seed takes the same probe; another seed another
    again = probe_profiles(table, k=2, seed=1)
    np.testing.assert_array_equal(again.seen, profiles.seen)
    features = probe_features(profiles, verifier=True).to_pylist()
    assert features[1]["probe_agreement"] == 1.0 and features[1]["probe_entropy"] == 0.0
    assert features[1]["probe_correct"] == 1.0
    # b = k: the vote is the probe's alone; instance 1 is always right
    acc = probed_accuracy(profiles, "majority", b=2, k=2)
    assert acc[1] == 1.0
    full = probed_accuracy(profiles, "majority", b=6, k=2)  # every sample: no randomness left
    assert full[0] == pytest.approx(0.5)  # 0 and 1 tie at 2 votes each, 2 and None one each


@pytest.mark.slow
def test_a_probe_study_charges_the_probe_and_scores_on_held_out_samples(tmp_path):
    k = 2
    study = make_study(
        study={"name": "probe", "seed": 5},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 600}],
        budgets={"values": [3.0, 6.0]},
        probe={"samples": k, "model": "qwen2.5-7b"},
        learn={"iterations": 30, "depth": 4, "seeds": [0]},
    )
    result = run_study(study, tmp_path)
    with duckdb.connect(str(result.database), read_only=True) as con:
        actions = con.execute(
            "select menu, b, probe_samples from actions order by action_id"
        ).fetchall()
        # every static action, then the probe's: b >= k, each following the k samples
        assert [a for a in actions if a[0] == "static"] == [
            ("static", b, 0) for b in (1, 2, 4, 8, 16)
        ]
        assert [a for a in actions if a[0] == "probe"] == [("probe", b, k) for b in (2, 4, 8, 16)]
        # a probe action costs b samples: the probe's k included (cost in samples)
        wrong = con.execute(
            "select count(*) from outcomes o join actions a using (run_id, action_id) "
            "where o.cost <> a.b"
        ).fetchone()[0]
        assert wrong == 0
        assert con.execute("select count(*) from probes").fetchone()[0] == 600
        spent = dict(
            con.execute(
                "select budget, value from evaluations "
                "where policy = 'learned_probe' and metric = 'planned_cost'"
            ).fetchall()
        )
        # every instance pays the probe: nothing below k, the budget met in planned cost
        assert spent == {3.0: pytest.approx(3.0), 6.0: pytest.approx(6.0)}
        lowest = con.execute(
            "select min(a.b) from policy_allocations p join actions a using (run_id, action_id) "
            "where p.policy = 'learned_probe' and p.weight > 0"
        ).fetchone()[0]
        assert lowest >= k
        # the static oracle's noise is measured on acc_true, probe or not
        heldout = con.execute("select count(*), count(heldout_gain) from oracle_noise").fetchone()
        assert heldout == (2, 2)
