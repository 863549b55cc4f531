"""The probe: a cheap look at an instance before allocating, charged to whoever uses it.

``[probe] samples = k`` (and ``model``, the first model by default): every instance's first k
stored samples of the probe model, in a seeded random order, are its probe. A policy that
sees the probe has already paid for it, and its samples are reused: choosing b after a probe
of k draws b - k more (b >= k), without replacement from the samples the probe did not see.
So the probe's actions (``actions.menu = "probe"``) are, per action of the probe model with
b >= k, the vote over the k probe samples and b - k more, its accuracy estimated exactly from
the instance's other stored samples (``probed_vote_accuracy``, ``probed_pass_at_b``): nothing
the probe saw is scored twice, and nothing it did not see leaks into its features. An action of
another model after the probe costs the probe plus that action and keeps its accuracy (a
cascade: the probe's answers are not that model's).

Features from the probe (``probes`` table, group ``probe``): the entropy (nats) of its answers,
the top answer's share (agreement) and its margin over the second, the share of samples that
gave an answer, their mean output tokens, and with a verifier (``aggregation = "pass"``)
whether a probe sample already succeeded.

Costs (``toolkit.outcomes.action_cost`` for the unprobed actions): the probe is one request of
k samples; going on to b > k is a second request (its prompt billed again, unless
``actions.prompt = "per_sample"``, where every sample pays one). Known before the decision: the
prompts and the probe's own outputs; the b - k further outputs are planned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import comb, gammaln

from toolkit.config import Study

PROBE_STREAM = 1_000_005
"""SeedSequence key of the order in which the probe takes its samples."""


# --------------------------------------------------------------------------------------------
# Exact accuracies after a probe
# --------------------------------------------------------------------------------------------
def probed_vote_accuracy(
    remaining: np.ndarray, seen: np.ndarray, correct: np.ndarray, more: int
) -> np.ndarray:
    """P(a majority vote over the probe's answers and ``more`` samples drawn without
    replacement from the remaining ones is correct), ties broken uniformly at random.

    Per profile i (rows) and answer group j (columns, zero-padded): ``remaining[i, j]`` samples
    of the group are left, ``seen[i, j]`` were in the probe, ``correct[i, j]`` whether the
    group's answer is right. The vote of group j ends at ``seen + y_j`` with y drawn
    hypergeometrically; the correct probability is summed over the correct groups t as the
    winner::

        sum_x C(r_t, x) int_0^1 [z^(m-x)] prod_{j != t} F_j(z, u) du / C(R, m),
        F_j = sum_{y < T_j} C(r_j, y) z^y + u C(r_j, T_j) z^T_j,  T_j = s_t + x - s_j

    (``u`` counts the groups tied with t: 1/(1 + ties) = int_0^1 u^ties du, exact by
    Gauss-Legendre quadrature). A group with no samples at all takes no part."""
    remaining = np.asarray(remaining, dtype=np.float64)
    seen = np.asarray(seen, dtype=np.int64)
    correct = np.asarray(correct, dtype=bool)
    n_profiles, n_groups = remaining.shape
    total = remaining.sum(axis=1)
    ys = np.arange(more + 1)
    coef = comb(remaining[:, :, None], ys[None, None, :])  # (P, G, m+1)
    present = (remaining + seen) > 0
    nodes, weights = np.polynomial.legendre.leggauss(max(1, (n_groups + 1) // 2))
    nodes, weights = (nodes + 1) / 2, weights / 2
    result = np.zeros(n_profiles)
    for t in range(n_groups):
        is_target = correct[:, t] & present[:, t]
        if not is_target.any():
            continue
        for x in range(more + 1):
            final = seen[:, t] + x
            weight = coef[:, t, x] * is_target * (final >= 1)
            if not weight.any():
                continue
            inner = np.zeros(n_profiles)
            for u, w_u in zip(nodes, weights, strict=True):
                inner += w_u * _others(coef, seen, present, t, final, more - x, u)
            result += weight * inner
    return result / comb(total, more)


def _others(coef, seen, present, t, final, degree, u) -> np.ndarray:
    """[z^degree] prod_{j != t} F_j(z, u): the ways the other groups stay at or below the
    target's final count ``final`` (ties weighted by u)."""
    n_profiles, n_groups, _ = coef.shape
    poly = np.zeros((n_profiles, degree + 1))
    poly[:, 0] = 1.0
    ys = np.arange(degree + 1)
    for j in range(n_groups):
        if j == t:
            continue
        threshold = final - seen[:, j]  # (P,)
        below = ys[None, :] < threshold[:, None]
        tied = ys[None, :] == threshold[:, None]
        factor = coef[:, j, : degree + 1] * (below + u * tied)
        # an absent group (no sample at all) never competes
        factor = np.where(present[:, j, None], factor, (ys == 0)[None, :].astype(float))
        product = np.zeros_like(poly)
        for y in range(degree + 1):
            product[:, y:] += factor[:, y : y + 1] * poly[:, : degree + 1 - y]
        poly = product
    return poly[:, degree]


