"""Stopping rules against brute-force enumeration of every order of the samples."""

from __future__ import annotations

from fractions import Fraction
from itertools import permutations

import numpy as np
import pytest
from conftest import make_study

from toolkit.rules import (
    Rule,
    partitions,
    rule_outcomes,
    rule_outcomes_iid,
    rule_outcomes_mc,
    rule_parts,
    stop_counts,
)


def brute_force(rule: Rule, sizes: list[int], correct: list[bool]) -> tuple[float, float]:
    """(acc, expected samples) averaged over every one of the n! orders of the samples,
    ties split exactly, in rationals."""
    labels = [g for g, size in enumerate(sizes) for _ in range(size)]
    total_acc, total_used, count = Fraction(0), Fraction(0), 0
    for order in permutations(labels):
        acc, used = run_one(rule, order, correct)
        total_acc += acc
        total_used += used
        count += 1
    return float(total_acc / count), float(total_used / count)


def run_one(rule: Rule, order: tuple[int, ...], correct: list[bool]) -> tuple[Fraction, int]:
    """The rule along one order, the plain way: (correct share of the majority, samples)."""
    counts: dict[int, int] = {}
    for t, label in enumerate(order[: rule.cap]):
        counts[label] = counts.get(label, 0) + 1
        drawn = t + 1
        if rule.kind == "until_verified":
            if correct[label] or drawn == rule.cap:
                return Fraction(int(correct[label])), drawn
            continue
        if rule.kind == "esc":
            window = order[drawn - rule.window : drawn]
            stop = drawn % rule.window == 0 and len(set(window)) == 1
        elif rule.kind == "first_agree":
            stop = max(counts.values()) >= rule.k
        else:
            stop = rule.stops(tuple(sorted(counts.values(), reverse=True)))
        if stop or drawn == rule.cap:
            best = max(counts.values())
            leaders = [g for g, c in counts.items() if c == best]
            return Fraction(sum(correct[g] for g in leaders), len(leaders)), drawn
    raise AssertionError("the cap stops every order")


RULES = [
    Rule("esc", cap=4, window=2),
    Rule("esc", cap=6, window=3),
    Rule("esc", cap=6, window=2),
    Rule("first_agree", cap=5, k=2),
    Rule("first_agree", cap=7, k=3),
    Rule("adaptive_consistency", cap=6, threshold=0.8),
    Rule("adaptive_consistency", cap=7, threshold=0.95),
    Rule("until_verified", cap=4),
]
# (sizes of the answer groups, which are correct): one or two correct groups, singletons,
# a unanimous instance and one with no correct answer
PROFILES = [
    ([3, 2, 2], [True, False, False]),
    ([1, 1, 1, 1, 1, 1, 1], [False, True, False, False, False, False, False]),
    ([7], [True]),
    ([4, 3], [False, True]),
    ([2, 2, 1, 1, 1], [True, True, False, False, False]),
    ([5, 1, 1], [False, False, False]),
    ([2, 2, 2], [False, True, False]),
]


def _split(sizes: list[int], correct: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    c = [s for s, ok in zip(sizes, correct, strict=True) if ok]
    w = [s for s, ok in zip(sizes, correct, strict=True) if not ok]
    return np.array([c or [0]], dtype=np.int64), np.array([w or [0]], dtype=np.int64)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.label)
def test_exact_method_matches_every_order(rule: Rule) -> None:
    for sizes, correct in PROFILES:
        if sum(sizes) < rule.cap:
            continue
        want_acc, want_used = brute_force(rule, sizes, correct)
        c, w = _split(sizes, correct)
        acc, used = rule_outcomes(rule, c, w, np.array([sum(sizes)]))
        assert acc[0] == pytest.approx(want_acc, abs=1e-12), (sizes, correct)
        assert used[0] == pytest.approx(want_used, abs=1e-12), (sizes, correct)


def test_profiles_are_vectorized_alike() -> None:
    """Many profiles at once, zero-padded to different widths, give each one's own answer."""
    rule = Rule("adaptive_consistency", cap=6, threshold=0.8)
    rows = [p for p in PROFILES if sum(p[0]) >= 6]
    splits = [_split(*p) for p in rows]
    width_c = max(c.shape[1] for c, _ in splits)
    width_w = max(w.shape[1] for _, w in splits)
    c = np.zeros((len(rows), width_c), np.int64)
    w = np.zeros((len(rows), width_w), np.int64)
    for i, (ci, wi) in enumerate(splits):
        c[i, : ci.shape[1]], w[i, : wi.shape[1]] = ci[0], wi[0]
    acc, used = rule_outcomes(rule, c, w, np.array([sum(p[0]) for p in rows]))
    for i, (ci, wi) in enumerate(splits):
        one_acc, one_used = rule_outcomes(rule, ci, wi, np.array([int(ci.sum() + wi.sum())]))
        assert acc[i] == pytest.approx(one_acc[0], abs=1e-12)
        assert used[i] == pytest.approx(one_used[0], abs=1e-12)


