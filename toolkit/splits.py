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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toolkit.config import SplitSpec
from toolkit.errors import StudyError

if TYPE_CHECKING:  # numpy and Arrow load in the functions that deal (not for stl validate)
    import numpy as np
    import pyarrow as pa

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


def _counts(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` cut in ``fractions`` by largest remainder (ties: the earlier part).

    Plain Python, so that ``check_split_sizes`` (``stl validate``) needs no numpy; the same
    float operations in the same order as numpy's ``want = fractions / fractions.sum() * n``,
    floor and stable argsort of the remainders, so the counts are numpy's to the instance
    (``tests/test_learn.py`` checks it)."""
    total = 0.0
    for fraction in fractions:
        total += fraction
    want = [fraction / total * n for fraction in fractions]
    counts = [math.floor(share) for share in want]
    order = sorted(range(len(want)), key=lambda part: -(want[part] - counts[part]))
    for part in order[: n - sum(counts)]:
        counts[part] += 1
    return counts


def _fold_counts(n: int, split: SplitSpec) -> list[list[int]]:
    """``split_counts`` as lists."""
    if split.folds == 1:
        return [_counts(n, [split.train, split.validation, split.test])]
    tests = _counts(n, [1.0] * split.folds)
    rest = [split.train, split.validation]
    return [[*_counts(n - test, rest), test] for test in tests]


def split_counts(n: int, split: SplitSpec) -> np.ndarray:
    """(train, validation, test) instance counts of each fold (one row per fold) when a
    dataset of ``n`` instances is cut as ``split`` says; what ``assign_splits`` deals."""
    import numpy as np

    return np.array(_fold_counts(n, split), dtype=int)


def check_split_sizes(instances: dict[str, int], split: SplitSpec) -> None:
    """Every fold has an instance to train on and one to score (summed over the datasets,
    ``instances``: the instance count of each); else a StudyError saying how the cut fell."""
    counts = [[0, 0, 0] for _ in range(split.folds)]  # summed over the datasets
    for n in instances.values():
        for fold, row in enumerate(_fold_counts(n, split)):
            counts[fold] = [total + count for total, count in zip(counts[fold], row, strict=True)]
    for fold, (train, validation, test) in enumerate(counts):
        if train > 0 and test > 0:
            continue
        total = sum(instances.values())
        if split.folds == 1:
            how = (
                f"cut train {split.train:g} / validation {split.validation:g} / test {split.test:g}"
            )
        else:
            how = f"dealt into split.folds = {split.folds} folds (fold {fold})"
        raise StudyError(
            f"split: {total:,} instance(s) {how} leave {train} to train on, {validation} to "
            f"validate and {test} to score; a policy needs at least one to train on and one to "
            "score: use more instances or larger shares"
        )


def assign_splits(instances: pa.Table, split: SplitSpec, seed: int) -> pa.Table:
    """(fold, instance_id, split) for every fold and instance.

    ``instances``: instance_id and dataset of every instance. With one fold this is the single
    train / validation / test split (fold 0)."""
    import numpy as np
    import pyarrow as pa

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
        counts = split_counts(len(members), split)
        if k == 1:
            labels[0, shuffled] = np.repeat(np.array(SPLITS, dtype=object), counts[0])
            continue
        fold_of = np.repeat(np.arange(k), counts[:, 2])
        for fold, (train, validation, _) in enumerate(counts):
            rest = shuffled[fold_of != fold]
            labels[fold, shuffled[fold_of == fold]] = "test"
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
    import numpy as np

    fold = splits.column("fold").to_numpy()
    ids = splits.column("instance_id").to_numpy()
    role = splits.column("split").to_numpy(zero_copy_only=False)
    out = []
    for f in np.unique(fold):
        mine = fold == f
        parts = {name: np.sort(ids[mine & (role == name)]) for name in SPLITS}
        out.append(Fold(int(f), parts["train"], parts["validation"], parts["test"]))
    return out


__all__ = ["SPLITS", "Fold", "assign_splits", "check_split_sizes", "folds_of", "split_counts"]