def probed_pass_at_b(
    remaining: np.ndarray, remaining_correct: np.ndarray, seen_correct: np.ndarray, more: int
) -> np.ndarray:
    """P(any of the probe's samples or ``more`` further ones is correct): 1 when the probe
    succeeded, else the unbiased pass@more of the remaining samples."""
    remaining = np.asarray(remaining, dtype=np.float64)
    wrong = remaining - np.asarray(remaining_correct, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            gammaln(wrong + 1)
            - gammaln(wrong - more + 1)
            - gammaln(remaining + 1)
            + gammaln(remaining - more + 1)
        )
        found = 1.0 - np.exp(log_ratio)
    found = np.where(wrong < more, 1.0, found) if more > 0 else np.zeros(len(remaining))
    return np.where(np.asarray(seen_correct) > 0, 1.0, found)


# --------------------------------------------------------------------------------------------
# Which samples the probe sees, and what it tells
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeProfiles:
    """The probe model's samples of every instance, grouped by answer, split into what the
    probe saw and what remains (all arrays in instance order, groups zero-padded)."""

    instance_ids: np.ndarray
    remaining: np.ndarray
    seen: np.ndarray
    correct: np.ndarray
    probe_tokens: np.ndarray
    """(n,) mean output tokens of the probe's samples (NaN where unknown)."""
    rest_tokens: np.ndarray
    """(n,) mean output tokens of the remaining samples (NaN where unknown)."""
    answered: np.ndarray
    """(n,) share of the probe's samples that gave an answer."""
    probe_cost: np.ndarray
    """(n,) mean logged dollar cost of the probe's samples (NaN: not logged); the rest's."""
    rest_cost: np.ndarray


