"""Outcome estimation: acc(x, a) and cost(x, a) for every instance and action.

The samples table is reduced with Ibis to one answer profile per instance and model (how many
samples, how many were correct, and the sizes of the groups of equal answers). The accuracy of
an action depends on the instance only through that profile, so it is computed once per
distinct profile with exact combinatorics (numpy) and joined back.

Majority vote over b samples drawn without replacement from n stored samples (answer groups of
sizes w_1..w_G, the correct group of size c), ties broken uniformly at random::

    acc = 1/C(n, b) * sum_{x=1..b} C(c, x) * sum_{draws y of the other groups, sum y = b - x,
                                                  all y_j <= x} prod_j C(w_j, y_j) / (1 + t(y))

where t(y) is the number of other groups tied with the correct one (y_j = x). With
1/(1+t) = int_0^1 u^t du, the inner sum is int_0^1 [z^(b-x)] prod_j (sum_{y<x} C(w_j, y) z^y +
u C(w_j, x) z^x) du: a polynomial in u, integrated exactly by Gauss-Legendre quadrature.
The same formula with C(w, y) replaced by p^y / y! and 1/C(n, b) by b! gives the accuracy
under i.i.d. sampling from a known answer distribution (the simulation's true accuracy).

pass@b (any of b correct, an oracle verifier) uses the unbiased estimator
``1 - C(n - c, b) / C(n, b)`` (Chen et al., 2021), and ``1 - (1 - p)^b`` for the truth.

Best-of-b by a score (a reward model's, a verifier's) keeps the answer of the highest-scored of
b samples drawn without replacement, ties broken uniformly at random. It depends on the instance
only through its score levels (``score_levels``): with the levels sorted ascending, ``m_s``
samples at level s of which ``c_s`` are correct and ``L_s`` samples at or below it, the best of
the b lies at level s with probability ``(C(L_s, b) - C(L_s - m_s, b)) / C(n, b)``, and is then
a uniform draw among the level's samples (those of the subset at level s are a uniform subset
of the level), so::

    acc = sum_s (C(L_s, b) - C(L_s - m_s, b)) / C(n, b) * c_s / m_s
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import comb, gammaln

from toolkit.config import Study, resolve_model
from toolkit.scores import instance_matrices, vote_weights, weighted_vote_accuracy


# --------------------------------------------------------------------------------------------
# Ibis: samples -> one profile per (instance, model)
# --------------------------------------------------------------------------------------------
def answer_profiles(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model): n samples, n_correct, the mean output tokens, logged prompt
    tokens and logged dollar cost of a sample (null where none is known), and the group sizes
    of equal correct answers and of equal wrong answers, each sorted ascending (a sorted array,
    not an ordered aggregate: Spark has no ordered ``collect``).

    A sample with a null answer counts as its own group (nothing to agree with). With a logged
    check (``samples.verified``): ``n_checked`` samples carry a verdict, ``n_passed`` pass it,
    ``n_passed_correct`` of them right (``toolkit.rules.until_checked``). The logged
    ``prompt_tokens``, ``cost`` and ``verified`` columns are optional."""
    grouped = _answer_groups(samples)
    return grouped.group_by(["instance_id", "model"]).agg(
        n=grouped.size.sum(),
        # a sum over no rows is null: an instance without a correct sample has n_correct = 0
        n_correct=grouped.size.sum(where=grouped.correct).fill_null(0),
        mean_tokens=grouped.tokens.sum() / grouped.counted.sum().nullif(0),
        mean_prompt_tokens=grouped.prompt_tokens.sum() / grouped.prompts_counted.sum().nullif(0),
        mean_cost=grouped.cost.sum() / grouped.costs_counted.sum().nullif(0),
        correct_groups=grouped.size.collect(where=grouped.correct).sort(),
        wrong_groups=grouped.size.collect(where=~grouped.correct).sort(),
        n_checked=grouped.checked.sum(),
        n_passed=grouped.passed.sum().fill_null(0),
        n_passed_correct=grouped.passed.sum(where=grouped.correct).fill_null(0),
    )