def test_iid_outcome_is_the_limit_of_many_samples() -> None:
    """Under i.i.d. draws (the simulation's truth) the exact program over probabilities agrees
    with a long Monte Carlo of the rule on a categorical distribution (within 4 SE), and the
    without-replacement outcome from a large stored sample approaches it."""
    p = np.array([0.5, 0.3, 0.2])
    for rule in (Rule("esc", cap=8, window=4), Rule("adaptive_consistency", cap=8, threshold=0.9)):
        acc, used = rule_outcomes_iid(rule, p[:1], p[None, 1:])
        sizes = (p * 2000).astype(np.int64)
        big_acc, big_used = rule_outcomes(
            rule, sizes[None, :1], sizes[None, 1:], np.array([sizes.sum()])
        )
        assert big_acc[0] == pytest.approx(acc[0], abs=2e-3)
        assert big_used[0] == pytest.approx(used[0], abs=1e-2)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.label)
def test_monte_carlo_within_three_standard_errors(rule: Rule) -> None:
    sizes, correct = [3, 2, 2], [True, False, False]
    c, w = _split(sizes, correct)
    exact_acc, exact_used = rule_outcomes(rule, c, w, np.array([7]))
    acc, used, acc_se, used_se = rule_outcomes_mc(rule, c, w, np.array([7]), orders=4000, seed=1)
    assert abs(acc[0] - exact_acc[0]) <= 3 * acc_se[0] + 1e-12
    assert abs(used[0] - exact_used[0]) <= 3 * used_se[0] + 1e-12
    again = rule_outcomes_mc(rule, c, w, np.array([7]), orders=4000, seed=1)
    assert again[0].tobytes() == acc.tobytes()  # seeded: bit for bit


def test_sequence_counts_add_up_to_every_order() -> None:
    """With one sample per answer (all labels distinct) the stop counts over all partitions,
    each times its number of labelled count vectors, cover every prefix the rule can end on."""
    assert len(partitions(16)) == 915
    rule = Rule("first_agree", cap=4, k=2)
    counts = stop_counts(rule)
    # stops: (2,) after 2 draws, (2,1) after 3, (2,1,1) and (1,1,1,1) after 4
    assert set(counts) == {(2,), (2, 1), (2, 1, 1), (1, 1, 1, 1)}
    assert counts[(2,)] == 1 and counts[(2, 1)] == 2 and counts[(1, 1, 1, 1)] == 24


def test_short_profiles_are_nan_and_caps_above_exact_refused() -> None:
    rule = Rule("first_agree", cap=5, k=2)
    acc, used = rule_outcomes(rule, np.array([[2]]), np.array([[1]]), np.array([3]))
    assert np.isnan(acc[0]) and np.isnan(used[0])
    with pytest.raises(ValueError, match="cap 24"):
        rule_outcomes(Rule("first_agree", cap=24, k=2), np.array([[30]]), np.array([[0]]), [30])


# --------------------------------------------------------------------------------------------
# Stopping rules in a study: declared, estimated, chosen among and compared at matched spend
# --------------------------------------------------------------------------------------------
RULE_FAMILIES = [
    {"rule": "esc", "window": [2, 4], "cap": 8},
    {"rule": "adaptive_consistency", "threshold": [0.8, 0.95], "cap": 8},
    {"rule": "first_agree", "k": [2, 3], "cap": 8},
]


def rule_study(**overrides):
    actions = {"samples": [1, 2, 4, 8], "rules": RULE_FAMILIES}
    return make_study(
        study={"name": "rules", "seed": 11},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 600}],
        actions=actions,
        budgets={"values": [2.0, 4.0]},
        learn={"iterations": 30, "depth": 4, "seeds": [0]},
        **overrides,
    )


