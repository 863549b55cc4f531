"""Metrics: the paired (stratified) bootstrap, matched-spend mixing and curve summaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import metrics
from toolkit.metrics import (
    PairedBootstrap,
    bootstrap_counts,
    envelope,
    interval,
    matched_mix,
    ratio,
    summarise_curve,
)


def test_bootstrap_is_seeded_and_resamples_whole_test_sets():
    counts = bootstrap_counts(50, 200, seed=3)
    assert counts.shape == (200, 50)
    np.testing.assert_array_equal(counts.sum(axis=1), 50)
    np.testing.assert_array_equal(counts, bootstrap_counts(50, 200, seed=3))
    assert not np.array_equal(counts, bootstrap_counts(50, 200, seed=4))
    low, high = interval(np.arange(1001.0))
    assert (low, high) == pytest.approx((25.0, 975.0))
    assert interval(np.array([np.nan])) == (None, None)


def test_stratified_bootstrap_keeps_each_fold_whole():
    strata = np.repeat([0, 1, 2], [10, 25, 15])
    counts = bootstrap_counts(50, 300, seed=1, strata=strata)
    for fold, size in ((0, 10), (1, 25), (2, 15)):
        np.testing.assert_array_equal(counts[:, strata == fold].sum(axis=1), size)


def test_paired_bootstrap_blocked_form_has_the_same_resamples(monkeypatch):
    """Small: exactly ``bootstrap_counts @ values / n``. Beyond DENSE_BOOTSTRAP_CELLS: the same
    draws as uint8 counts, means summed over blocks of instances (equal up to rounding)."""
    n, resamples, seed = 1237, 300, 11
    strata = np.arange(n) % 3
    values = np.random.default_rng(0).random((n, 7))
    dense = PairedBootstrap(n, resamples, seed, strata)
    assert dense.dense
    counts = bootstrap_counts(n, resamples, seed, strata)
    np.testing.assert_array_equal(dense.means(values), counts @ values / n)

    monkeypatch.setattr(metrics, "DENSE_BOOTSTRAP_CELLS", 0)
    monkeypatch.setattr(metrics, "_BLOCK_CELLS", 300 * 100)  # several blocks
    blocked = PairedBootstrap(n, resamples, seed, strata)
    assert not blocked.dense and blocked.counts.dtype == np.uint8
    np.testing.assert_array_equal(blocked.counts, counts)
    np.testing.assert_allclose(blocked.means(values), counts @ values / n, rtol=1e-13, atol=0)


def test_an_undefined_ratio_is_nan_in_resamples_and_none_stored():
    assert np.isnan(ratio(np.array([1.0]), np.array([0.0]))[0])
    assert metrics.defined(float("nan")) is None and metrics.defined(float("inf")) is None
    assert metrics.defined(0.5) == 0.5


@settings(max_examples=80, deadline=None)
@given(
    costs=st.lists(st.floats(0.5, 20.0), min_size=2, max_size=12),
    target=st.floats(0.5, 20.0),
)
def test_a_matched_mix_realises_the_target_or_is_none(costs, target):
    budgets = np.arange(1, len(costs) + 1, dtype=float)
    mix = matched_mix(budgets, costs, target)
    by_budget = dict(zip(budgets.tolist(), costs, strict=True))
    if mix is None:
        ordered = [by_budget[b] for b in sorted(by_budget)]
        assert not any(
            min(a, b) <= target <= max(a, b) for a, b in zip(ordered, ordered[1:], strict=False)
        ) or any(abs(c - target) <= 1e-12 * max(target, 1) for c in ordered)
        return
    spent = mix.weight * by_budget[mix.low_budget] + (1 - mix.weight) * by_budget[mix.high_budget]
    assert spent == pytest.approx(target, rel=1e-9)
    assert 0.0 <= mix.weight <= 1.0


def test_envelope_is_concave_non_decreasing_and_summaries_follow():
    x, y = envelope([1, 2, 3, 4, 8], [0.5, 0.6, 0.58, 0.75, 0.74])
    assert list(x) == [1, 2, 4, 8] and list(y) == pytest.approx([0.5, 0.6, 0.75, 0.75])
    found = summarise_curve([2, 4, 8], [0.6, 0.75, 0.74], cheapest=(1, 0.5), best_action=(8, 0.75))
    assert found.cost_to_reach == pytest.approx(4.0)
    assert found.saving == pytest.approx(0.5)
    # area: trapezoids 1..2 (0.55), 2..4 (1.35), flat 4..8 (3.0), over a range of 7
    assert found.aiq == pytest.approx((0.55 + 1.35 + 3.0) / 7)
    never = summarise_curve([2, 3], [0.55, 0.6], cheapest=(1, 0.5), best_action=(8, 0.75))
    assert never.cost_to_reach is None and never.saving is None