def _answer_groups(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model, group, correct): the samples that gave one answer (``group``,
    its code; a sample with a null answer is a group of its own, ``-1 - sample_idx``), their
    count, token, prompt, cost and check sums (the optional logged columns null when absent)."""
    optional = {
        name: ibis.null(kind)
        for name, kind in (("prompt_tokens", "int64"), ("cost", "float64"), ("verified", "boolean"))
        if name not in samples.columns
    }
    return (
        samples.mutate(
            group=ibis.coalesce(
                samples.answer.cast("int64"), -1 - samples.sample_idx.cast("int64")
            ),
            **optional,
        )
        .group_by(["instance_id", "model", "group", "correct"])
        .agg(
            size=ibis._.count(),
            tokens=ibis._.tokens.sum(),
            counted=ibis._.tokens.count(),
            prompt_tokens=ibis._.prompt_tokens.sum(),
            prompts_counted=ibis._.prompt_tokens.count(),
            cost=ibis._.cost.sum(),
            costs_counted=ibis._.cost.count(),
            checked=ibis._.verified.count(),
            passed=ibis._.verified.cast("int64").sum(),
        )
    )


def answer_counts(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model, answer, correct) of the samples with an answer (the groups of
    ``answer_profiles``): ``m`` samples gave it (what an ``agreement`` cascade compares across
    models)."""
    grouped = _answer_groups(samples)
    return grouped.filter(grouped.group >= 0).select(
        "instance_id", "model", answer=grouped.group, correct=grouped.correct, m=grouped.size
    )