def test_rules_are_declared_and_named_in_the_action_table():
    from toolkit.outcomes import action_table

    actions = action_table(rule_study()).to_pylist()
    adaptive = [a for a in actions if a["menu"] == "adaptive"]
    assert [a["name"] for a in adaptive] == [
        "qwen2.5-7b@esc(w=2,b<=8)",
        "qwen2.5-7b@esc(w=4,b<=8)",
        "qwen2.5-7b@ac(p>=0.8,b<=8)",
        "qwen2.5-7b@ac(p>=0.95,b<=8)",
        "qwen2.5-7b@agree(k=2,b<=8)",
        "qwen2.5-7b@agree(k=3,b<=8)",
    ]
    assert {a["b"] for a in adaptive} == {8} and all(a["rule"] for a in adaptive)
    assert all(a["rule"] is None for a in actions if a["menu"] == "static")


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ({"rule": "esc", "window": [3], "cap": 8}, "window: w = 3 does not divide cap = 8"),
        ({"rule": "esc", "cap": 8}, "window: rule 'esc' needs at least one window"),
        ({"rule": "first_agree", "k": [2], "threshold": [0.9], "cap": 8}, "takes no threshold"),
        ({"rule": "first_agree", "k": [9], "cap": 8}, "k = 9 exceeds cap = 8"),
        ({"rule": "adaptive_consistency", "threshold": [0.4], "cap": 8}, "threshold"),
        ({"rule": "until_verified", "cap": 8}, "'until_verified' needs a verifier"),
        ({"rule": "first_agree", "k": [2], "cap": 64}, "rules\\[0\\].cap: 64 exceeds"),
        ({"rule": "first_agree", "k": [2], "cap": 8, "models": ["gpt"]}, "'gpt' is not a"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_field(family, message):
    from toolkit.errors import StudyError

    with pytest.raises(StudyError, match=message):
        make_study(actions={"samples": [1, 2, 4, 8], "rules": [family]})


@pytest.mark.slow
def test_a_study_with_rules_chooses_among_static_and_adaptive_actions(tmp_path):
    import duckdb

    from toolkit.pipeline import run_study

    result = run_study(rule_study(), tmp_path)
    with duckdb.connect(str(result.database), read_only=True) as con:
        bad = con.execute(
            "select count(*) from outcomes o join actions a using (run_id, action_id) "
            "where a.menu = 'adaptive' and not (o.samples between 1 and a.b "
            "and o.cost = o.samples and o.acc between 0 and 1 and o.acc_true is not null "
            "and o.acc_se is null)"
        ).fetchone()[0]
        assert bad == 0  # expected samples within the cap, cost in samples, exact: no SE
        matched = dict(
            con.execute(
                "select policy || '@' || budget, value from evaluations "
                "where metric = 'matched_accuracy' and (seed is null or seed = 0)"
            ).fetchall()
        )
        for budget in (2.0, 4.0):
            # a superset menu solved on the same outcomes can only do better at the same spend
            assert matched[f"oracle_adaptive@{budget}"] >= matched[f"oracle@{budget}"] - 1e-12
            assert f"learned_adaptive@{budget}" in matched
        assert {"rule_esc@4.0", "rule_ac@4.0", "rule_agree@4.0"} <= set(matched)
        # each family's baseline spends only on its own rule
        foreign = con.execute(
            "select count(*) from policy_allocations p join actions a using (run_id, action_id) "
            "where p.policy like 'rule_%' and p.weight > 0 "
            "and (a.rule is null or p.policy <> 'rule_' || split_part(a.rule, '(', 1))"
        ).fetchone()[0]
        assert foreign == 0
        savings = con.execute(
            "select count(*) from (" + _savings_sql() + ") where tolerance = 0"
        ).fetchone()[0]
        assert savings == 3  # one row per family
        stored = con.execute(
            "select menu, classes from policy_models order by fold, menu, budget, seed"
        ).fetchall()
    # a classifier read back predicts the very actions it was trained on (the adaptive menu's
    # among the static and adaptive actions)
    import ibis

    from toolkit.learn import read_policies

    backend = ibis.duckdb.connect(str(result.database), read_only=True)
    try:
        policies = read_policies(backend, result.run_id)
    finally:
        backend.disconnect()
    assert {menu for menu, _ in stored} == {"static", "adaptive"}
    for policy, (menu, classes) in zip(policies, stored, strict=True):
        assert policy.menu == menu
        assert policy.action_ids[policy.classes].tolist() == list(classes)
    report = result.report.read_text()
    assert 'data-section="adaptive"' in report and "rule_esc" in report


def _savings_sql() -> str:
    from toolkit.resources import sql_text

    return sql_text("analyses/adaptive_savings.sql").strip().rstrip(";")


def brute_force_unsure(rule: Rule, sizes: list[int], correct: list[bool]) -> tuple[float, float]:
    """(P(the cap reached without the criterion), P(that and the majority correct)), every
    order enumerated."""
    labels = [g for g, size in enumerate(sizes) for _ in range(size)]
    unsure, right, count = Fraction(0), Fraction(0), 0
    for order in permutations(labels):
        count += 1
        acc, used = run_one(rule, order, correct)
        prefix = order[:used]
        counts = [prefix.count(g) for g in set(prefix)]
        if rule.kind == "esc":
            criterion = len(set(prefix[-rule.window :])) == 1
        elif rule.kind == "until_verified":
            criterion = bool(correct[prefix[-1]])
        else:
            criterion = rule.stops(tuple(sorted(counts, reverse=True)))
        if not criterion:
            unsure += 1
            right += acc
    return float(unsure / count), float(right / count)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.label)
