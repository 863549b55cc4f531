"""The learning curve: the classifier of the middle declared budget and first CatBoost seed,
refitted on nested shares of fold 0's training sample (``LEARNING_CURVE_SHARES``) and priced
on fold 0's test batch, against best_fixed on the same batch (table ``learning_curve``)."""

from __future__ import annotations

import ibis
import numpy as np

from toolkit.config import Study
from toolkit.evaluate.runs import Labels, PolicyRun, RunKey, TestSet
from toolkit.learn import training_sample
from toolkit.learned import fit_policies
from toolkit.run_data import FeatureTable, read_outcomes_of
from toolkit.splits import Fold

LEARNING_CURVE_SHARES = (0.125, 0.25, 0.5, 1.0)
"""Shares of fold 0's training sample the learning curve refits the classifier on."""
_LEARNING_CURVE_STREAM = 1_000_003


def learning_curve(
    backend: ibis.BaseBackend,
    study: Study,
    run_id: int,
    table: FeatureTable,
    test: TestSet,
    labels: Labels,
    runs: dict[RunKey, PolicyRun],
) -> list[dict]:
    """The classifier of the middle declared budget and first CatBoost seed, refitted on
    nested shares of fold 0's training sample and priced on fold 0's test batch."""
    budgets = sorted(study.budgets.values)
    budget, fold = budgets[len(budgets) // 2], test.folds[0]
    inputs, rows = test.inputs[("static", fold.fold)], test.positions[fold.fold]
    columns, lambdas = labels[budget]
    best_fixed = runs[("best_fixed", None)].by_fold[fold.fold].allocate(inputs, budget).weights
    static = test.menus["static"]  # the first columns: labels index them alike
    acc = test.outcomes.acc[np.ix_(rows, static)]
    best_fixed_acc = float((best_fixed * acc).sum(axis=1).mean())
    jobs = _nested_fits(backend, study, run_id, table, test, fold, budget, float(lambdas[rows][0]))
    out = []
    for job, policy in zip(jobs, fit_policies(jobs), strict=True):
        weights = policy.decide(inputs, budget, "learned_batch").weights
        accuracy = float((weights * acc).sum(axis=1).mean())
        out.append(
            {
                "fold": fold.fold,
                "budget": budget,
                "seed": job["seed"],
                "train_rows": len(job["labels"]),
                "accuracy": accuracy,
                "best_fixed_accuracy": best_fixed_acc,
                "gain_vs_best_fixed": accuracy - best_fixed_acc,
                "imitation_accuracy": float(weights[np.arange(len(rows)), columns[rows]].mean()),
            }
        )
    return out


def _nested_fits(
    backend: ibis.BaseBackend,
    study: Study,
    run_id: int,
    table: FeatureTable,
    test: TestSet,
    fold: Fold,
    budget: float,
    lambda_: float,
) -> list[dict]:
    """The ``fit_policy`` jobs of the curve: the fold's training sample (as the learn stage
    drew it) in a seeded order, its first share of it per ``LEARNING_CURVE_SHARES`` (shares
    of fewer than 20 instances left out), labelled at ``budget``."""
    label_of = _train_labels(backend, run_id, fold, budget)
    fit_ids = training_sample(fold.train, study.learn.max_train_rows, study.study.seed, fold.fold)
    everything = read_outcomes_of(backend, run_id, fit_ids).columns_subset(test.menus["static"])
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([study.study.seed, _LEARNING_CURVE_STREAM]))
    )
    order = rng.permutation(len(fit_ids))
    jobs = []
    for share in LEARNING_CURVE_SHARES:
        chosen = np.sort(order[: max(1, round(share * len(fit_ids)))])
        if len(chosen) < 20:
            continue
        ids = fit_ids[chosen]
        jobs.append(
            {
                "frame": table.frame(ids),
                "labels": np.array([label_of[i] for i in ids.tolist()], dtype=np.int32),
                "acc": everything.acc[chosen],
                "action_ids": everything.action_ids,
                "budget": budget,
                "lambda_": lambda_,
                "seed": study.learn.seeds[0],
                "spec": study.learn,
                "fold": fold.fold,
            }
        )
    return jobs


def _train_labels(backend: ibis.BaseBackend, run_id: int, fold: Fold, budget: float) -> dict:
    """The static oracle label (action id) of each training instance of ``fold`` at
    ``budget``."""
    train_labels = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter(
            (ibis._.run_id == run_id)
            & (ibis._.fold == fold.fold)
            & (ibis._.budget == budget)
            & (ibis._.split == "train")
            & (ibis._.menu == "static")
        )
        .order_by("instance_id")
    )
    return dict(
        zip(
            train_labels.column("instance_id").to_pylist(),
            train_labels.column("action_id").to_pylist(),
            strict=True,
        )
    )
