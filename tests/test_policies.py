"""Policies: the price calibration, and every baseline fitted on a training set and allocating
a batch at a budget, on per-instance planned costs (as with costs in tokens or dollars)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.policies import (
    BASELINES,
    AlwaysModel,
    BestFixed,
    DifficultyBins,
    Inputs,
    PriceCurve,
    PromptLength,
    RandomMix,
    RuleFamily,
    TrainingSet,
    Uniform,
    calibrate_price,
    concave_hull_actions,
    policy_from_state,
    price_choice,
    priced_weights,
)

COST = np.array([1.0, 2.0, 4.0, 8.0, 16.0])


def token_batch(n: int, seed: int, spread: float = 10.0) -> tuple[Inputs, np.ndarray]:
    """A batch whose planned costs vary ``spread``-fold across instances (output length), with
    rising accuracy curves; (inputs, accuracies)."""
    rng = np.random.default_rng(seed)
    length = np.exp(rng.uniform(0, np.log(spread), n))
    planned = 50 + np.outer(length * 100, COST)  # a prompt of 50 + b outputs of length*100
    frame = pd.DataFrame(
        {
            "prompt_tokens": rng.integers(10, 400, n).astype(float),
            "signal_1": rng.normal(size=n),
            "level": rng.integers(1, 6, n).astype(float),
        }
    )
    acc = np.sort(rng.random((n, len(COST))), axis=1)
    acc[:, 1] = acc[:, 0]  # majority@2 = majority@1: a dominated action
    return Inputs(np.arange(n), frame, planned), acc


RULES = (None, None, "esc(w=2,b<=4)", "esc(w=2,b<=8)", "esc(w=4,b<=16)")
"""The stopping rule of each action of ``training``: two static, three of the esc family."""


def training(n: int = 400, seed: int = 0) -> TrainingSet:
    inputs, acc = token_batch(n, seed)
    mix = np.array([0.4, 0.0, 0.3, 0.2, 0.1])
    return TrainingSet(
        inputs,
        acc,
        inputs.planned_cost * 1.02,  # realised a little above planned
        np.arange(len(COST), dtype=np.int32),
        ("m",) * len(COST),
        oracle_mix=lambda budget: mix,
        action_rules=RULES,
    )


def fresh(family: str):
    """An unfitted baseline of a family (the per-model and per-rule ones named)."""
    if family == "always":
        return AlwaysModel(model="m")
    if family == "rule":
        return RuleFamily(family="esc")
    return BASELINES[family]()


def test_a_rule_family_mixes_its_own_settings_to_meet_the_budget():
    train = training()
    batch, _ = token_batch(200, seed=5)
    policy = RuleFamily(family="esc").fit(train)
    assert policy.policy_name == "rule_esc" and set(policy.steps) <= {2, 3, 4}
    means = batch.planned_cost.mean(axis=0)
    budget = float((means[2] + means[3]) / 2)
    weights = policy.allocate(batch, budget).weights
    assert weights[:, :2].sum() == 0.0  # never a static action
    assert (weights * batch.planned_cost).sum(axis=1).mean() == pytest.approx(budget, rel=1e-9)
    with pytest.raises(ValueError, match="'ac'"):
        RuleFamily(family="ac").fit(train)


PRICING_CASES = {
    "seed": st.integers(0, 10_000),
    "n": st.integers(1, 60),
    "budget": st.floats(1.0, 16.0),
    "coarse": st.booleans(),
    "per_instance": st.booleans(),
}


def pricing_case(seed, n, budget, coarse, per_instance) -> tuple[np.ndarray, np.ndarray, float]:
    """(scores, cost, target): n rising accuracy curves over COST (coarse: many identical
    rows, ties at the price, as CatBoost leaves give), costs per instance or per action."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n, 5))
    if coarse:
        scores = np.round(scores[rng.integers(0, min(3, n), n)], 1)
    scores = np.maximum.accumulate(scores, axis=1)  # accuracy curves rise with b
    cost = COST * rng.uniform(0.5, 2.0, (n, 1)) if per_instance else COST
    target = budget * (float(np.mean(cost[:, 0])) if per_instance else 1.0)
    return scores, cost, target


