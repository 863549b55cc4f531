"""Stopping rules: adaptive actions that decide while sampling when to stop.

A rule draws one model's samples one at a time (in a random order of the instance's stored
samples, without replacement, like the static estimate), stops when its criterion holds or at
its cap ``b``, and answers by a majority vote over everything it drew (ties uniformly at
random). Its outcome on an instance is the expected accuracy and the expected number of samples
drawn, over the orders:

- ``esc``: Early-Stopping Self-Consistency (Li et al., 2024): windows of ``w`` samples, stop
  after a window whose ``w`` answers agree.
- ``adaptive_consistency``: Adaptive-Consistency's Beta criterion (Aggarwal et al., 2023):
  stop when ``P(p1 > p2) >= threshold`` with ``p1 - p2`` the leading two answers' shares under
  a ``Beta(v1 + 1, v2 + 1)`` posterior of their counts ``v1 >= v2``
  (``1 - I_0.5(v1 + 1, v2 + 1)``).
- ``first_agree``: stop as soon as ``k`` samples agree.
- ``until_verified``: with a verifier (``pass`` aggregation), stop at the first sample it
  accepts; accuracy is pass@b, the cost is the samples drawn until then.

Exact method (``rule_outcomes``). A rule that treats answers alike (relabelling the answers
does not change when it stops) stops at a count vector ``y`` (how many of each answer group it
drew) after a number ``N(y)`` of label sequences that depends only on the multiset of the
non-zero counts: the partition ``lambda(y)``. One particular sequence with counts ``y`` has
probability ``prod_j (w_j)_{y_j} / (n)_t`` (falling factorials of the group sizes ``w_j``,
``t = |y|``), so::

    P(stop with counts of partition lambda) = N(lambda) * A(lambda) / (n)_t,
    A(lambda) = sum over count vectors y with lambda(y) = lambda of prod_j (w_j)_{y_j}

``N`` is counted once per rule over the partitions of at most ``b`` (``stop_counts``); ``A`` is a
dynamic program over the answer groups whose state is the partition of the counts assigned so
far, vectorized over instances (``_assign``). The majority is correct with probability
``(1/m) * sum over correct groups j of (w_j)_M * A_{-j}(lambda minus one part M)`` where ``M`` is
the largest part, ``m`` its multiplicity and ``A_{-j}`` the program without group ``j``. The same
with ``(w_j)_y`` replaced by ``p_j^y`` and ``(n)_t`` by 1 gives the outcome under i.i.d. draws
from a known answer distribution (the simulation's truth).

The partitions of at most ``b`` number 915 at b = 16 and grow like ``exp(pi sqrt(2b/3))``;
above ``EXACT_MAX_CAP`` the seeded Monte Carlo over orders (``rule_outcomes_mc``) is used,
with its standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import betainc

RuleKind = Literal["esc", "adaptive_consistency", "first_agree", "until_verified"]
RULE_KINDS: tuple[str, ...] = ("esc", "adaptive_consistency", "first_agree", "until_verified")
EXACT_MAX_CAP = 20
"""The largest cap the exact method runs at (2,714 partitions of at most 20)."""


@dataclass(frozen=True)
class Rule:
    """One stopping rule with its parameter and cap ``b`` (the most samples it draws)."""

    kind: RuleKind
    cap: int
    window: int = 0
    """esc: the window ``w`` (``cap`` a multiple of it)."""
    threshold: float = 0.0
    """adaptive_consistency: the posterior probability that stops."""
    k: int = 0
    """first_agree: how many agreeing samples stop."""

    @property
    def label(self) -> str:
        """The action's name after ``model@``: ``esc(w=4,b<=16)``, ``ac(p>=0.95,b<=16)``,
        ``agree(k=3,b<=16)``, ``verify(b<=8)``."""
        if self.kind == "esc":
            return f"esc(w={self.window},b<={self.cap})"
        if self.kind == "adaptive_consistency":
            return f"ac(p>={self.threshold:g},b<={self.cap})"
        if self.kind == "first_agree":
            return f"agree(k={self.k},b<={self.cap})"
        return f"verify(b<={self.cap})"

    @property
    def least(self) -> int:
        """The fewest samples the rule can stop after."""
        if self.kind == "until_verified":
            return 1
        return min(sum(parts) for parts in stop_counts(self))

    def stops(self, parts: tuple[int, ...]) -> bool:
        """Whether a sequential rule stops at counts with these sorted (descending) parts."""
        if self.kind == "first_agree":
            return bool(parts) and parts[0] >= self.k
        if self.kind == "adaptive_consistency":
            v1 = parts[0] if parts else 0
            v2 = parts[1] if len(parts) > 1 else 0
            return bool(1.0 - betainc(v1 + 1, v2 + 1, 0.5) >= self.threshold)
        raise ValueError(f"{self.kind} is not a sequential count rule")


# --------------------------------------------------------------------------------------------
# Partitions and the rule's sequence counts N(lambda)
# --------------------------------------------------------------------------------------------
@cache
def partitions(cap: int) -> tuple[tuple[int, ...], ...]:
    """Every partition of 0..cap as a descending tuple, by total then reverse-lexicographic."""
    out: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], remaining: int, largest: int) -> None:
        if remaining == 0:
            out.append(prefix)
            return
        for part in range(min(remaining, largest), 0, -1):
            extend((*prefix, part), remaining - part, part)

    for total in range(cap + 1):
        extend((), total, total)
    return tuple(out)


def _with_part(parts: tuple[int, ...], u: int) -> tuple[int, ...]:
    return tuple(sorted((*parts, u), reverse=True))


def _lowered(parts: tuple[int, ...], u: int) -> tuple[int, ...]:
    """``parts`` with one part ``u`` replaced by ``u - 1`` (dropped at 0)."""
    out = list(parts)
    out.remove(u)
    if u > 1:
        out.append(u - 1)
    return tuple(sorted(out, reverse=True))


@cache
def stop_counts(rule: Rule) -> dict[tuple[int, ...], float]:
    """``N(lambda)``: per partition the rule stops at, the number of label sequences with one
    particular count vector of that partition after which it stops (see the module docstring).
    Exact integers (held as floats: they stay far below 2**53 at the exact caps)."""
    if rule.kind == "esc":
        return _esc_counts(rule.window, rule.cap)
    reach: dict[tuple[int, ...], int] = {(): 1}
    stopped: dict[tuple[int, ...], float] = {}
    for parts in partitions(rule.cap)[1:]:
        total = 0
        for u in set(parts):
            before = _lowered(parts, u)
            if before in reach and not (before and rule.stops(before)):
                total += parts.count(u) * reach[before]
        if total == 0:
            continue
        reach[parts] = total
        if rule.stops(parts) or sum(parts) == rule.cap:
            stopped[parts] = float(total)
    return stopped


def _windows(parts: tuple[int, ...], w: int):
    """Every window count vector ``d <= parts`` (position by position) with ``|d| = w``: the
    remaining parts, the number of groups the window touches and its orderings
    ``w! / prod d_i!``."""

    def extend(i: int, left: int, chosen: tuple[int, ...]):
        if left == 0:
            yield chosen + (0,) * (len(parts) - i)
            return
        if i == len(parts):
            return
        for d in range(min(parts[i], left), -1, -1):
            yield from extend(i + 1, left - d, (*chosen, d))

    for d in extend(0, w, ()):
        rest = tuple(sorted((p - x for p, x in zip(parts, d, strict=True) if p > x), reverse=True))
        orderings = math.factorial(w) // math.prod(math.factorial(x) for x in d)
        yield rest, sum(1 for x in d if x), orderings


def _esc_counts(w: int, cap: int) -> dict[tuple[int, ...], float]:
    """ESC: the count vector is looked at after each window; a sequence continues while no
    window was unanimous. ``cont(y) = sum over non-unanimous windows d of cont(y - d) *
    orderings(d)``; it stops at y after a unanimous last window (one ordering) or at the cap."""
    cont: dict[tuple[int, ...], int] = {(): 1}
    stopped: dict[tuple[int, ...], float] = {}
    for parts in partitions(cap)[1:]:
        t = sum(parts)
        if t % w:
            continue
        go = stop = 0
        for rest, touched, orderings in _windows(parts, w):
            if rest not in cont:
                continue
            if touched == 1:
                stop += cont[rest]
            else:
                go += cont[rest] * orderings
        if t == cap:
            stop += go
        elif go:
            cont[parts] = go
        if stop:
            stopped[parts] = float(stop)
    return stopped


# --------------------------------------------------------------------------------------------
# The dynamic program over answer groups
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lattice:
    """The partitions of at most ``cap``, with, per part size u, the index maps mu -> mu + {u}."""

    cap: int
    index: dict[tuple[int, ...], int]
    grow: tuple[tuple[np.ndarray, np.ndarray], ...]
    """grow[u] = (source positions, destination positions) for u = 1..cap (grow[0] unused)."""


@cache
def _lattice(cap: int) -> _Lattice:
    parts = partitions(cap)
    index = {p: i for i, p in enumerate(parts)}
    grow = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for u in range(1, cap + 1):
        pairs = [(i, index[_with_part(p, u)]) for i, p in enumerate(parts) if sum(p) + u <= cap]
        src, dst = zip(*pairs, strict=True) if pairs else ((), ())
        grow.append((np.array(src, np.int64), np.array(dst, np.int64)))
    return _Lattice(cap, index, tuple(grow))


def _assign(state: np.ndarray, weights: np.ndarray, lattice: _Lattice) -> np.ndarray:
    """One more answer group: each instance's group gets u = 0..cap of the counts, with
    weight ``weights[:, u]`` (u = 0: weight 1). ``state`` is (partitions, instances): a row
    gather and scatter per u, contiguous in memory."""
    out = state.copy()
    for u in range(1, lattice.cap + 1):
        w_u = weights[:, u]
        if not w_u.any():
            continue
        src, dst = lattice.grow[u]
        out[dst] += state[src] * w_u
    return out


def _falling(sizes: np.ndarray, cap: int) -> np.ndarray:
    """(..., cap + 1): (w)_u = w (w - 1) ... (w - u + 1) for u = 0..cap."""
    out = np.ones((*sizes.shape, cap + 1))
    for u in range(1, cap + 1):
        out[..., u] = out[..., u - 1] * np.maximum(sizes - (u - 1), 0)
    return out


def _powers(p: np.ndarray, cap: int) -> np.ndarray:
    return p[..., None] ** np.arange(cap + 1)


def _from_weights(
    rule: Rule, correct: np.ndarray, wrong: np.ndarray, norm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(acc, expected samples) from per-group weights ``correct`` (P, Gc, cap+1) and
    ``wrong`` (P, Gw, cap+1) and the normaliser ``norm`` (P, cap+1) of a sequence of t draws."""
    lattice = _lattice(rule.cap)
    counts = stop_counts(rule)
    stop_parts = list(counts)
    n_stop = np.array([counts[p] for p in stop_parts])
    totals = np.array([sum(p) for p in stop_parts])
    largest = np.array([p[0] for p in stop_parts])
    ties = np.array([p.count(p[0]) for p in stop_parts])
    rest = np.array([lattice.index[_lowered_all(p)] for p in stop_parts])
    where = np.array([lattice.index[p] for p in stop_parts])
    n_profiles = len(norm)
    base = np.zeros((len(lattice.index), n_profiles))
    base[0] = 1.0
    for j in range(wrong.shape[1]):
        base = _assign(base, wrong[:, j], lattice)
    with np.errstate(divide="ignore", invalid="ignore"):  # n < t: NaN, masked by the caller
        scale = n_stop[:, None] / norm[:, totals].T  # (L, P)
    scale = np.nan_to_num(scale, nan=0.0, posinf=0.0)
    acc = np.zeros(n_profiles)
    everything = base
    for j in range(correct.shape[1]):
        without_j = base
        for other in range(correct.shape[1]):
            if other != j:
                without_j = _assign(without_j, correct[:, other], lattice)
        acc += np.sum(scale / ties[:, None] * correct[:, j, largest].T * without_j[rest], axis=0)
        everything = _assign(everything, correct[:, j], lattice)
    samples = np.sum(scale * totals[:, None] * everything[where], axis=0)
    return acc, samples