# --------------------------------------------------------------------------------------------
# Exact vote probabilities
# --------------------------------------------------------------------------------------------
def score_levels(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model, score): ``m`` samples at that score, ``c`` of them correct
    (what best-of-b depends on)."""
    return samples.group_by(["instance_id", "model", "score"]).agg(
        m=ibis._.count(), c=ibis._.correct.cast("int64").sum()
    )


def _ratio_of_combinations(x: np.ndarray, n: np.ndarray, b: int) -> np.ndarray:
    """C(x, b) / C(n, b) for 0 <= x <= n, as the product of (x - j) / (n - j) over j < b
    (0 where x < b; NaN where n < b)."""
    out = np.ones(len(x))
    for j in range(b):
        out *= np.maximum(x - j, 0) / (n - j)
    return np.where(n < b, np.nan, out)


def best_of_accuracy(levels: pa.Table, b: int) -> tuple[np.ndarray, np.ndarray]:
    """(instance_ids, acc) of best-of-b for one model's ``score_levels`` rows (see the module
    docstring): exact, in instance_id order; NaN where an instance has fewer than b
    samples."""
    levels = levels.sort_by([("instance_id", "ascending"), ("score", "ascending")])
    ids = levels.column("instance_id").to_numpy()
    m = levels.column("m").to_numpy().astype(np.float64)
    c = levels.column("c").to_numpy().astype(np.float64)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    total = np.add.reduceat(m, starts)
    sizes = np.diff(np.r_[starts, len(ids)])
    below = np.cumsum(m) - np.repeat(np.cumsum(m)[starts] - m[starts], sizes)  # L_s
    n = np.repeat(total, sizes)
    with np.errstate(invalid="ignore"):
        at_level = _ratio_of_combinations(below, n, b) - _ratio_of_combinations(below - m, n, b)
        acc = np.add.reduceat(at_level * c / m, starts)
    return ids[starts], acc


def pad_groups(groups: list[list[int]] | list[np.ndarray], dtype=np.float64) -> np.ndarray:
    width = max((len(g) for g in groups), default=0)
    out = np.zeros((len(groups), max(width, 1)), dtype=dtype)
    for row, g in enumerate(groups):
        out[row, : len(g)] = g
    return out


def _vote_sum(target_coef: np.ndarray, other_coef: np.ndarray, b: int) -> np.ndarray:
    """sum_x target_coef[:, x] * int_0^1 [z^(b-x)] prod_j (L_j(z) + u T_j(z)) du.

    target_coef: (P, b+1) weight of drawing x from the target group.
    other_coef: (P, G, b+1) weight of drawing y from other group j.
    """
    n_profiles, n_groups, _ = other_coef.shape
    active = np.flatnonzero(other_coef[:, :, 1:].any(axis=(0, 2)))
    total = np.zeros(n_profiles)
    for x in range(1, b + 1):
        weight_x = target_coef[:, x]
        if not weight_x.any():
            continue
        deg = b - x
        if deg == 0:
            total += weight_x * np.prod(other_coef[:, :, 0], axis=1)
            continue
        max_ties = min(len(active), deg // x)
        nodes, weights = np.polynomial.legendre.leggauss(max(1, (max_ties + 2) // 2))
        nodes, weights = (nodes + 1) / 2, weights / 2
        inner = np.zeros(n_profiles)
        for u, w_u in zip(nodes, weights, strict=True):
            poly = np.zeros((n_profiles, deg + 1))
            poly[:, 0] = 1.0
            for j in active:
                factor = np.zeros((n_profiles, deg + 1))
                factor[:, : min(x - 1, deg) + 1] = other_coef[:, j, : min(x - 1, deg) + 1]
                if x <= deg:
                    factor[:, x] = u * other_coef[:, j, x]
                product = np.zeros_like(poly)
                for y in range(min(x, deg) + 1):
                    product[:, y:] += factor[:, y : y + 1] * poly[:, : deg + 1 - y]
                poly = product
            # inactive groups (all zero beyond y=0) contribute their y=0 weight
            inner += w_u * poly[:, deg]
        inactive = np.setdiff1d(np.arange(n_groups), active)
        if inactive.size:
            inner *= np.prod(other_coef[:, inactive, 0], axis=1)
        total += weight_x * inner
    return total


def majority_vote_accuracy(
    correct_groups: list, wrong_groups: list, n: np.ndarray, b: int
) -> np.ndarray:
    """P(a majority vote over b of n samples drawn without replacement is correct), exactly.

    correct_groups[i] / wrong_groups[i]: sizes of the groups of equal correct / wrong answers of
    profile i; their sizes add up to n[i]. Ties are broken uniformly at random.
    """
    n = np.asarray(n, dtype=np.int64)
    correct = pad_groups(correct_groups)
    wrong = pad_groups(wrong_groups)
    ys = np.arange(b + 1)
    result = np.zeros(len(n))
    for k in range(correct.shape[1]):
        target = correct[:, k]
        others = np.concatenate([np.delete(correct, k, axis=1), wrong], axis=1)
        target_coef = comb(target[:, None], ys[None, :])
        other_coef = comb(others[:, :, None], ys[None, None, :])
        result += _vote_sum(target_coef, other_coef, b)
    return result / comb(n, b)


def majority_vote_accuracy_iid(p_correct: np.ndarray, p_wrong: np.ndarray, b: int) -> np.ndarray:
    """P(a majority vote over b i.i.d. samples is correct): one correct answer with probability
    p_correct[i], wrong answers with probabilities p_wrong[i, :]. Ties uniformly at random.

    Computed in row blocks that stay in cache (about twice as fast as one pass at 1e6 rows),
    spread over ``_THREADS`` threads when there are many (numpy releases the GIL on the
    blocks' array arithmetic); each block's arithmetic is the same either way, so the result
    is too, bit for bit."""
    starts = range(0, len(p_correct), _BLOCK)

    def block(i: int) -> np.ndarray:
        return _majority_vote_accuracy_iid_block(
            p_correct[i : i + _BLOCK], p_wrong[i : i + _BLOCK], b
        )

    if _THREADS > 1 and len(starts) >= 2 * _THREADS:
        with ThreadPoolExecutor(_THREADS) as pool:
            parts = list(pool.map(block, starts))
    else:
        parts = [block(i) for i in starts]
    return np.concatenate(parts or [np.zeros(0)])


_BLOCK = 8192
_THREADS = min(4, os.cpu_count() or 1)


def _majority_vote_accuracy_iid_block(
    p_correct: np.ndarray, p_wrong: np.ndarray, b: int
) -> np.ndarray:
    ys = np.arange(b + 1)
    log_fact = gammaln(ys + 1.0)
    target_coef = np.exp(ys[None, :] * np.log(np.maximum(p_correct[:, None], 1e-300)) - log_fact)
    target_coef[:, 0] = 1.0
    with np.errstate(divide="ignore"):
        other_coef = np.exp(ys[None, None, :] * np.log(p_wrong[:, :, None]) - log_fact)
    other_coef[:, :, 0] = 1.0
    return _vote_sum(target_coef, other_coef, b) * math.factorial(b)


def pass_at_b(n: np.ndarray, n_correct: np.ndarray, b: int) -> np.ndarray:
    """Unbiased pass@b: 1 - C(n - c, b) / C(n, b); 1 when fewer than b samples are wrong."""
    n = np.asarray(n, dtype=np.float64)
    wrong = n - np.asarray(n_correct, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            gammaln(wrong + 1) - gammaln(wrong - b + 1) - gammaln(n + 1) + gammaln(n - b + 1)
        )
        out = 1.0 - np.exp(log_ratio)
    return np.where(wrong < b, 1.0, out)


# --------------------------------------------------------------------------------------------
# The actions and the outcomes table
# --------------------------------------------------------------------------------------------
MENUS = ("static", "probe", "adaptive")
"""The action menus: ``static`` (b samples of a model, decided before any is drawn),
``probe`` (after the probe, ``toolkit.probe``) and ``adaptive`` (a stopping rule over a model's
samples, ``toolkit.rules``). A policy chooses within one menu; the policies of the adaptive
menu choose among the static and the adaptive actions (``toolkit.learn.action_menus``)."""


def action_table(study: Study) -> pa.Table:
    """Every model x b, cheapest first within a model (action ids in that order); with a probe
    (``[probe] samples = k``) then the probe's actions: b >= k samples of the probe model, the
    probe's k reused, and every other model's action after the probe; then each declared
    stopping rule of each of its models (``[[actions.rules]]``), b its cap, named
    ``model@esc(w=4,b<=16)``."""
    rows = [
        (f"{spec.name}@b={b}", spec.name, b, "static", 0, None)
        for spec in study.models
        for b in sorted(study.actions.samples)
    ]
    k, probe_model = study.probe.samples, study.probe_model
    if probe_model is not None:
        probe = f"{probe_model}@probe(k={k})"
        for spec in study.models:
            for b in sorted(study.actions.samples):
                if spec.name == probe_model and b >= k:
                    name = f"{probe}+{b - k}" if b > k else probe
                    rows.append((name, spec.name, b, "probe", k, None))
                elif spec.name != probe_model:
                    rows.append((f"{probe},then {spec.name}@b={b}", spec.name, b, "probe", k, None))
    for spec in study.models:
        for family in study.actions.rules:
            if family.models is None or spec.name in family.models:
                for rule in family.expand():
                    name = f"{spec.name}@{rule.label}"
                    rows.append((name, spec.name, rule.cap, "adaptive", 0, rule.label))
    for cascade in study.actions.cascades:
        for rule in cascade.expand():
            name, label = cascade_name(cascade.models, rule), f"cascade({rule.label})"
            rows.append((name, cascade.models[0], rule.cap, "adaptive", 0, label))
    return pa.table(
        {
            "action_id": pa.array(range(len(rows)), pa.int32()),
            "name": [row[0] for row in rows],
            "model": [row[1] for row in rows],
            "b": pa.array([row[2] for row in rows], pa.int32()),
            "aggregation": [study.actions.aggregation] * len(rows),
            "menu": [row[3] for row in rows],
            "probe_samples": pa.array([row[4] for row in rows], pa.int32()),
            "rule": pa.array([row[5] for row in rows], pa.string()),
        }
    )


def cascade_name(models: list[str], rule) -> str:
    """A cascade's action name: its models joined by ``>``, then ``@`` and the rule."""
    return f"{'>'.join(models)}@{rule.label}"


def _list_matrix(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A list<int> column as its lengths (N,) and an (N, width) matrix of its values, each row
    padded with zeros (a null list is empty). Vectorized: no Python object per row."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    matrix = np.zeros((len(lengths), width), dtype=np.int64)
    if width:
        values = pc.list_flatten(array).to_numpy(zero_copy_only=False).astype(np.int64)
        parents = pc.list_parent_indices(array).to_numpy().astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        matrix[parents, np.arange(len(values)) - starts[parents]] = values
    return lengths, matrix


def profile_keys(profiles: pa.Table) -> tuple[np.ndarray, list, list, np.ndarray]:
    """Distinct (n, correct groups, wrong groups) and the index of each row's profile.

    Each row becomes one fixed-width binary key (n, the two list lengths, the zero-padded
    groups) that Arrow's hash kernel dictionary-encodes: distinct profiles in order of first
    appearance, and each row's index into them."""
    n = profiles.column("n").to_numpy().astype(np.int64)
    correct_len, correct = _list_matrix(profiles.column("correct_groups"))
    wrong_len, wrong = _list_matrix(profiles.column("wrong_groups"))
    keys = np.ascontiguousarray(
        np.column_stack([n, correct_len, wrong_len, correct, wrong]), dtype=np.int64
    )
    width = keys.shape[1] * keys.itemsize
    binary = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(keys), [None, pa.py_buffer(keys)]
    )
    encoded = pc.dictionary_encode(binary)
    inverse = encoded.indices.to_numpy().astype(np.int64)
    distinct = np.frombuffer(encoded.dictionary.buffers()[1], dtype=np.int64).reshape(
        -1, keys.shape[1]
    )[encoded.dictionary.offset : encoded.dictionary.offset + len(encoded.dictionary)]
    c_width = correct.shape[1]
    return (
        distinct[:, 0].copy(),
        [row[3 : 3 + row[1]].tolist() for row in distinct],
        [row[3 + c_width : 3 + c_width + row[2]].tolist() for row in distinct],
        inverse,
    )


def estimate_outcomes(
    study: Study,
    profiles: pa.Table,
    prompt_tokens: pa.Table,
    truth: pa.Table | None = None,
    levels: pa.Table | None = None,
    scored: pa.Table | None = None,
) -> pa.Table:
    """The outcomes table (instance_id, action_id, acc, cost, known_cost, acc_true, samples,
    acc_se) of the static actions.

    profiles: ``answer_profiles`` executed; prompt_tokens: (instance_id, prompt_tokens);
    truth: simulation's (instance_id, model, p_correct, p_wrong), or None for real data;
    levels: ``score_levels`` executed (needed for best-of-b); scored:
    ``toolkit.scores.scored_samples`` executed (needed for the score-weighted vote).
    """
    actions = action_table(study)
    aggregation = study.actions.aggregation
    prompts = Prompts(prompt_tokens)
    parts = []
    for spec in study.models:
        model = resolve_model(spec)
        mine = profiles.filter(pa.compute.equal(profiles.column("model"), spec.name))
        mine = mine.sort_by("instance_id")
        if mine.num_rows == 0:
            continue
        instance_ids = mine.column("instance_id").to_numpy()
        n = mine.column("n").to_numpy()
        n_correct = mine.column("n_correct").to_numpy()
        usage = Usage.of(mine, instance_ids, prompts)
        if aggregation == "majority":
            distinct_n, distinct_correct, distinct_wrong, inverse = profile_keys(mine)
        del mine
        known_truth = model_truth(truth, spec.name)
        if aggregation == "best_of":
            if levels is None:
                raise ValueError("best-of-b needs the samples' score levels")
            model_levels = levels.filter(pa.compute.equal(levels.column("model"), spec.name))
        if aggregation == "weighted":
            if scored is None:
                raise ValueError("a score-weighted vote needs the samples' scores")
            scored_ids, *matrices = instance_matrices(scored, spec.name)
            if not np.array_equal(scored_ids, instance_ids):
                raise ValueError(f"scored samples of model {spec.name!r} miss instances")
            matrices[1] = vote_weights(matrices[1], study.actions.score_weights, spec.name)
        part = _ModelOutcomes(instance_ids)
        static = pa.compute.equal(actions.column("menu"), "static")
        mine = pa.compute.and_(pa.compute.equal(actions.column("model"), spec.name), static)
        for row in actions.filter(mine).to_pylist():
            b = row["b"]
            if aggregation == "majority":
                acc = majority_vote_accuracy(distinct_correct, distinct_wrong, distinct_n, b)[
                    inverse
                ]
                acc_true = (
                    majority_vote_accuracy_iid(known_truth[0], known_truth[1], b)
                    if known_truth is not None
                    else None
                )
            elif aggregation == "best_of":  # real logs only: no truth
                level_ids, acc = best_of_accuracy(model_levels, b)
                if not np.array_equal(level_ids, instance_ids):
                    raise ValueError(f"score levels of model {spec.name!r} miss instances")
                acc_true = None
            elif aggregation == "weighted":  # real logs only: no truth
                seed = [study.study.seed, row["action_id"]]
                acc, acc_se = weighted_vote_accuracy(
                    *matrices, b, orders=study.estimation.orders, seed=seed
                )
                acc_true = None
            else:
                acc = pass_at_b(n, n_correct, b)
                acc_true = 1.0 - (1.0 - known_truth[0]) ** b if known_truth is not None else None
            part.action_ids.append(row["action_id"])
            part.acc.append(np.clip(acc, 0.0, 1.0))
            cost, known = action_cost(study.actions, b, usage, model)
            part.cost.append(cost)
            part.known_cost.append(known)
            part.acc_true.append(None if acc_true is None else np.clip(acc_true, 0.0, 1.0))
            part.samples.append(np.full(len(instance_ids), float(b)))
            part.acc_se.append(acc_se if aggregation == "weighted" else None)
        parts.append(part)
    return _outcome_table(parts)


@dataclass
class _ModelOutcomes:
    """One model's outcomes: its instances (ascending) and per action a column of each."""

    instance_ids: np.ndarray
    action_ids: list[int] = field(default_factory=list)
    acc: list[np.ndarray] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)
    known_cost: list[np.ndarray] = field(default_factory=list)
    acc_true: list[np.ndarray | None] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    acc_se: list[np.ndarray | None] = field(default_factory=list)


