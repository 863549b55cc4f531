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
- ``until_verified``: stop at the first sample a check accepts: the correct flag (an oracle
  verifier, ``pass`` aggregation: accuracy is pass@b) or a logged check (``columns.check``: a
  deployable test, say a format or unit-test check, whose verdict can be wrong;
  ``until_checked``); the cost is the samples drawn until then.

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
from scipy.special import betainc

RuleKind = Literal["esc", "adaptive_consistency", "first_agree", "until_verified", "agreement"]
"""``agreement`` is a cascade's own rule (one answer per model, ``toolkit.adaptive``)."""
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
        if self.kind == "agreement":
            return "agreement"
        return f"verify(b<={self.cap})"

    @property
    def least(self) -> int:
        """The fewest samples the rule can stop after."""
        if self.kind in ("until_verified", "agreement"):
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


def stop_counts(rule: Rule) -> dict[tuple[int, ...], float]:
    """``N(lambda)``: per partition the rule stops at, the number of label sequences with one
    particular count vector of that partition after which it stops (see the module docstring).
    Integers, held as floats (exact below 2**53; above, to float precision)."""
    return _counts(rule)[0]


def unsure_counts(rule: Rule) -> dict[tuple[int, ...], float]:
    """The part of ``stop_counts`` that reached the cap without the rule's criterion holding
    (no agreement within the cap): where a cascade escalates to its next model."""
    return _counts(rule)[1]


@cache
def _counts(rule: Rule) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float]]:
    if rule.kind == "esc":
        return _esc_counts(rule.window, rule.cap)
    reach: dict[tuple[int, ...], int] = {(): 1}
    stopped: dict[tuple[int, ...], float] = {}
    unsure: dict[tuple[int, ...], float] = {}
    for parts in partitions(rule.cap)[1:]:
        total = 0
        for u in set(parts):
            before = _lowered(parts, u)
            if before in reach and not (before and rule.stops(before)):
                total += parts.count(u) * reach[before]
        if total == 0:
            continue
        reach[parts] = total
        if rule.stops(parts):
            stopped[parts] = float(total)
        elif sum(parts) == rule.cap:
            stopped[parts] = unsure[parts] = float(total)
    return stopped, unsure


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


def _esc_counts(
    w: int, cap: int
) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float]]:
    """ESC: the count vector is looked at after each window; a sequence continues while no
    window was unanimous. ``cont(y) = sum over non-unanimous windows d of cont(y - d) *
    orderings(d)``; it stops at y after a unanimous last window (one ordering) or at the cap."""
    cont: dict[tuple[int, ...], int] = {(): 1}
    stopped: dict[tuple[int, ...], float] = {}
    unsure: dict[tuple[int, ...], float] = {}
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
            if go:
                unsure[parts] = float(go)
        elif go:
            cont[parts] = go
        if stop:
            stopped[parts] = float(stop)
    return stopped, unsure


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
) -> np.ndarray:
    """(4, P): acc, expected samples, P(unsure: the cap reached without the criterion) and
    P(unsure and correct), from per-group weights ``correct`` (P, Gc, cap+1) and ``wrong``
    (P, Gw, cap+1) and the normaliser ``norm`` (P, cap+1) of a sequence of t draws."""
    lattice = _lattice(rule.cap)
    counts, unsure = stop_counts(rule), unsure_counts(rule)
    stop_parts = list(counts)
    n_stop = np.array([counts[p] for p in stop_parts])
    n_unsure = np.array([unsure.get(p, 0.0) for p in stop_parts])
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
        per_sequence = np.nan_to_num(1.0 / norm[:, totals].T, nan=0.0, posinf=0.0)  # (L, P)
    scale, scale_unsure = n_stop[:, None] * per_sequence, n_unsure[:, None] * per_sequence
    acc, acc_unsure = np.zeros(n_profiles), np.zeros(n_profiles)
    everything = base
    for j in range(correct.shape[1]):
        without_j = base
        for other in range(correct.shape[1]):
            if other != j:
                without_j = _assign(without_j, correct[:, other], lattice)
        majority = correct[:, j, largest].T * without_j[rest] / ties[:, None]
        acc += np.sum(scale * majority, axis=0)
        acc_unsure += np.sum(scale_unsure * majority, axis=0)
        everything = _assign(everything, correct[:, j], lattice)
    at = everything[where]
    samples = np.sum(scale * totals[:, None] * at, axis=0)
    return np.stack([acc, samples, np.sum(scale_unsure * at, axis=0), acc_unsure])


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
    correct / wrong answers, zero-padded. NaN where a profile has fewer than ``cap`` samples."""
    parts = rule_parts(rule, correct_groups, wrong_groups, n)
    return parts[0], parts[1]


def rule_parts(
    rule: Rule, correct_groups: np.ndarray, wrong_groups: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """(4, P): per profile the rule's accuracy, expected samples, P(unsure: it reached its cap
    without its criterion) and P(unsure and the majority correct); see ``rule_outcomes``.

    Profiles go through the program in blocks of ``_BLOCK`` (its state then stays in cache:
    about 5x faster than one pass at 9,000 profiles); each block's arithmetic is the same
    either way."""
    n = np.asarray(n, dtype=np.float64)
    correct_groups = np.asarray(correct_groups, dtype=np.float64)
    wrong_groups = np.asarray(wrong_groups, dtype=np.float64)
    if rule.kind == "until_verified":
        out = _until_verified(rule.cap, correct_groups.sum(axis=1), n)
    else:
        if rule.cap > EXACT_MAX_CAP:
            raise ValueError(f"cap {rule.cap} is above the exact method's {EXACT_MAX_CAP}")
        cap = rule.cap
        out = np.zeros((4, len(n)))
        for i in range(0, len(n), _BLOCK):
            rows = slice(i, i + _BLOCK)
            out[:, rows] = _from_weights(
                rule,
                _falling(correct_groups[rows], cap),
                _falling(wrong_groups[rows], cap),
                _falling(n[rows], cap),
            )
    return np.where(n < rule.cap, np.nan, out)


_BLOCK = 256


def rule_outcomes_iid(
    rule: Rule, p_correct: np.ndarray, p_wrong: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(acc, expected samples) under i.i.d. draws: one correct answer with probability
    p_correct[i], wrong answers with probabilities p_wrong[i, :]."""
    parts = rule_parts_iid(rule, p_correct, p_wrong)
    return parts[0], parts[1]