def _lowered_all(parts: tuple[int, ...]) -> tuple[int, ...]:
    """``parts`` without one copy of its largest part."""
    return parts[1:]


# --------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------
def rule_outcomes(
    rule: Rule, correct_groups: np.ndarray, wrong_groups: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(acc, expected samples drawn) of a rule on each profile, exactly, over the random orders
    of its n stored samples. correct_groups / wrong_groups: (P, G) sizes of the groups of equal
    correct / wrong answers, zero-padded. NaN where a profile has fewer than ``cap`` samples.

    Profiles go through the program in blocks of ``_BLOCK`` (its state then stays in cache:
    about 5x faster than one pass at 9,000 profiles); each block's arithmetic is the same
    either way."""
    n = np.asarray(n, dtype=np.float64)
    correct_groups = np.asarray(correct_groups, dtype=np.float64)
    wrong_groups = np.asarray(wrong_groups, dtype=np.float64)
    if rule.kind == "until_verified":
        return _until_verified(rule.cap, correct_groups.sum(axis=1), n)
    if rule.cap > EXACT_MAX_CAP:
        raise ValueError(f"cap {rule.cap} is above the exact method's {EXACT_MAX_CAP}")
    cap = rule.cap
    acc, samples = np.zeros(len(n)), np.zeros(len(n))
    for i in range(0, len(n), _BLOCK):
        rows = slice(i, i + _BLOCK)
        acc[rows], samples[rows] = _from_weights(
            rule,
            _falling(correct_groups[rows], cap),
            _falling(wrong_groups[rows], cap),
            _falling(n[rows], cap),
        )
    short = n < cap
    return np.where(short, np.nan, acc), np.where(short, np.nan, samples)


_BLOCK = 256


def rule_outcomes_iid(
    rule: Rule, p_correct: np.ndarray, p_wrong: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(acc, expected samples) under i.i.d. draws: one correct answer with probability
    p_correct[i], wrong answers with probabilities p_wrong[i, :]."""
    if rule.kind == "until_verified":
        miss = 1.0 - p_correct
        samples = sum(miss**t for t in range(rule.cap))
        return 1.0 - miss**rule.cap, samples
    cap, acc, samples = rule.cap, np.zeros(len(p_correct)), np.zeros(len(p_correct))
    for i in range(0, len(p_correct), _BLOCK):
        rows = slice(i, i + _BLOCK)
        acc[rows], samples[rows] = _from_weights(
            rule,
            _powers(p_correct[rows, None], cap),
            _powers(p_wrong[rows], cap),
            np.ones((len(p_correct[rows]), cap + 1)),
        )
    return acc, samples


def _until_verified(cap: int, n_correct: np.ndarray, n: np.ndarray):
    """pass@cap, and E[min(T, cap)] = sum_{t < cap} P(the first t are all wrong) with
    P = C(n - c, t) / C(n, t)."""
    wrong = n - n_correct
    none_yet = np.ones(len(n))
    samples = np.zeros(len(n))
    for t in range(cap):
        samples += none_yet
        with np.errstate(invalid="ignore", divide="ignore"):
            none_yet = none_yet * np.maximum(wrong - t, 0) / (n - t)
    short = n < cap
    return np.where(short, np.nan, 1.0 - none_yet), np.where(short, np.nan, samples)


# --------------------------------------------------------------------------------------------
# Monte Carlo over orders
# --------------------------------------------------------------------------------------------
def _labels(correct_groups: np.ndarray, wrong_groups: np.ndarray, width: int) -> np.ndarray:
    """(P, width) each profile's samples as group labels (correct groups first, so a label
    below the profile's number of correct-group columns is a correct answer); -1 pads."""
    groups = np.concatenate([correct_groups, wrong_groups], axis=1).astype(np.int64)
    out = np.full((len(groups), width), -1, dtype=np.int64)
    for row, sizes in enumerate(groups):
        labels = np.repeat(np.arange(len(sizes)), sizes)
        out[row, : len(labels)] = labels
    return out


def rule_outcomes_mc(
    rule: Rule,
    correct_groups: np.ndarray,
    wrong_groups: np.ndarray,
    n: np.ndarray,
    *,
    orders: int,
    seed: int | list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(acc, expected samples, their standard errors): the rule run on ``orders`` seeded random
    orders of each profile's samples (the same seed gives the same numbers, bit for bit)."""
    n = np.asarray(n, dtype=np.int64)
    width = int(n.max()) if len(n) else 0
    labels = _labels(correct_groups, wrong_groups, max(width, 1))
    n_correct_cols = correct_groups.shape[1]
    n_groups = correct_groups.shape[1] + wrong_groups.shape[1]
    rng = np.random.default_rng(seed)
    keys = rng.random((len(n), orders, labels.shape[1]))
    keys[:, :, :] += (labels < 0)[:, None, :] * 2.0  # padding sorts last
    order = np.argsort(keys, axis=2, kind="stable")[:, :, : rule.cap]
    drawn = np.take_along_axis(np.broadcast_to(labels[:, None, :], keys.shape), order, axis=2)
    correct, used = simulate_orders(rule, drawn, n_correct_cols, n_groups, rng)
    short = n < rule.cap
    out = [correct.mean(axis=1), used.mean(axis=1), _se(correct), _se(used)]
    return tuple(np.where(short, np.nan, x) for x in out)


def _se(values: np.ndarray) -> np.ndarray:
    """The standard error of each row's mean (NaN with one order)."""
    if values.shape[1] < 2:
        return np.full(len(values), np.nan)
    return values.std(axis=1, ddof=1) / math.sqrt(values.shape[1])


def simulate_orders(
    rule: Rule, drawn: np.ndarray, n_correct_cols: int, n_groups: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Run the rule along given orders: drawn (P, R, cap) group labels in draw order (labels
    below ``n_correct_cols`` are correct). Returns (correct?, samples drawn), each (P, R)."""
    shape = drawn.shape[:2]
    counts = np.zeros((*shape, n_groups), dtype=np.int64)
    done = np.zeros(shape, dtype=bool)
    used = np.zeros(shape, dtype=np.int64)
    final = np.zeros((*shape, n_groups), dtype=np.int64)
    verified = np.zeros(shape, dtype=bool)
    for t in range(rule.cap):
        label = drawn[:, :, t]
        live = ~done
        np.add.at(counts, (*np.nonzero(live), label[live]), 1)
        used += live
        stop = np.zeros(shape, dtype=bool)
        if rule.kind == "until_verified":
            hit = live & (label < n_correct_cols)
            verified |= hit
            stop = hit
        elif rule.kind == "esc":
            if (t + 1) % rule.window == 0:
                window = drawn[:, :, t + 1 - rule.window : t + 1]
                stop = np.all(window == window[:, :, :1], axis=2)
        else:
            top = -np.sort(-counts, axis=2)
            v1 = top[:, :, 0]
            v2 = top[:, :, 1] if n_groups > 1 else np.zeros(shape, np.int64)
            if rule.kind == "first_agree":
                stop = v1 >= rule.k
            else:
                stop = 1.0 - betainc(v1 + 1, v2 + 1, 0.5) >= rule.threshold
        stop = live & (stop | (t == rule.cap - 1))
        final[stop] = counts[stop]
        done |= stop
    if rule.kind == "until_verified":
        return verified.astype(float), used.astype(float)
    jitter = rng.random(final.shape)
    winner = np.argmax(final + jitter * 0.5, axis=2)
    return (winner < n_correct_cols).astype(float), used.astype(float)


# --------------------------------------------------------------------------------------------
# The adaptive actions' outcome rows
# --------------------------------------------------------------------------------------------
_MC_CELLS = 20_000_000
"""Monte Carlo block size: profiles x orders x samples held at once."""
_MC_STREAM = 0x5275_6C65
"""SeedSequence key of the Monte Carlo orders (with the study's seed, the action and block)."""


def adaptive_outcomes(
    study, profiles: pa.Table, prompt_tokens: pa.Table, truth: pa.Table | None = None
) -> pa.Table:
    """The outcome rows of the adaptive actions (``actions.menu = 'adaptive'``): per instance
    the rule's expected accuracy and the cost of its expected samples (``action_cost`` with an
    expected b: the output tokens are the model's mean per sample, times the samples drawn),
    known_cost that of the fewest samples it can stop at, acc_true under the simulation's
    truth; exact, or Monte Carlo with standard errors above ``EXACT_MAX_CAP``.

    profiles: ``answer_profiles`` executed; truth: the simulation's (instance_id, model,
    p_correct, p_wrong) or None."""
    from toolkit.config import resolve_model
    from toolkit.outcomes import Prompts, Usage, _pad, _profile_keys, action_cost, action_table

    actions = action_table(study)
    adaptive = actions.filter(pc.equal(actions.column("menu"), "adaptive")).to_pylist()
    rules = {rule.label: rule for family in study.actions.rules for rule in family.expand()}
    prompts = Prompts(prompt_tokens)
    parts = []
    for spec in study.models:
        mine_actions = [row for row in adaptive if row["model"] == spec.name]
        mine = profiles.filter(pc.equal(profiles.column("model"), spec.name))
        if not mine_actions or mine.num_rows == 0:
            continue
        mine = mine.sort_by("instance_id")
        ids = mine.column("instance_id").to_numpy()
        usage = Usage.of(mine, ids, prompts)
        distinct_n, correct, wrong, inverse = _profile_keys(mine)
        correct, wrong = _pad(correct), _pad(wrong)
        model_truth = _model_truth(truth, spec.name)
        model = resolve_model(spec)
        for row in mine_actions:
            rule = rules[row["rule"]]
            acc, used, acc_se, used_se = _estimate(rule, correct, wrong, distinct_n, study, row)
            acc, used = acc[inverse], used[inverse]
            cost, _ = action_cost(study.actions, used, usage, model)
            _, known = action_cost(study.actions, rule.least, usage, model)
            cost_se = None
            if used_se is not None:
                above, _ = action_cost(study.actions, used + used_se[inverse], usage, model)
                cost_se, acc_se = above - cost, acc_se[inverse]
            acc_true = None
            if model_truth is not None:
                acc_true = np.clip(rule_outcomes_iid(rule, *model_truth)[0], 0.0, 1.0)
            parts.append(
                pa.table(
                    {
                        "instance_id": pa.array(ids, pa.int64()),
                        "action_id": pa.array(np.full(len(ids), row["action_id"]), pa.int32()),
                        "acc": np.clip(acc, 0.0, 1.0),
                        "cost": cost,
                        "known_cost": known,
                        "acc_true": _nullable(acc_true, len(ids)),
                        "samples": used,
                        "acc_se": _nullable(acc_se, len(ids)),
                        "cost_se": _nullable(cost_se, len(ids)),
                    }
                )
            )
    return pa.concat_tables(parts)


def _nullable(values: np.ndarray | None, n: int) -> pa.Array:
    return pa.nulls(n, pa.float64()) if values is None else pa.array(values, pa.float64())


def _model_truth(truth: pa.Table | None, model: str):
    if truth is None:
        return None
    mine = truth.filter(pc.equal(truth.column("model"), model)).sort_by("instance_id")
    p_wrong = mine.column("p_wrong").combine_chunks()
    return (
        mine.column("p_correct").to_numpy(),
        p_wrong.flatten().to_numpy().reshape(mine.num_rows, -1),
    )


def _estimate(rule: Rule, correct, wrong, n, study, row):
    """(acc, samples, acc_se, samples_se) per distinct profile: exact (standard errors None),
    or the seeded Monte Carlo above the exact caps, in blocks."""
    if rule.kind == "until_verified" or rule.cap <= EXACT_MAX_CAP:
        acc, used = rule_outcomes(rule, correct, wrong, n)
        return acc, used, None, None
    orders = study.estimation.orders
    block = max(1, _MC_CELLS // (orders * max(int(n.max()), 1)))
    out: list[list[np.ndarray]] = [[], [], [], []]
    for i in range(0, len(n), block):
        rows = slice(i, i + block)
        seed = [study.study.seed, _MC_STREAM, row["action_id"], i]
        values = rule_outcomes_mc(
            rule, correct[rows], wrong[rows], n[rows], orders=orders, seed=seed
        )
        for column, value in zip(out, values, strict=True):
            column.append(value)
    return tuple(np.concatenate(column) for column in out)


__all__ = [
    "adaptive_outcomes",
    "EXACT_MAX_CAP",
    "RULE_KINDS",
    "Rule",
    "partitions",
    "rule_outcomes",
    "rule_outcomes_iid",
    "rule_outcomes_mc",
    "simulate_orders",
    "stop_counts",
]