def _outcome_table(parts: list[_ModelOutcomes]) -> pa.Table:
    """The outcomes in (instance_id, action_id) order.

    When every model has the same instances (always, in simulation), that order is each
    instance's actions side by side, model after model (action ids run model-major): the
    columns are interleaved directly, with no sort and no second copy of the table. Otherwise
    the parts are concatenated and sorted."""
    truths = [t is None for part in parts for t in part.acc_true]
    estimated = any(se is not None for part in parts for se in part.acc_se)
    for part in parts:  # a Monte Carlo's standard error, NaN where exact (nulled below)
        part.acc_se = [
            np.full(len(part.instance_ids), np.nan) if se is None else se for se in part.acc_se
        ]
    if (
        parts
        and all(np.array_equal(parts[0].instance_ids, p.instance_ids) for p in parts[1:])
        and (all(truths) or not any(truths))
    ):
        ids = parts[0].instance_ids
        k = sum(len(p.action_ids) for p in parts)

        def interleave(name: str) -> np.ndarray:
            """One column of the table; each per-action array is dropped once copied, so
            the table and its parts are never all in memory at once."""
            out = np.empty((len(ids), k), dtype=np.float64)
            column = 0
            for part in parts:
                values = getattr(part, name)
                while values:
                    out[:, column] = values.pop(0)
                    column += 1
            return out.ravel()

        action_ids = np.array([a for p in parts for a in p.action_ids], dtype=np.int32)
        columns = {
            "instance_id": np.repeat(ids, k),
            "action_id": pa.array(np.tile(action_ids, len(ids)), pa.int32()),
            "acc": interleave("acc"),
            "cost": interleave("cost"),
            "known_cost": interleave("known_cost"),
            "acc_true": pa.nulls(len(ids) * k, pa.float64())
            if all(truths)
            else interleave("acc_true"),
            "samples": interleave("samples"),
            "acc_se": nullable_floats(interleave("acc_se") if estimated else None, len(ids) * k),
        }
        return pa.table(columns)
    tables = []
    for part in parts:
        rows = len(part.instance_ids)
        for action_id, acc, cost, known, acc_true, samples, acc_se in zip(
            part.action_ids,
            part.acc,
            part.cost,
            part.known_cost,
            part.acc_true,
            part.samples,
            part.acc_se,
            strict=True,
        ):
            tables.append(
                pa.table(
                    {
                        "instance_id": part.instance_ids,
                        "action_id": pa.array(np.full(rows, action_id), pa.int32()),
                        "acc": acc,
                        "cost": cost,
                        "known_cost": known,
                        "acc_true": pa.nulls(rows, pa.float64())
                        if acc_true is None
                        else pa.array(acc_true),
                        "samples": samples,
                        "acc_se": nullable_floats(acc_se, rows),
                    }
                )
            )
    order = [("instance_id", "ascending"), ("action_id", "ascending")]
    return pa.concat_tables(tables).sort_by(order)