def rule_parts_iid(rule: Rule, p_correct: np.ndarray, p_wrong: np.ndarray) -> np.ndarray:
    """``rule_parts`` under i.i.d. draws (the simulation's truth)."""
    if rule.kind == "until_verified":
        miss = 1.0 - p_correct
        samples = sum(miss**t for t in range(rule.cap))
        return np.stack([1.0 - miss**rule.cap, samples, miss**rule.cap, 0.0 * miss])
    cap, out = rule.cap, np.zeros((4, len(p_correct)))
    for i in range(0, len(p_correct), _BLOCK):
        rows = slice(i, i + _BLOCK)
        out[:, rows] = _from_weights(
            rule,
            _powers(p_correct[rows, None], cap),
            _powers(p_wrong[rows], cap),
            np.ones((len(p_correct[rows]), cap + 1)),
        )
    return out


def _until_verified(cap: int, n_correct: np.ndarray, n: np.ndarray) -> np.ndarray:
    """pass@cap, E[min(T, cap)] = sum_{t < cap} P(the first t are all wrong) with
    P = C(n - c, t) / C(n, t), P(none verified) and 0 (unsure is never right)."""
    return until_checked(cap, n, n_correct, n_correct, np.zeros(len(n)))


def until_checked(
    cap: int, n: np.ndarray, passed: np.ndarray, passed_right: np.ndarray, failed_right: np.ndarray
) -> np.ndarray:
    """``rule_parts`` of ``until_verified`` with a logged check (``columns.check``) in place of
    the correct flag: of the n samples, ``passed`` pass the check (``passed_right`` of them
    right) and ``n - passed`` fail it (``failed_right`` of them right). The rule stops at the
    first sample that passes, whose answer stands; when none of the first ``cap`` passes it
    ends unsure and the first sample's answer stands. With q_t = C(n - passed, t) / C(n, t),
    the chance that the first t all fail::

        acc = (1 - q_cap) passed_right / passed + q_cap failed_right / (n - passed)
        E[samples] = sum_{t < cap} q_t,  P(unsure) = q_cap

    With the correct flag as the check (passed = passed_right = n_correct, failed_right = 0)
    this is ``_until_verified``. NaN where n < cap."""
    n, passed = np.asarray(n, np.float64), np.asarray(passed, np.float64)
    failed = n - passed
    none_yet, samples = np.ones(len(n)), np.zeros(len(n))
    for t in range(cap):
        samples += none_yet
        with np.errstate(invalid="ignore", divide="ignore"):
            none_yet = none_yet * np.maximum(failed - t, 0) / (n - t)
    with np.errstate(invalid="ignore", divide="ignore"):
        right_if_passed = np.where(passed > 0, passed_right / np.maximum(passed, 1), 0.0)
        right_if_failed = np.where(failed > 0, failed_right / np.maximum(failed, 1), 0.0)
    unsure_right = none_yet * right_if_failed
    out = np.stack(
        [(1.0 - none_yet) * right_if_passed + unsure_right, samples, none_yet, unsure_right]
    )
    return np.where(n < cap, np.nan, out)


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
    width = max(int(n.max()) if len(n) else 0, rule.cap)  # short profiles: NaN, still run
    labels = _labels(correct_groups, wrong_groups, width)
    n_correct_cols = correct_groups.shape[1]
    n_groups = correct_groups.shape[1] + wrong_groups.shape[1]
    rng = np.random.default_rng(seed)
    keys = rng.random((len(n), orders, labels.shape[1]))
    keys[:, :, :] += (labels < 0)[:, None, :] * 2.0  # padding sorts last
    order = np.argsort(keys, axis=2, kind="stable")[:, :, : rule.cap]
    drawn = np.take_along_axis(np.broadcast_to(labels[:, None, :], keys.shape), order, axis=2)
    correct, used = simulate_orders(rule, drawn, n_correct_cols, n_groups, rng)
    short = n < rule.cap
    acc, samples, acc_se, samples_se = (
        np.where(short, np.nan, x)
        for x in (correct.mean(axis=1), used.mean(axis=1), _se(correct), _se(used))
    )
    return acc, samples, acc_se, samples_se


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


__all__ = [
    "EXACT_MAX_CAP",
    "RULE_KINDS",
    "Rule",
    "partitions",
    "rule_outcomes",
    "rule_outcomes_iid",
    "rule_parts",
    "rule_parts_iid",
    "unsure_counts",
    "until_checked",
    "rule_outcomes_mc",
    "simulate_orders",
    "stop_counts",
]