def test_the_unsure_share_matches_every_order(rule: Rule) -> None:
    """What a cascade escalates on: the rule ending at its cap without its criterion."""
    for sizes, correct in PROFILES[:5]:
        if sum(sizes) < rule.cap:
            continue
        want_unsure, want_right = brute_force_unsure(rule, sizes, correct)
        c, w = _split(sizes, correct)
        parts = rule_parts(rule, c, w, np.array([sum(sizes)]))
        assert parts[2, 0] == pytest.approx(want_unsure, abs=1e-12), (sizes, correct)
        assert parts[3, 0] == pytest.approx(want_right, abs=1e-12), (sizes, correct)


CASCADE_PROFILES = [
    (([2, 1, 1], [True, False, False]), ([3, 1], [False, True])),
    (([1, 1, 1, 1], [False, False, True, False]), ([4], [True])),
    (([2, 2], [False, False]), ([2, 1, 1], [False, True, False])),
]


@pytest.mark.parametrize(
    "rule",
    [
        Rule("first_agree", cap=3, k=2),
        Rule("esc", cap=4, window=2),
        Rule("adaptive_consistency", cap=4, threshold=0.8),
        Rule("until_verified", cap=2),
    ],
    ids=lambda r: r.label,
)
def test_a_cascade_matches_every_pair_of_orders(rule: Rule) -> None:
    """Model A runs the rule; where it ends unsure, model B runs it on its own samples and
    answers: every order of A's samples times every order of B's, enumerated."""
    from toolkit.adaptive import cascade_outcome

    for (sizes_a, correct_a), (sizes_b, correct_b) in CASCADE_PROFILES:
        labels_a = [g for g, n in enumerate(sizes_a) for _ in range(n)]
        labels_b = [g for g, n in enumerate(sizes_b) for _ in range(n)]
        total_acc, total_used, count = Fraction(0), Fraction(0), 0
        for order_a in permutations(labels_a):
            acc_a, used_a = run_one(rule, order_a, correct_a)
            unsure = not _criterion(rule, order_a[:used_a], correct_a)
            for order_b in permutations(labels_b):
                acc_b, used_b = run_one(rule, order_b, correct_b)
                total_acc += acc_b if unsure else acc_a
                total_used += used_a + (used_b if unsure else 0)
                count += 1
        parts = []
        for sizes, correct in ((sizes_a, correct_a), (sizes_b, correct_b)):
            c, w = _split(sizes, correct)
            parts.append(rule_parts(rule, c, w, np.array([sum(sizes)])))
        acc, samples, reached = cascade_outcome(parts)
        assert acc[0] == pytest.approx(float(total_acc / count), abs=1e-12)
        assert samples[0] == pytest.approx(float(total_used / count), abs=1e-12)
        assert reached[0][0] == 1.0


def _criterion(rule: Rule, prefix: tuple[int, ...], correct: list[bool]) -> bool:
    """Whether the rule stopped on its criterion (not only at its cap)."""
    if rule.kind == "esc":
        return len(prefix) % rule.window == 0 and len(set(prefix[-rule.window :])) == 1
    if rule.kind == "until_verified":
        return bool(correct[prefix[-1]])
    counts = [prefix.count(g) for g in set(prefix)]
    return rule.stops(tuple(sorted(counts, reverse=True)))


