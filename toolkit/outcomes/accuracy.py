"""Outcomes: exact accuracies of b samples per profile (``toolkit.outcomes``: the formulas):
majority vote over stored samples and under a known answer distribution, pass@b, and best-of-b
by a score."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
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