def nullable_floats(values: np.ndarray | None, n: int) -> pa.Array:
    """A float column with NaN as null; all null when ``values`` is None."""
    if values is None:
        return pa.nulls(n, pa.float64())
    return pa.array(values, pa.float64(), from_pandas=True)


def model_truth(truth: pa.Table | None, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One model's (p_correct (n,), p_wrong (n, k)) in instance_id order from the simulation's
    truth, or None without one."""
    if truth is None:
        return None
    mine = truth.filter(pc.equal(truth.column("model"), model)).sort_by("instance_id")
    p_wrong = mine.column("p_wrong").combine_chunks()
    return (
        mine.column("p_correct").to_numpy(),
        p_wrong.flatten().to_numpy().reshape(mine.num_rows, -1),
    )


class Prompts:
    """Prompt tokens by instance id (missing: 0), looked up with a sorted array, not a dict."""

    def __init__(self, prompt_tokens: pa.Table) -> None:
        ids = prompt_tokens.column("instance_id").to_numpy()
        tokens = prompt_tokens.column("prompt_tokens").to_numpy(zero_copy_only=False)
        order = np.argsort(ids, kind="stable")
        self.ids, self.tokens = ids[order], tokens[order].astype(float)

    def lookup(self, instance_ids: np.ndarray) -> np.ndarray:
        if len(self.ids) == 0:
            return np.zeros(len(instance_ids))
        position = np.clip(np.searchsorted(self.ids, instance_ids), 0, len(self.ids) - 1)
        found = self.ids[position] == instance_ids
        return np.where(found, self.tokens[position], 0.0)


@dataclass(frozen=True)
class Usage:
    """What one sample of a model cost on each instance: mean output tokens, the prompt's tokens
    (logged, else the instance's prompt length) and the logged dollar cost (NaN where unknown)."""

    output_tokens: np.ndarray
    prompt_tokens: np.ndarray
    logged_cost: np.ndarray

    @classmethod
    def of(cls, profiles: pa.Table, instance_ids: np.ndarray, prompts: Prompts) -> Usage:
        def column(name: str) -> np.ndarray:
            if name not in profiles.column_names:  # profiles built without logged usage
                return np.full(profiles.num_rows, np.nan)
            return profiles.column(name).to_numpy(zero_copy_only=False).astype(float)

        logged_prompt = column("mean_prompt_tokens")
        prompt = np.where(np.isnan(logged_prompt), prompts.lookup(instance_ids), logged_prompt)
        return cls(column("mean_tokens"), prompt, column("mean_cost"))


def action_cost(actions, b: int | np.ndarray, usage: Usage, model) -> tuple[np.ndarray, np.ndarray]:
    """(cost, known cost) of b samples of a model on each instance, in ``actions.cost``; b may
    be an array (a stopping rule's expected samples per instance, ``toolkit.rules``).

    The known part is what is known before any sample is drawn, so a policy can plan with it:
    ``actions.fixed_cost``, and the prompt's tokens or dollars; the rest (the outputs) only the
    samples reveal. With b samples the prompt is billed once, or b times with
    ``actions.prompt = "per_sample"``::

        samples: cost = known = b + fixed
        tokens:  cost = P * prompt + b * output + fixed,        known = P * prompt + fixed
        usd:     cost = (P * prompt * in + b * output * out) / 1e6 + fixed,
                 known = P * prompt * in / 1e6 + fixed          (in, out: the model's prices)
                 or, with logged dollar costs, cost = b * logged + fixed, known = fixed

    with P = 1 (``once``) or b, and output and logged the means over the stored samples (the
    expectation over every b-subset)."""
    n = len(usage.output_tokens)
    fixed = np.full(n, float(actions.fixed_cost))
    if actions.cost == "samples":
        cost = fixed + np.asarray(b, dtype=np.float64)
        return cost, cost.copy()
    if actions.cost == "usd" and not np.isnan(usage.logged_cost).any():
        return b * usage.logged_cost + fixed, fixed
    if np.isnan(usage.output_tokens).any():
        raise ValueError(
            f"cost unit {actions.cost!r} needs output tokens for every sample of {model.name}"
        )
    billed = usage.prompt_tokens * (b if actions.prompt == "per_sample" else 1)
    if actions.cost == "tokens":
        known = billed + fixed
        return known + b * usage.output_tokens, known
    known = billed * model.price_input_per_mtok / 1e6 + fixed
    return known + b * usage.output_tokens * model.price_output_per_mtok / 1e6, known