def test_a_simulated_cascade_pays_each_model_it_reaches(tmp_path):
    """GPT-4o-mini asked first with "two agree" (cap 4); Qwen2.5-7B's vote when it ends unsure:
    every instance pays the first model's samples, the second's only in part; the truth of the
    cascade is estimated too."""
    import duckdb

    from toolkit.pipeline import run_study

    study = make_study(
        study={"name": "cascade", "seed": 3},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 300}],
        models=[
            {"name": "gpt-4o-mini", "preset": "gpt-4o-mini"},
            {"name": "qwen2.5-7b", "preset": "qwen2.5-7b"},
        ],
        actions={
            "samples": [1, 2, 4],
            "rules": [{"rule": "first_agree", "k": [2], "cap": 4}],
            "cascades": [
                {"models": ["gpt-4o-mini", "qwen2.5-7b"], "rule": "first_agree", "k": [2], "cap": 4}
            ],
        },
        budgets={"values": [2.0, 3.0]},
    )
    result = run_study(study, tmp_path, stages=("simulate", "outcomes"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        rows = con.execute(
            "select a.name, o.instance_id, o.cost, o.samples, o.acc, o.acc_true "
            "from outcomes o join actions a using (run_id, action_id) where a.menu = 'adaptive'"
        ).fetchall()
    by = {}
    for name, instance, cost, samples, acc, acc_true in rows:
        by.setdefault(name, {})[instance] = (cost, samples, acc, acc_true)
    cascade = by["gpt-4o-mini>qwen2.5-7b@agree(k=2,b<=4)"]
    first, second = by["gpt-4o-mini@agree(k=2,b<=4)"], by["qwen2.5-7b@agree(k=2,b<=4)"]
    assert len(cascade) == 300
    for instance, (cost, samples, acc, acc_true) in cascade.items():
        assert first[instance][0] - 1e-9 <= cost <= first[instance][0] + second[instance][0] + 1e-9
        assert cost == pytest.approx(samples)  # cost in samples: what both models drew
        assert 0.0 <= acc <= 1.0 and acc_true is not None
    escalated = [c[0] > first[i][0] + 1e-9 for i, c in cascade.items()]
    assert 0 < sum(escalated) < 300  # some instances end sure on the first model, some do not


def brute_force_checked(cap: int, samples: list[tuple[bool, bool]]) -> list[float]:
    """until_verified with a logged check, every order of the (passes, right) samples: stop
    at the first that passes (its answer stands), else at the cap with the first sample's
    answer. (acc, samples, P(unsure), P(unsure and right)) in rationals."""
    totals, count = [Fraction(0)] * 4, 0
    for order in permutations(range(len(samples))):
        drawn = order[:cap]
        stop = next((t for t, s in enumerate(drawn) if samples[s][0]), None)
        unsure = stop is None
        right = samples[drawn[0] if unsure else drawn[stop]][1]
        used = cap if unsure else stop + 1
        for i, value in enumerate((right, used, unsure, unsure and right)):
            totals[i] += int(value)
        count += 1
    return [float(t / count) for t in totals]


CHECKED = [
    [(True, True), (True, False), (False, True), (False, False), (False, False)],
    [(True, False), (False, True), (False, True), (False, False)],
    [(True, True), (True, True), (True, False)],  # every sample passes
    [(False, True), (False, False), (False, False)],  # none passes
    [(True, True), (False, False), (False, False), (False, False), (False, True), (True, False)],
]


@pytest.mark.parametrize("samples", CHECKED, ids=range(len(CHECKED)))
def test_a_logged_check_matches_every_order(samples) -> None:
    from toolkit.rules import until_checked

    n, passed = len(samples), sum(p for p, _ in samples)
    passed_right = sum(p and r for p, r in samples)
    failed_right = sum(r and not p for p, r in samples)
    for cap in range(1, n + 1):
        parts = until_checked(
            cap, *(np.array([x], float) for x in (n, passed, passed_right, failed_right))
        )
        expected = brute_force_checked(cap, samples)
        np.testing.assert_allclose(parts[:, 0], expected, rtol=0, atol=1e-12)
    assert np.isnan(until_checked(n + 1, *(np.array([x], float) for x in (n, passed, 0, 0)))).all()


def test_the_correct_flag_is_the_oracle_check() -> None:
    """With the correct flag as the check, until_checked is pass@cap (rule_parts)."""
    from toolkit.rules import until_checked

    n, n_correct = np.array([5.0, 6, 4, 3]), np.array([0.0, 2, 4, 1])
    for cap in (1, 2, 3):
        oracle = rule_parts(
            Rule("until_verified", cap), n_correct[:, None], (n - n_correct)[:, None], n
        )
        checked = until_checked(cap, n, n_correct, n_correct, np.zeros(4))
        np.testing.assert_array_equal(oracle, checked)