@settings(max_examples=40, deadline=None)
@given(**PRICING_CASES)
def test_calibrated_price_meets_the_budget_exactly(seed, n, budget, coarse, per_instance):
    scores, cost, target = pricing_case(seed, n, budget, coarse, per_instance)
    cal = calibrate_price(scores, cost, target, min_price=None)
    weights = priced_weights(scores, cost, cal)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (weights >= -1e-12).all()
    spent = (weights * np.broadcast_to(cost, weights.shape)).sum(axis=1).mean()
    low = np.broadcast_to(cost, weights.shape)[:, 0].mean()
    high = np.broadcast_to(cost, weights.shape)[:, -1].mean()
    assert spent == pytest.approx(min(max(target, low), high), rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(**PRICING_CASES, min_price=st.sampled_from([None, 0.0]))
def test_one_price_curve_reads_every_budget_as_calibrate_price_does(
    seed, n, budget, coarse, per_instance, min_price
):
    """A PriceCurve worked out once gives, at every budget, exactly the calibration that
    calibrate_price computes from scratch (the switches do not depend on the budget)."""
    scores, cost, target = pricing_case(seed, n, budget, coarse, per_instance)
    curve = PriceCurve(scores, cost, min_price=min_price)
    mean_cheapest = float(np.broadcast_to(cost, scores.shape).min(axis=1).mean())
    for wanted in (target, 0.5 * target, 1.5 * target, mean_cheapest, target):
        assert curve.calibrate(wanted) == calibrate_price(scores, cost, wanted, min_price=min_price)


@settings(max_examples=200, deadline=None)
@given(**PRICING_CASES, min_price=st.sampled_from([None, 0.0]))
def test_the_exact_price_bracket_decides_as_a_bisection_does(
    seed, n, budget, coarse, per_instance, min_price
):
    """calibrate_price finds its bracket from the switch prices (two checks instead of a
    bisection's 60 evaluations): the budget met as exactly, and the same weights as the
    bisection on the instances it was calibrated on and on others it is applied to (a
    validation price on test), but for those tied at the price itself (their choice there
    is down to the tie tolerance, in either method)."""
    scores, cost, target = pricing_case(seed, 2 * n, budget, coarse, per_instance)
    calibration_cost = cost[:n] if per_instance else cost
    other_cost = cost[n:] if per_instance else cost
    exact = calibrate_price(scores[:n], calibration_cost, target, min_price=min_price)
    with pytest.MonkeyPatch.context() as patch:  # the bisection it falls back to
        patch.setattr("toolkit.policies.PriceCurve._switch_bracket", lambda *args: None)
        bisected = calibrate_price(scores[:n], calibration_cost, target, min_price=min_price)
    assert exact.calibration_cost == pytest.approx(bisected.calibration_cost, rel=1e-12)
    assert exact.price == pytest.approx(bisected.price, rel=1e-8, abs=1e-8)
    for rows, costs in ((slice(0, n), calibration_cost), (slice(n, 2 * n), other_cost)):
        at = exact.price
        near = 1e-8 * max(1.0, abs(at))
        untied = price_choice(scores[rows], costs, at - near) == price_choice(
            scores[rows], costs, at + near
        )
        if rows.start == 0 and not untied.all():
            continue  # the calibration set itself tied at the price: the mixes may differ
        np.testing.assert_allclose(
            priced_weights(scores[rows], costs, exact)[untied],
            priced_weights(scores[rows], costs, bisected)[untied],
            atol=1e-9,
        )


def test_accuracy_prices_never_go_negative():
    scores = np.tile([0.5, 0.6, 0.6, 0.6, 0.6], (10, 1))
    cal = calibrate_price(scores, COST, 8.0, min_price=0.0)
    assert cal.price_low >= 0.0
    weights = priced_weights(scores, COST, cal)
    # more than b = 2 buys nothing: the budget is left unspent
    assert (weights @ COST).mean() == pytest.approx(2.0)
    assert list(price_choice(scores, COST, 0.0)) == [1] * 10


@pytest.mark.parametrize(
    "family", ["uniform", "best_fixed", "random", "prompt_length", "difficulty_bins"]
)
def test_every_baseline_meets_the_planned_budget_exactly_on_a_batch(family):
    train = training()
    batch, _ = token_batch(300, seed=1)
    policy = BASELINES[family]().fit(train, [300.0, 800.0, 2000.0])
    means = batch.planned_cost.mean(axis=0)
    for budget in np.geomspace(means[0] * 1.01, means[-1] * 0.99, 7):
        decision = policy.allocate(batch, float(budget))
        weights = decision.weights
        np.testing.assert_allclose(weights.sum(axis=1), 1.0)
        assert (weights >= -1e-12).all()
        planned = (weights * batch.planned_cost).sum(axis=1).mean()
        assert planned == pytest.approx(budget, rel=1e-9), (family, budget)
        assert decision.calibrated_on == "test_features"


def test_best_fixed_never_buys_a_dominated_action_and_uniform_does():
    train = training()
    batch, _ = token_batch(200, seed=2)
    budget = float(batch.planned_cost[:, :2].mean())  # between b = 1 and b = 2
    best = BestFixed().fit(train).allocate(batch, budget).weights
    uniform = Uniform().fit(train).allocate(batch, budget).weights
    assert best[:, 1].sum() == 0.0  # majority@2 is no better than majority@1
    assert uniform[:, 1].sum() > 0.0
    assert (best > 0).sum(axis=1).max() <= 2


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 7))
def test_concave_hull_is_the_upper_envelope(seed, k):
    rng = np.random.default_rng(seed)
    cost = np.round(rng.uniform(0, 10, k), 1)
    acc = np.round(rng.uniform(0, 1, k), 2)
    hull = concave_hull_actions(cost, acc)
    points = list(zip(cost[hull], acc[hull], strict=True))
    assert all(points[i][0] < points[i + 1][0] for i in range(len(points) - 1))
    assert all(points[i][1] < points[i + 1][1] for i in range(len(points) - 1))
    for a in range(k):  # no action lies above the hull's piecewise-linear envelope
        if cost[a] >= points[0][0]:
            envelope = np.interp(cost[a], [p[0] for p in points], [p[1] for p in points])
            assert acc[a] <= envelope + 1e-12
    cheapest = np.lexsort((-acc, cost))[0]
    assert hull[0] == cheapest