def probe_order(samples: pa.Table, seed: int) -> np.ndarray:
    """Each sample's position (0, 1, ...) in its instance's seeded probe order."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, PROBE_STREAM])))
    instance = samples.column("instance_id").to_numpy()
    order = np.lexsort((rng.random(len(instance)), instance))
    starts = np.flatnonzero(np.r_[True, instance[order][1:] != instance[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return position


def probe_profiles(samples: pa.Table, k: int, seed: int) -> ProbeProfiles:
    """Split one model's samples (instance_id, sample_idx, answer, correct, tokens) into each
    instance's probe (its first k in ``probe_order``) and the rest, grouped by answer (a sample
    without an answer is a group of its own)."""
    samples = samples.sort_by([("instance_id", "ascending"), ("sample_idx", "ascending")])
    instance = samples.column("instance_id").to_numpy()
    position = probe_order(samples, seed)
    in_probe = position < k
    answer = samples.column("answer").to_numpy(zero_copy_only=False)
    answer = np.where(
        pc.is_null(samples.column("answer")).to_numpy(zero_copy_only=False), np.nan, answer
    )
    correct = samples.column("correct").to_numpy(zero_copy_only=False).astype(bool)
    group = np.where(np.isnan(answer), -1.0 - np.arange(len(answer)), answer)
    tokens = samples.column("tokens").to_numpy(zero_copy_only=False).astype(float)
    ids, first = np.unique(instance, return_index=True)
    keys = np.rec.fromarrays([instance, group, correct])
    distinct, index = np.unique(keys, return_inverse=True)
    owner = np.searchsorted(ids, distinct["f0"])
    seen_count = np.bincount(index, weights=in_probe, minlength=len(distinct))
    rest_count = np.bincount(index, weights=~in_probe, minlength=len(distinct))
    slot = np.arange(len(distinct)) - np.searchsorted(owner, owner)
    width = int(slot.max()) + 1 if len(slot) else 1
    shape = (len(ids), width)
    remaining, seen, right = (
        np.zeros(shape),
        np.zeros(shape, dtype=np.int64),
        np.zeros(shape, dtype=bool),
    )
    remaining[owner, slot] = rest_count
    seen[owner, slot] = seen_count.astype(np.int64)
    right[owner, slot] = distinct["f2"]
    row = np.searchsorted(ids, instance)
    logged = (
        samples.column("cost").to_numpy(zero_copy_only=False).astype(float)
        if "cost" in samples.column_names
        else np.full(len(instance), np.nan)
    )
    with np.errstate(invalid="ignore"):
        probe_tokens = _mean_by(row, tokens, in_probe, len(ids))
        rest_tokens = _mean_by(row, tokens, ~in_probe, len(ids))
        probe_cost = _mean_by(row, logged, in_probe, len(ids))
        rest_cost = _mean_by(row, logged, ~in_probe, len(ids))
    answered = np.bincount(
        row, weights=in_probe & ~np.isnan(answer), minlength=len(ids)
    ) / np.maximum(np.bincount(row, weights=in_probe, minlength=len(ids)), 1)
    return ProbeProfiles(
        ids, remaining, seen, right, probe_tokens, rest_tokens, answered, probe_cost, rest_cost
    )


def _mean_by(row: np.ndarray, values: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    known = mask & ~np.isnan(values)
    total = np.bincount(row, weights=np.where(known, values, 0.0), minlength=n)
    count = np.bincount(row, weights=known, minlength=n)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def probe_features(profiles: ProbeProfiles, verifier: bool) -> pa.Table:
    """The ``probes`` table's rows: what the probe tells about each instance."""
    seen = profiles.seen.astype(np.float64)
    k = seen.sum(axis=1, keepdims=True)
    shares = np.divide(seen, k, out=np.zeros_like(seen), where=k > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(shares > 0, shares * np.log(shares), 0.0).sum(axis=1)
    ordered = -np.sort(-shares, axis=1)
    second = ordered[:, 1] if ordered.shape[1] > 1 else np.zeros(len(ordered))
    succeeded = (profiles.seen * profiles.correct).sum(axis=1) > 0
    return pa.table(
        {
            "instance_id": pa.array(profiles.instance_ids, pa.int64()),
            "probe_entropy": entropy,
            "probe_agreement": ordered[:, 0],
            "probe_margin": ordered[:, 0] - second,
            "probe_answered": profiles.answered,
            "probe_tokens": pa.array(profiles.probe_tokens, pa.float64(), from_pandas=True),
            "probe_correct": pa.array(
                succeeded.astype(float) if verifier else np.full(len(succeeded), np.nan),
                pa.float64(),
                from_pandas=True,
            ),
        }
    )


def probed_accuracy(profiles: ProbeProfiles, aggregation: str, b: int, k: int) -> np.ndarray:
    """Each instance's accuracy of b samples after its probe of k (b >= k): exact, once per
    distinct profile."""
    more = b - k
    if aggregation == "pass":
        remaining_correct = (profiles.remaining * profiles.correct).sum(axis=1)
        seen_correct = (profiles.seen * profiles.correct).sum(axis=1)
        return probed_pass_at_b(
            profiles.remaining.sum(axis=1), remaining_correct, seen_correct, more
        )
    # the order of groups within a profile does not matter: sort them, so equal profiles meet
    rank = profiles.remaining * 4e6 + profiles.seen * 2 + profiles.correct
    order = np.argsort(-rank, axis=1, kind="stable")
    remaining, seen, correct = (
        np.take_along_axis(values, order, axis=1)
        for values in (profiles.remaining, profiles.seen, profiles.correct)
    )
    key = np.concatenate([remaining, seen, correct.astype(np.float64)], axis=1)
    distinct, inverse = np.unique(key, axis=0, return_inverse=True)
    g = profiles.remaining.shape[1]
    values = probed_vote_accuracy(
        distinct[:, :g], distinct[:, g : 2 * g], distinct[:, 2 * g :] > 0, more
    )
    return np.clip(values[inverse.ravel()], 0.0, 1.0)


def probe_outcomes(
    study: Study, samples: pa.Table, prompts: pa.Table, static: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """The probe's outcome rows (instance_id, action_id, acc, cost, known_cost, acc_true) and
    the ``probes`` table's rows, from the probe model's samples and the static outcomes."""
    from toolkit.config import resolve_model
    from toolkit.outcomes import Prompts, Usage, action_cost, action_table

    k, probe_model = study.probe.samples, study.probe_model
    mine = samples.filter(pc.equal(samples.column("model"), probe_model))
    profiles = probe_profiles(mine, k, study.study.seed)
    ids = profiles.instance_ids
    prompt = Prompts(prompts).lookup(ids)
    model = resolve_model(next(spec for spec in study.models if spec.name == probe_model))
    first = Usage(profiles.probe_tokens, prompt, profiles.probe_cost)
    rest = Usage(profiles.rest_tokens, prompt, profiles.rest_cost)
    probe_cost, _ = action_cost(study.actions, k, first, model)  # all known once it is spent
    fixed = float(study.actions.fixed_cost)
    actions = action_table(study)
    static_of = _static_lookup(actions, static)
    parts = []
    for row in actions.filter(pc.equal(actions.column("menu"), "probe")).to_pylist():
        b = row["b"]
        if row["model"] == probe_model:
            acc = probed_accuracy(profiles, study.actions.aggregation, b, k)
            cost, known = probe_cost, probe_cost
            if b > k:
                more, more_known = action_cost(study.actions, b - k, rest, model)
                cost, known = probe_cost + more - fixed, probe_cost + more_known - fixed
            truth = np.full(len(ids), np.nan)
        else:
            acc, static_cost, static_known, truth = static_of(row["model"], b, ids)
            cost, known = probe_cost + static_cost, probe_cost + static_known
        samples = b if row["model"] == probe_model else k + b
        parts.append(_rows(ids, row["action_id"], acc, cost, known, truth, samples))
    verifier = study.actions.aggregation == "pass"
    return pa.concat_tables(parts), probe_features(profiles, verifier)


def static_action_ids(actions: pa.Table) -> dict[tuple[str, int], int]:
    """The id of each static action (table ``actions``'s rows of menu static) by (model, b)."""
    return {
        (model, b): action_id
        for model, b, action_id, menu in zip(
            actions.column("model").to_pylist(),
            actions.column("b").to_pylist(),
            actions.column("action_id").to_pylist(),
            actions.column("menu").to_pylist(),
            strict=True,
        )
        if menu == "static"
    }


def _static_lookup(actions: pa.Table, static: pa.Table):
    """(acc, cost, known cost, acc_true) of a static action on given instances."""
    ids = static.column("instance_id").to_numpy()
    action = static.column("action_id").to_numpy()
    columns = {
        name: static.column(name).to_numpy(zero_copy_only=False).astype(float)
        for name in ("acc", "cost", "known_cost", "acc_true")
    }
    static_id = static_action_ids(actions)

    def lookup(model: str, b: int, instance_ids: np.ndarray):
        rows = np.flatnonzero(action == static_id[(model, b)])
        where = rows[np.searchsorted(ids[rows], instance_ids)]
        return tuple(columns[name][where] for name in ("acc", "cost", "known_cost", "acc_true"))

    return lookup


def _rows(ids, action_id, acc, cost, known, truth, samples: int) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "instance_id": pa.array(ids, pa.int64()),
            "action_id": pa.array(np.full(n, action_id), pa.int32()),
            "acc": np.asarray(acc, dtype=np.float64),
            "cost": np.asarray(cost, dtype=np.float64),
            "known_cost": np.asarray(known, dtype=np.float64),
            "acc_true": pa.array(truth, pa.float64(), from_pandas=True),
            "samples": np.full(n, float(samples)),
        }
    )


__all__ = [
    "probe_outcomes",
    "PROBE_STREAM",
    "ProbeProfiles",
    "probe_features",
    "probe_order",
    "probe_profiles",
    "probed_accuracy",
    "probed_pass_at_b",
    "probed_vote_accuracy",
]
