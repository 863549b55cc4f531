"""The test instances of every fold, pooled (``TestSet``), and the stored policies that
allocate them (``PolicyRun``): each fold's baselines and classifiers as the learn stage fitted
them, and each fold's test inputs (features and planned costs) as those policies see them."""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa

from toolkit.config import Study
from toolkit.errors import StudyError
from toolkit.evaluate.registry import LEARNED, menu_of
from toolkit.learn import read_baselines, read_planners, read_policies
from toolkit.learned import LabelKnown, LearnedDeployment, LearnedPolicy
from toolkit.policies import Decision, Inputs, Policy
from toolkit.run_data import (
    FeatureTable,
    OutcomeMatrix,
    action_menus,
    read_outcomes_of,
    run_splits,
)
from toolkit.splits import Fold, folds_of

RunKey = tuple[str, int | None]
"""A policy run's name and CatBoost seed (None for a seedless policy)."""
Labels = dict[float, tuple[np.ndarray, np.ndarray]]
"""Per budget: each pooled test instance's oracle label in a menu (a column index among all
actions) and lambda* (``read_test_labels``)."""
Classifiers = dict[tuple[str, int, int], dict[float, LearnedPolicy]]
"""The run's classifiers: per (menu, CatBoost seed, fold), by declared budget."""


@dataclass(frozen=True)
class TestSet:
    """The test instances of every fold, pooled (instance_id order), and what each fold's
    policies see of them in each menu."""

    outcomes: OutcomeMatrix
    folds: list[Fold]
    menus: dict[str, np.ndarray]
    """Per menu, its actions' column positions."""
    inputs: dict[tuple[str, int], Inputs]
    """Per (menu, fold): the fold's test inputs, restricted to the menu's actions."""
    positions: dict[int, np.ndarray]
    """Per fold, the rows of its test instances in ``outcomes``."""
    fold_of: np.ndarray
    planned: np.ndarray
    """(n, K) planned cost of every pooled test instance (by its fold's planner)."""

    @property
    def n(self) -> int:
        return len(self.outcomes.instance_ids)


@dataclass
class PolicyRun:
    """One evaluated policy (and CatBoost seed) of one menu: its fitted policy in every fold."""

    name: str
    seed: int | None
    by_fold: dict[int, Policy]
    menu: str = "static"

    def allocate(self, test: TestSet, budget: float) -> tuple[np.ndarray, dict[int, Decision]]:
        """The pooled (n, K) weights at ``budget`` (zero outside the menu) and each fold's
        decision."""
        weights = np.zeros(test.outcomes.acc.shape)
        columns = test.menus[self.menu]
        decisions = {}
        for fold, policy in self.by_fold.items():
            decision = policy.allocate(test.inputs[(self.menu, fold)], budget)
            weights[np.ix_(test.positions[fold], columns)] = decision.weights
            decisions[fold] = decision
        return weights, decisions


def read_test_set(
    backend, study: Study, run_id: int, tables: dict[str, FeatureTable], actions: pa.Table
) -> TestSet:
    """The pooled test set (its outcomes only: no other instance's are read), with every
    fold's planned costs; ``tables``: the features each menu's policies see; ``actions``:
    ``run_actions``."""
    splits = backend.to_pyarrow(run_splits(backend, run_id))
    folds = folds_of(splits)
    if not folds or any(len(f.test) == 0 or len(f.train) == 0 for f in folds):
        raise StudyError(
            f"run {run_id} has no train or test split: evaluate needs the learn stage first"
        )
    menus = action_menus(actions)
    planners = read_planners(backend, run_id)
    pooled = np.sort(np.concatenate([f.test for f in folds]))
    test = read_outcomes_of(backend, run_id, pooled)
    inputs, positions = {}, {}
    fold_of = np.zeros(len(pooled), dtype=np.int64)
    planned = np.zeros(test.acc.shape)
    for fold in folds:
        rows = np.searchsorted(pooled, fold.test)
        fold_planned = planners[fold.fold].planned(
            tables["static"].frame(fold.test), test.known[rows]
        )
        for menu, columns in menus.items():
            frame = tables[menu].frame(fold.test)
            inputs[(menu, fold.fold)] = Inputs(fold.test, frame, fold_planned[:, columns])
        positions[fold.fold] = rows
        fold_of[rows] = fold.fold
        planned[rows] = fold_planned
    return TestSet(test, folds, menus, inputs, positions, fold_of, planned)


