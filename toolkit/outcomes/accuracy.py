"""Outcomes: exact accuracies of b samples per profile (``toolkit.outcomes``: the formulas):
majority vote over stored samples and under a known answer distribution, pass@b, and best-of-b
by a score."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from scipy.special import comb, gammaln


# --------------------------------------------------------------------------------------------
# Exact vote probabilities
# --------------------------------------------------------------------------------------------
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


def pad_groups(groups: Sequence[list[int] | np.ndarray], dtype=np.float64) -> np.ndarray:
    width = max((len(g) for g in groups), default=0)
    out = np.zeros((len(groups), max(width, 1)), dtype=dtype)
    for row, g in enumerate(groups):
        out[row, : len(g)] = g
    return out


def vote_sum(target_coef: np.ndarray, other_coef: np.ndarray, b: int) -> np.ndarray:
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
        result += vote_sum(target_coef, other_coef, b)
    return result / comb(n, b)


def majority_vote_accuracy_iid(p_correct: np.ndarray, p_wrong: np.ndarray, b: int) -> np.ndarray:
    """P(a majority vote over b i.i.d. samples is correct): one correct answer with probability
    p_correct[i], wrong answers with probabilities p_wrong[i, :]. Ties uniformly at random.
    (``majority_vote_accuracies_iid`` for one b.)"""
    return majority_vote_accuracies_iid(p_correct, p_wrong, [b])[:, 0]


def majority_vote_accuracies_iid(
    p_correct: np.ndarray, p_wrong: np.ndarray, bs: Sequence[int]
) -> np.ndarray:
    """``majority_vote_accuracy_iid`` of every b in ``bs`` at once: an (n, len(bs)) array.

    One pass serves every b: for each count x of the correct answer, the product of the wrong
    answers' truncated series is formed once, to the degree the largest b needs, and every b
    reads its coefficient ``b - x`` from it; where ``b - x < x`` no wrong answer can reach x
    and that coefficient is ``Q^(b-x) / (b-x)!`` (Q the wrong answers' total), with no product
    at all (``_iid_block``).

    Computed in row blocks that stay in cache (``in_blocks``), the same bit for bit on any
    number of threads."""
    bs = [int(b) for b in bs]
    out = in_blocks(lambda correct, wrong: _iid_block(correct, wrong, bs), p_correct, p_wrong)
    return out if len(p_correct) else np.zeros((0, len(bs)))


def in_blocks(compute: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
    """``compute`` on row blocks of ``_BLOCK`` rows of the arrays, concatenated: spread over
    ``_THREADS`` threads when there are many blocks (numpy releases the GIL on their array
    arithmetic). Each block's arithmetic is the same either way, so the result is too."""
    starts = range(0, len(arrays[0]), _BLOCK)

    def block(i: int) -> np.ndarray:
        return compute(*(a[i : i + _BLOCK] for a in arrays))

    if _THREADS > 1 and len(starts) >= 2 * _THREADS:
        with ThreadPoolExecutor(_THREADS) as pool:
            parts = list(pool.map(block, starts))
    else:
        parts = [block(i) for i in starts]
    return np.concatenate(parts) if parts else np.zeros(0)


_BLOCK = 8192
_THREADS = min(4, os.cpu_count() or 1)


@functools.cache
def _unit_gauss(ties: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1], exact for polynomials in u of degree
    ``ties``."""
    nodes, weights = np.polynomial.legendre.leggauss(max(1, (ties + 2) // 2))
    return (nodes + 1) / 2, weights / 2


def _wrong_product(
    other: np.ndarray, active: list[int], x: int, degree: int, wanted: list[int]
) -> dict[int, np.ndarray]:
    """For each m in ``wanted``: int_0^1 [z^m] prod_j (sum_{y<x} other[:, j, y] z^y +
    u other[:, j, x] z^x) du over the wrong answers j in ``active`` (m <= ``degree``).

    At each Gauss node of u at once; every partial product only as long as its degree can be
    (x per answer so far, capped at ``degree``), the last answer's factor applied only to the
    coefficients wanted."""
    n = other.shape[0]
    nodes, weights = _unit_gauss(min(len(active), degree // x))

    def coefficient(j: int, y: int) -> np.ndarray:
        """Answer j's factor's z^y coefficient at every node: (nodes or 1, n, 1)."""
        if y < x:
            return other[None, :, j, y, None]
        return (nodes[:, None] * other[None, :, j, x])[:, :, None]

    first, *rest = active
    poly = np.empty((len(nodes), n, x + 1))
    poly[:, :, :x] = other[None, :, first, :x]
    poly[:, :, x] = nodes[:, None] * other[None, :, first, x]
    for j in rest[:-1]:
        width = min(degree, poly.shape[2] - 1 + x) + 1
        product = np.zeros((len(nodes), n, width))
        for y in range(x + 1):
            span = min(poly.shape[2], width - y)
            product[:, :, y : y + span] += coefficient(j, y) * poly[:, :, :span]
        poly = product
    out = {}
    for m in wanted:
        inner = np.zeros((len(nodes), n))
        if not rest:
            inner += poly[:, :, m] if m < poly.shape[2] else 0.0
        else:
            for y in range(max(0, m - poly.shape[2] + 1), min(x, m) + 1):
                inner += coefficient(rest[-1], y)[:, :, 0] * poly[:, :, m - y]
        out[m] = weights @ inner
    return out


def iid_series(p: np.ndarray, top: int) -> np.ndarray:
    """The series coefficients p^y / y! for y = 0..``top`` of every probability in ``p``, on a
    new last axis; 1 at y = 0 (a zero probability included)."""
    ys = np.arange(top + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(ys * np.log(p[..., None]) - gammaln(ys + 1.0))
    out[..., 0] = 1.0
    return out


def _iid_block(p_correct: np.ndarray, p_wrong: np.ndarray, bs: list[int]) -> np.ndarray:
    """acc(b) = b! sum_x p^x / x! * int_0^1 [z^(b-x)] prod_j (sum_{y<x} (q_j z)^y / y! +
    u (q_j z)^x / x!) du for every b in ``bs`` (see ``majority_vote_accuracies_iid``): the
    integral by ``_wrong_product``, to the degree the largest b needs."""
    n = len(p_correct)
    top = max(bs)
    target = iid_series(np.maximum(p_correct, 1e-300), top)
    other = iid_series(p_wrong, top)
    free = iid_series(p_wrong.sum(axis=1), top)  # Q^m / m!, Q the wrong answers' total
    active = [int(j) for j in np.flatnonzero(p_wrong.any(axis=0))]
    out = np.zeros((n, len(bs)))
    for x in range(1, top + 1):
        reads = [(i, b - x) for i, b in enumerate(bs) if b >= x]
        degree = top - x
        if x > degree or not active:  # no wrong answer reaches x votes: the free series
            for i, m in reads:
                out[:, i] += target[:, x] * free[:, m]
            continue
        inner = _wrong_product(other, active, x, degree, [m for _, m in reads])
        for i, m in reads:
            out[:, i] += target[:, x] * inner[m]
    return out * np.array([math.factorial(b) for b in bs], dtype=np.float64)


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
