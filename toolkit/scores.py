"""Score-weighted voting: the answer whose samples' scores add up to the most wins.

Of b samples drawn without replacement from an instance's n stored samples, each distinct
answer gets the sum of its samples' scores (a reward model's or a verifier's); the answer with
the largest sum is kept, ties broken uniformly at random (a null answer is its own answer, as
in the majority vote). With every weight equal and positive it is the majority vote.

A vote weight must not be negative (three agreeing samples would then weigh less than one):
``actions.score_weights = "score"`` uses the scores as they are and refuses a negative one;
``"sigmoid"`` maps a score s to ``1 / (1 + exp(-s))`` first, for scores that are logits (a
reward model's), which keeps their order, so best-of-2 is unchanged.

The expectation over b-subsets is exact by enumeration where there are at most
``EXACT_MAX_SUBSETS`` of them (every subset of the 8 samples of the Qwen2.5-Math log, for
instance); otherwise a seeded Monte Carlo over ``orders`` random subsets estimates it, with its
standard error. Both are vectorized over the instances of one sample count.
"""

from __future__ import annotations

import math
from itertools import combinations

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXACT_MAX_SUBSETS = 20_000
"""Enumerate every b-subset when there are at most this many (C(n, b))."""
_CELLS = 4_000_000
"""Instances x subsets x b x b held at once."""
_STREAM = 0x5765_6967
"""SeedSequence key of the Monte Carlo subsets (with the study's seed, the model and b)."""


def scored_samples(samples: ir.Table) -> ir.Table:
    """Per sample: (instance_id, model, answer key, correct, score), in sample order; the
    answer key is the answer, or a key of its own for a null answer."""
    return samples.select(
        "instance_id",
        "model",
        "sample_idx",
        key=ibis.coalesce(samples.answer.cast("int64"), -1 - samples.sample_idx.cast("int64")),
        correct=samples.correct,
        score=samples.score.cast("float64"),
    ).order_by(["instance_id", "model", "sample_idx"])


def _winners(keys: np.ndarray, scores: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """keys, scores, correct: (..., b) drawn samples. The share of the winning answers (the
    largest score sums, ties shared) that are correct, per leading index."""
    same = keys[..., :, None] == keys[..., None, :]
    totals = np.einsum("...jk,...k->...j", same.astype(np.float64), scores)
    best = totals.max(axis=-1, keepdims=True)
    b = keys.shape[-1]
    earlier = np.tril(np.ones((b, b), dtype=bool), -1)
    first = ~np.any(same & earlier, axis=-1)  # the first sample of its answer among the b
    wins = first & (totals >= best - 1e-12 * np.maximum(np.abs(best), 1.0))
    return (wins & correct).sum(axis=-1) / wins.sum(axis=-1)


def weighted_vote_accuracy(
    keys: np.ndarray,
    scores: np.ndarray,
    correct: np.ndarray,
    b: int,
    *,
    orders: int = 2000,
    seed: int | list[int] = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(acc, its standard error or None when exact) of the score-weighted vote over b of the
    n samples of each instance. keys, scores, correct: (P, n), one row per instance."""
    n_profiles, n = keys.shape
    if b > n:
        return np.full(n_profiles, np.nan), None
    if math.comb(n, b) <= EXACT_MAX_SUBSETS:
        subsets = np.array(list(combinations(range(n), b)), dtype=np.int64)
        acc = np.zeros(n_profiles)
        rows = max(1, _CELLS // (len(subsets) * b * b))
        for i in range(0, n_profiles, rows):
            part = slice(i, i + rows)
            share = _winners(
                keys[part][:, subsets], scores[part][:, subsets], correct[part][:, subsets]
            )
            acc[part] = share.mean(axis=1)
        return acc, None
    rng = np.random.default_rng(seed)
    acc, se = np.zeros(n_profiles), np.zeros(n_profiles)
    rows = max(1, _CELLS // (orders * max(n, b * b)))
    for i in range(0, n_profiles, rows):
        part = slice(i, i + rows)
        m = len(keys[part])
        subsets = np.argsort(rng.random((m, orders, n)), axis=2)[:, :, :b]
        take = np.arange(m)[:, None, None]
        share = _winners(
            keys[part][take, subsets], scores[part][take, subsets], correct[part][take, subsets]
        )
        acc[part] = share.mean(axis=1)
        se[part] = share.std(axis=1, ddof=1) / math.sqrt(orders)
    return acc, se


def vote_weights(scores: np.ndarray, how: str, model: str) -> np.ndarray:
    """The vote weight of each sample from its score (see the module docstring)."""
    from toolkit.errors import StudyError

    if how == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    if (scores < 0).any():
        raise StudyError(
            f"actions.score_weights: model {model!r} has a negative score "
            f"({scores.min():g}), which would make agreeing samples weigh less; use "
            '"sigmoid" for scores that are logits, or scores >= 0'
        )
    return scores


def instance_matrices(
    scored: pa.Table, model: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(instance_ids, keys, scores, correct) of one model's ``scored_samples``, each (P, n):
    every instance must have the same number of samples n."""
    mine = scored.filter(pc.equal(scored.column("model"), model))
    ids = mine.column("instance_id").to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    counts = np.diff(np.r_[starts, len(ids)])
    if len(counts) and (counts != counts[0]).any():
        raise ValueError(
            f"model {model!r}: a score-weighted vote needs the same number of samples per "
            f"instance (found {counts.min()} to {counts.max()})"
        )
    n = int(counts[0]) if len(counts) else 0

    def matrix(name: str, dtype) -> np.ndarray:
        values = mine.column(name).to_numpy(zero_copy_only=False).astype(dtype)
        return values.reshape(len(starts), n)

    if mine.column("score").null_count:
        raise ValueError(f"model {model!r}: a sample has no score (columns.score)")
    return (
        ids[starts],
        matrix("key", np.int64),
        matrix("score", np.float64),
        matrix("correct", bool),
    )


__all__ = [
    "EXACT_MAX_SUBSETS",
    "instance_matrices",
    "scored_samples",
    "vote_weights",
    "weighted_vote_accuracy",
]