def read_test_labels(backend, run_id: int, test: TestSet, menu: str = "static") -> Labels:
    """Per budget: each pooled test instance's oracle label in a menu (a column index among
    all actions) and lambda*."""
    rows = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter((ibis._.run_id == run_id) & (ibis._.split == "test") & (ibis._.menu == menu))
        .select("budget", "instance_id", "action_id", "lambda_star")
        .order_by(["budget", "instance_id"])
    )
    out = {}
    budget = rows.column("budget").to_numpy()
    for value in np.unique(budget):
        mine = rows.filter(pa.compute.equal(rows.column("budget"), value))
        ids = mine.column("instance_id").to_numpy()
        if not np.array_equal(ids, test.outcomes.instance_ids):
            raise RuntimeError(f"oracle_labels of budget {value} do not cover the test split")
        columns = np.searchsorted(test.outcomes.action_ids, mine.column("action_id").to_numpy())
        out[float(value)] = (columns, mine.column("lambda_star").to_numpy())
    return out


def policy_runs(backend, run_id: int, wanted: list[str]) -> list[PolicyRun]:
    """Every wanted policy as stored by the learn stage (learned: one run per seed)."""
    baselines = read_baselines(backend, run_id)
    runs: dict[str, PolicyRun] = {}
    for fold, named in baselines.items():
        for name, policy in named:
            if name in wanted:
                run = runs.setdefault(name, PolicyRun(name, None, {}, menu_of(name)))
                run.by_fold[fold] = policy
    out = [runs[name] for name in wanted if name in runs]
    learned = [(d, "static") for d in LEARNED if d in wanted]
    for name in ("learned_probe", "learned_adaptive"):
        if name in wanted:
            learned.append((name, menu_of(name)))
    if not learned:
        return out
    classifiers: Classifiers = {}
    for classifier in read_policies(backend, run_id):
        key = (classifier.menu, classifier.seed, classifier.fold)
        classifiers.setdefault(key, {})[classifier.budget] = classifier
    seeds = sorted({seed for _, seed, _ in classifiers})
    for name, menu in learned:
        deployment = "learned_batch" if name in ("learned_probe", "learned_adaptive") else name
        for seed in seeds:
            by_fold: dict[int, Policy] = {
                fold: LearnedDeployment(deployment, classifiers[(m, s, fold)])
                for m, s, fold in classifiers
                if s == seed and m == menu
            }
            if by_fold:
                out.append(PolicyRun(name, seed, by_fold, menu))
    if "label_known" in wanted:
        out.append(_label_known(backend, run_id, classifiers, seeds[0]))
    return out


def _label_known(backend, run_id: int, classifiers: Classifiers, seed: int) -> PolicyRun:
    """The ceiling reference: the first seed's static classifiers told the test labels."""
    rows = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter((ibis._.run_id == run_id) & (ibis._.split == "test") & (ibis._.menu == "static"))
        .select("fold", "budget", "instance_id", "action_id")
    ).to_pylist()
    labels: dict[int, dict[float, dict[int, int]]] = {}
    for row in rows:
        by_budget = labels.setdefault(row["fold"], {})
        by_budget.setdefault(row["budget"], {})[row["instance_id"]] = row["action_id"]
    by_fold: dict[int, Policy] = {
        fold: LabelKnown(classifiers[("static", seed, fold)], labels[fold])
        for m, s, fold in classifiers
        if m == "static" and s == seed
    }
    return PolicyRun("label_known", None, by_fold)