def test_a_stored_state_rebuilds_the_same_policy():
    train = training()
    batch, _ = token_batch(150, seed=3)
    for family in BASELINES:
        policy = fresh(family).fit(train, [500.0, 1500.0])
        state = json.loads(json.dumps(policy.state()))  # as stored: JSON
        rebuilt = policy_from_state(family, state)
        for budget in (600.0, 1400.0):
            np.testing.assert_array_equal(
                rebuilt.allocate(batch, budget).weights, policy.allocate(batch, budget).weights
            )


def test_prompt_length_gives_longer_prompts_more_and_random_keeps_the_mix_shape():
    train = training()
    batch, _ = token_batch(300, seed=4)
    batch.frame["prompt_tokens"] = np.linspace(10, 400, 300)
    uniform_cost = Inputs(batch.instance_ids, batch.frame, np.tile(COST, (300, 1)))
    weights = PromptLength().fit(train).allocate(uniform_cost, 4.0).weights
    assert np.all(np.diff(weights @ COST) >= -1e-12)
    random = RandomMix().fit(train, [4.0]).allocate(uniform_cost, 4.0)
    shares = random.weights[0]
    assert shares[1] == 0.0  # an action the oracle mix never used stays unused
    assert (random.weights == shares).all()


def test_difficulty_bins_are_quantiles_with_training_curves():
    train = training(n=1000)
    bins = DifficultyBins().fit(train)
    assert bins.signal == "signal_1"
    assigned = bins.bin_of(train.inputs.frame["signal_1"].to_numpy())
    assert np.bincount(assigned).tolist() == [200] * 5
    np.testing.assert_allclose(bins.bin_acc[2], train.acc[assigned == 2].mean(axis=0))
    assert bins.bin_of(np.array([np.nan]))[0] == 2
