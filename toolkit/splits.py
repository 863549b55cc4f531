"""Splits and folds: which instances train a policy, calibrate it, and score it.

By instance, seeded from the study seed, each dataset cut alike (``[split]``):

- ``folds = 1``: one split into train, validation and test in the declared fractions (largest
  remainder, so counts add up exactly);
- ``folds = k``: the instances of each dataset are dealt into k folds of (nearly) equal size;
  in fold f, fold f is the test split and the others are cut into train and validation in the
  proportion ``train : validation``. Every instance is in exactly one test split, so every
  instance is scored once, by policies that never saw it (cross-fitting).

The ``splits`` table holds one row per (fold, instance): its role in that fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from toolkit.config import SplitSpec

SPLITS = ("train", "validation", "test")
_SPLIT_STREAM = 1_000_001
"""SeedSequence key of the split's random stream (the simulator's keys are shorter tuples)."""


@dataclass(frozen=True)
class Fold:
    """The sorted instance ids of each split of one fold."""

    fold: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _counts(n: int, fractions: np.ndarray) -> np.ndarray:
    """``n`` cut in ``fractions`` by largest remainder (ties: the earlier part)."""
    want = fractions / fractions.sum() * n
    counts = np.floor(want).astype(int)
    counts[np.argsort(-(want - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts


def assign_splits(instances: pa.Table, split: SplitSpec, seed: int) -> pa.Table:
    """(fold, instance_id, split) for every fold and instance.

    ``instances``: instance_id and dataset of every instance. With one fold this is the single
    train / validation / test split (fold 0)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _SPLIT_STREAM])))
    ids = instances.column("instance_id").to_numpy()
    datasets = instances.column("dataset").to_numpy(zero_copy_only=False)
    order = np.argsort(ids, kind="stable")
    ids, datasets = ids[order], datasets[order]
    k = split.folds
    labels = np.empty((k, len(ids)), dtype=object)
    for name in sorted(set(datasets.tolist())):
        members = np.flatnonzero(datasets == name)
        shuffled = rng.permutation(members)
        if k == 1:
            counts = _counts(len(members), np.array([split.train, split.validation, split.test]))
            labels[0, shuffled] = np.repeat(np.array(SPLITS, dtype=object), counts)
            continue
        fold_of = np.empty(len(members), dtype=np.int64)
        fold_of[np.arange(len(members))] = np.repeat(
            np.arange(k), _counts(len(members), np.ones(k))
        )
        for fold in range(k):
            rest = shuffled[fold_of != fold]
            labels[fold, shuffled[fold_of == fold]] = "test"
            train, validation = _counts(len(rest), np.array([split.train, split.validation]))
            labels[fold, rest[:train]] = "train"
            labels[fold, rest[train : train + validation]] = "validation"
    return pa.table(
        {
            "fold": pa.array(np.repeat(np.arange(k, dtype=np.int32), len(ids)), pa.int32()),
            "instance_id": pa.array(np.tile(ids, k), pa.int64()),
            "split": labels.ravel().astype(str),
        }
    )


def folds_of(splits: pa.Table) -> list[Fold]:
    """The folds of a ``splits`` table (columns fold, instance_id, split), in fold order."""
    fold = splits.column("fold").to_numpy()
    ids = splits.column("instance_id").to_numpy()
    role = splits.column("split").to_numpy(zero_copy_only=False)
    out = []
    for f in np.unique(fold):
        mine = fold == f
        parts = {name: np.sort(ids[mine & (role == name)]) for name in SPLITS}
        out.append(Fold(int(f), parts["train"], parts["validation"], parts["test"]))
    return out


__all__ = ["SPLITS", "Fold", "assign_splits", "folds_of"]
