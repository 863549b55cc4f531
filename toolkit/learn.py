"""Learn: every policy fitted on each fold's training split, and stored as fitted.

The stage, ``learn(backend, study, run_id)``:

1. computes every instance's features (``toolkit.features``) and stores them (``features``,
   ``feature_catalog``);
2. splits the instances into folds of train / validation / test (``toolkit.splits``, table
   ``splits``); with ``[split] folds = 1`` one split;
3. per fold, on the training split:
   - fits the cost planner (``toolkit.costs``: the planned cost every policy prices with;
     ``cost_planners``);
   - solves every budget B (``toolkit.solve``), giving lambda*(B), and labels every instance of
     the fold with its oracle action at lambda*(B) (``oracle_labels``);
   - fits every baseline (``toolkit.policies``; their fitted state in ``policy_states``) and one
     CatBoost classifier per budget and seed, its price calibrated on the validation split for
     every budget of the run's grid that it serves (``policy_models``, ``feature_importance``).

Evaluation (``toolkit.evaluate``) reads these back and only allocates: what it scores is what
was stored.

The validation price meets B on validation exactly; on test it is off by split-to-split
sampling noise, not a bias. Over 9 study seeds of the default study, the test budget error
ranged from -7% to +8%, with a mean of +0.7% and an RMS of 4.4%. Its sign is shared by every
budget and CatBoost seed of a run, because they all use the same split. The test split alone
contributes about 2% (the SD of the mean cost of 1,000 instances at a fixed price), so no
price set without the test inputs meets B within 1% reliably.

The learner is close to what its features allow. On the default study, a CatBoost regressor
of ``acc_true(x, a)`` fitted on 60,000 independently simulated instances, priced on the test
batch, keeps 0.66-0.71 (B = 2) to 0.26 (B = 8) of the oracle's gain, 0.01-0.05 more than this
classifier. A policy that knows the latent difficulty keeps 0.76-0.93. The gap is in the
features, not in the classifier or its decoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from toolkit import db, features, solve
from toolkit.config import Study
from toolkit.costs import CostPlanner, fit_cost_planner
from toolkit.errors import StudyError
from toolkit.learned import (
    DECODERS,
    DEFAULT_DECODER,
    LearnedPolicy,
    fit_policies,
    load_model,
    nearest_budget,
)
from toolkit.policies import (
    AlwaysModel,
    BestFixed,
    DifficultyBins,
    Inputs,
    Policy,
    PriceCalibration,
    PromptLength,
    RandomMix,
    RuleFamily,
    TrainingSet,
    Uniform,
    rule_family,
)
from toolkit.progress import Step, Steps
from toolkit.run_data import (
    FeatureTable,
    OutcomeMatrix,
    action_menus,
    read_features,
    read_outcomes,
    run_actions,
    run_budget_grid,
    run_instances,
    run_outcomes,
    run_splits,
    split_outcomes,
)
from toolkit.splits import Fold, assign_splits, folds_of

_TRAIN_SAMPLE_STREAM = 1_000_002
"""SeedSequence key of the training sample's stream (``learn.max_train_rows``)."""


def training_sample(train_ids: np.ndarray, limit: int, seed: int, fold: int = 0) -> np.ndarray:
    """The training instances CatBoost sees: all of them up to ``limit``, else a seeded uniform
    sample of ``limit`` (sorted), so a fit stays bounded in memory at any N."""
    if len(train_ids) <= limit:
        return train_ids
    key = [seed, _TRAIN_SAMPLE_STREAM] if fold == 0 else [seed, _TRAIN_SAMPLE_STREAM, fold]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
    return np.sort(rng.choice(train_ids, size=limit, replace=False))


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------
@dataclass
class LearnSummary:
    """What the learn stage wrote (rows per table) and fitted."""

    rows: dict[str, int] = field(default_factory=dict)
    fit_seconds: list[float] = field(default_factory=list)
    policies: list[LearnedPolicy] = field(default_factory=list)

    def add(self, table: str, rows: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows


@dataclass(frozen=True)
class _RunData:
    """What every fold reads: the run's features, outcomes, budgets and action models."""

    backend: ibis.BaseBackend
    study: Study
    run_id: int
    features: FeatureTable
    outcomes: OutcomeMatrix
    grid: tuple[float, ...]
    action_models: tuple[str, ...]
    menus: dict[str, np.ndarray]
    """Per menu (``actions.menu``), its actions' column positions."""
    action_rules: tuple[str | None, ...] = ()
    """Per action, its stopping rule (``actions.rule``), None for static and probe actions."""
    probe_features: FeatureTable | None = None
    """The features with the probe's (policies of the probe menu see them)."""
    fits: Steps = field(default_factory=lambda: Steps(None))
    """Told after each CatBoost fit."""

    def menu_features(self, menu: str) -> FeatureTable:
        """The features the policies of a menu see (the probe menu's: with the probe's)."""
        if menu != "probe":
            return self.features
        if self.probe_features is None:
            raise RuntimeError(f"run {self.run_id} has a probe menu but no probe features")
        return self.probe_features


def learn(
    backend: ibis.BaseBackend,
    study: Study,
    run_id: int,
    *,
    decoder: str = DEFAULT_DECODER,
    step: Step | None = None,
) -> LearnSummary:
    """Features, folds, oracle labels and every fitted policy of one run, written to its tables
    (see the module docstring); ``step`` is told (fits done, fits in all) after each fit."""
    if decoder not in DECODERS:
        raise StudyError(f"unknown decoder {decoder!r}; known: {', '.join(DECODERS)}")
    summary = LearnSummary()
    table = read_features(backend, run_id, study)
    summary.add(
        "features", db.append(backend, "features", features.long_features(table.wide), run_id)
    )
    summary.add(
        "feature_catalog",
        db.append(backend, "feature_catalog", features.catalog_table(table.spec), run_id),
    )
    instances = backend.to_pyarrow(run_instances(backend, run_id).select("instance_id", "dataset"))
    split_table = assign_splits(instances, study.split, study.study.seed)
    summary.add("splits", db.append(backend, "splits", split_table, run_id))
    everything = read_outcomes(backend, run_outcomes(backend, run_id))
    actions = run_actions(backend, run_id)
    data = _RunData(
        backend,
        study,
        run_id,
        table,
        everything,
        run_budget_grid(backend, study, run_id, actions),
        tuple(actions.column("model").to_pylist()),
        action_menus(actions),
        tuple(actions.column("rule").to_pylist()),
        read_features(backend, run_id, study, probe=True) if study.probe_model else None,
    )
    folds = folds_of(split_table)
    fits = len(folds) * len(data.menus) * len(study.budgets.values) * len(study.learn.seeds)
    data.fits.step, data.fits.total = step, fits
    for fold in folds:
        for name, ids in (("train", fold.train), ("validation", fold.validation)):
            if len(ids) == 0:
                raise StudyError(
                    f"split: the {name} split of fold {fold.fold} of run {run_id} has no "
                    "instances (too few instances for the declared [split])"
                )
        _learn_fold(data, fold, decoder, summary)
    return summary


def train_scope(fold: int, folds: int) -> str:
    """The ``solutions.scope`` of a fold's training split."""
    return "train" if folds == 1 else f"train.fold{fold}"


def _learn_fold(data: _RunData, fold: Fold, decoder: str, summary: LearnSummary) -> None:
    """One fold: the cost planner, then per menu the oracle labels and the policies."""
    study = data.study
    fit_ids = training_sample(fold.train, study.learn.max_train_rows, study.study.seed, fold.fold)
    train = data.outcomes.subset(fit_ids)
    frame = data.features.frame(fit_ids)
    planner = fit_cost_planner(frame, train.known, train.cost, seed=study.study.seed)
    _append(data, summary, "cost_planners", [_planner_row(planner, fold.fold)])
    for menu, columns in data.menus.items():
        _learn_menu(data, fold, menu, columns, planner, fit_ids, decoder, summary)


def _append(data: _RunData, summary: LearnSummary, table: str, rows: list[dict]) -> None:
    records = db.records(data.backend, table, rows)
    summary.add(table, db.append(data.backend, table, records, data.run_id))


def _learn_menu(
    data: _RunData,
    fold: Fold,
    menu: str,
    columns: np.ndarray,
    planner: CostPlanner,
    fit_ids: np.ndarray,
    decoder: str,
    summary: LearnSummary,
) -> None:
    """One menu of one fold: its training oracle at every budget (labels for the classifier,
    the action mix for ``random``), its baselines (the static menu's) and its classifiers."""
    backend, study, run_id = data.backend, data.study, data.run_id
    budgets = list(study.budgets.values)
    ids = data.outcomes.action_ids[columns].tolist()
    outcomes = run_outcomes(backend, run_id).filter(ibis._.action_id.isin(ids))
    train_outcomes = split_outcomes(outcomes, run_splits(backend, run_id), fold.fold, "train")
    solved = solve.solve_budgets(backend, train_outcomes, [*budgets, *data.grid], clip=True)
    allocations, grid_solutions = solved[: len(budgets)], solved[len(budgets) :]
    if menu == "static":  # the other menus' training solutions live in their labels
        scope = train_scope(fold.fold, study.split.folds)
        solve.write_allocations(backend, run_id, allocations, scope=scope)
    labels = _fold_labels(data, fold, budgets, allocations, outcomes, menu)
    summary.add("oracle_labels", db.append(backend, "oracle_labels", labels, run_id))

    table = data.menu_features(menu)
    frame = table.frame(fit_ids)
    train = data.outcomes.subset(fit_ids).columns_subset(columns)
    planned = planner.planned(data.features.frame(fit_ids), data.outcomes.subset(fit_ids).known)
    train_full = data.outcomes.subset(fold.train).columns_subset(columns)
    mixes = {
        budget: train_full.weights(allocation.assignment).mean(axis=0)
        for budget, allocation in zip(data.grid, grid_solutions, strict=True)
    }
    training = TrainingSet(
        Inputs(fit_ids, frame, planned[:, columns]),
        train.acc,
        train.cost,
        train.action_ids,
        tuple(data.action_models[c] for c in columns),
        oracle_mix=mixes.__getitem__,
        action_rules=tuple(data.action_rules[c] for c in columns),
    )
    if menu in ("static", "adaptive"):
        fitted = fit_baselines(training, data.grid, study, menu)
        _append(data, summary, "policy_states", [_state_row(p, fold.fold) for p in fitted])
    _fit_classifiers(
        data, fold, menu, table, training, allocations, labels, planner, decoder, summary
    )


def _fit_classifiers(
    data: _RunData,
    fold: Fold,
    menu: str,
    table: FeatureTable,
    training: TrainingSet,
    allocations: list[solve.Allocation],
    labels: pa.Table,
    planner: CostPlanner,
    decoder: str,
    summary: LearnSummary,
) -> None:
    """One classifier per budget and CatBoost seed on the menu's training labels, each priced
    on the validation split for every grid budget it serves."""
    study, budgets = data.study, list(data.study.budgets.values)
    columns = np.searchsorted(data.outcomes.action_ids, training.action_ids)
    validation = data.outcomes.subset(fold.validation)
    validation_frame = table.frame(fold.validation)
    static_frame = data.features.frame(fold.validation)
    validation_planned = planner.planned(static_frame, validation.known)[:, columns]
    fit_ids = training.inputs.instance_ids
    jobs = []
    for budget, allocation in zip(budgets, allocations, strict=True):
        mine = labels.filter(pa.compute.equal(labels.column("budget"), budget))
        label_of = dict(
            zip(
                mine.column("instance_id").to_pylist(),
                mine.column("action_id").to_pylist(),
                strict=True,
            )
        )
        y = np.array([label_of[i] for i in fit_ids.tolist()], dtype=np.int32)
        jobs += [
            {
                "frame": training.inputs.frame,
                "labels": y,
                "acc": training.acc,
                "action_ids": training.action_ids,
                "budget": budget,
                "lambda_": allocation.lambda_,
                "seed": seed,
                "spec": study.learn,
                "fold": fold.fold,
                "decoder": decoder,
                "menu": menu,
            }
            for seed in study.learn.seeds
        ]
    model_rows, importance_rows = [], []
    for policy in fit_policies(jobs, on_fit=data.fits.advance):
        served = [g for g in data.grid if nearest_budget(budgets, g) == policy.budget]
        for target in served:
            policy.calibrations[target] = policy.calibrate(
                validation_frame, validation_planned, target
            )
        policy.forget_batch()  # the validation split's arrays: 15 policies held them all
        summary.policies.append(policy)
        summary.fit_seconds.append(policy.fit_seconds)
        model_rows.append(_model_row(policy, len(fit_ids)))
        for name, value in zip(policy.feature_names, policy.importances(), strict=True):
            importance_rows.append(
                {
                    "fold": fold.fold,
                    "menu": menu,
                    "budget": policy.budget,
                    "seed": policy.seed,
                    "feature": name,
                    "importance": float(value),
                }
            )
    _append(data, summary, "policy_models", model_rows)
    _append(data, summary, "feature_importance", importance_rows)


def fit_baselines(
    training: TrainingSet, grid: tuple[float, ...], study: Study, menu: str = "static"
) -> list[tuple[str, Policy]]:
    """(policy name, fitted baseline) of every baseline the study compares (uniform and
    best_fixed always: gains are measured against them); on the adaptive menu, each declared
    stopping-rule family on its own (``rule_<family>``)."""
    if menu == "adaptive":
        families = dict.fromkeys(rule_family(r) for r in training.action_rules if r)
        return [
            (policy.policy_name, policy.fit(training, grid))
            for policy in (RuleFamily(family=f) for f in families if f)
        ]
    wanted = set(study.policies.compare) | {"uniform", "best_fixed"}
    fitted: list[tuple[str, Policy]] = []
    for name, policy in (
        ("uniform", Uniform()),
        ("best_fixed", BestFixed()),
        ("random", RandomMix()),
        ("prompt_length", PromptLength()),
        ("difficulty_bins", DifficultyBins()),
    ):
        if name in wanted:
            fitted.append((name, policy.fit(training, grid)))
    models = list(dict.fromkeys(training.action_models))
    if "always" in wanted and len(models) > 1:
        for model in models:
            always = AlwaysModel(model=model).fit(training, grid)
            fitted.append((always.policy_name, always))
    return fitted


def _fold_labels(
    data: _RunData,
    fold: Fold,
    budgets: list[float],
    allocations: list[solve.Allocation],
    outcomes: ir.Table,
    menu: str,
) -> pa.Table:
    """The oracle label of every instance of the fold at each budget's lambda*: the solver's
    hard labels on train (its mixed instances resolved as ``solve.oracle_labels`` does), the
    oracle at lambda* (``solve.oracle_actions``, ties to the cheaper action) elsewhere."""
    fold_ids = np.sort(np.concatenate([fold.train, fold.validation, fold.test]))
    role = np.empty(len(fold_ids), dtype=object)
    for name, ids in (("train", fold.train), ("validation", fold.validation), ("test", fold.test)):
        role[np.searchsorted(fold_ids, ids)] = name
    # every fold holds every instance (as train, validation or test)
    columns = data.menus[menu]
    matrix = data.outcomes.columns_subset(columns)
    parts = []
    for budget, allocation in zip(budgets, allocations, strict=True):
        everything = oracle_label_table(data.backend, outcomes, allocation.lambda_, matrix)
        ids = everything.column("instance_id").to_numpy()
        if not np.array_equal(ids, fold_ids):
            raise RuntimeError(f"oracle labels of budget {budget} miss instances of the fold")
        actions = everything.column("action_id").to_numpy().copy()
        train_labels = solve.oracle_labels(allocation).sort_by("instance_id")
        train_ids = train_labels.column("instance_id").to_numpy()
        if not np.array_equal(train_ids, fold.train):
            raise RuntimeError(f"solve.oracle_labels of budget {budget} miss training instances")
        actions[np.searchsorted(ids, train_ids)] = train_labels.column("action_id").to_numpy()
        n = len(ids)
        parts.append(
            pa.table(
                {
                    "fold": pa.array(np.full(n, fold.fold), pa.int32()),
                    "menu": pa.array([menu] * n, pa.string()),
                    "budget": pa.array(np.full(n, budget), pa.float64()),
                    "instance_id": pa.array(ids, pa.int64()),
                    "split": pa.array(role[np.searchsorted(fold_ids, ids)].astype(str)),
                    "action_id": pa.array(actions, pa.int32()),
                    "lambda_star": pa.array(np.full(n, allocation.lambda_), pa.float64()),
                    "gap": everything.column("gap"),
                }
            )
        )
    return pa.concat_tables(parts)


def oracle_label_table(
    backend: ibis.BaseBackend, outcomes: ir.Table, lambda_: float, matrix: OutcomeMatrix
) -> pa.Table:
    """Every instance's oracle action at ``lambda_`` (``solve.oracle_actions``, ties to the
    cheaper action) and its Lagrangian gap max_a L_i(a) - min_a L_i(a)."""
    actions = backend.to_pyarrow(
        solve.oracle_actions(outcomes).select("instance_id", "action_id").order_by("instance_id"),
        params={solve.LAMBDA: float(lambda_)},
    )
    ids = actions.column("instance_id").to_numpy()
    lagrangian = matrix.subset(ids)
    value = lagrangian.acc - lambda_ * lagrangian.cost
    return pa.table(
        {
            "instance_id": pa.array(ids, pa.int64()),
            "action_id": actions.column("action_id").cast(pa.int32()),
            "gap": value.max(axis=1) - value.min(axis=1),
        }
    )


# --------------------------------------------------------------------------------------------
# Storage: rows out, objects back
# --------------------------------------------------------------------------------------------
def _planner_row(planner: CostPlanner, fold: int) -> dict:
    data = planner.model_bytes()
    return {
        "fold": fold,
        "method": planner.method,
        "mean_variable": planner.mean_variable.tolist(),
        "shift": planner.shift.tolist() if len(planner.shift) else None,
        "model_format": "cbm" if data is not None else "none",
        "model": data,
        "modelled": None if planner.modelled is None else planner.modelled.tolist(),
    }


def _state_row(named: tuple[str, Policy], fold: int) -> dict:
    name, policy = named
    return {
        "fold": fold,
        "policy": name,
        "family": policy.name,
        "state": json.dumps(policy.state()),
    }


def _model_row(policy: LearnedPolicy, train_rows: int) -> dict:
    data = policy.model_bytes()
    budgets = sorted(policy.calibrations)
    cal = [policy.calibrations[b] for b in budgets]
    return {
        "fold": policy.fold,
        "menu": policy.menu,
        "budget": policy.budget,
        "seed": policy.seed,
        "lambda_star": policy.lambda_,
        "decoder": policy.decoder,
        "classes": policy.action_ids[policy.classes].astype(np.int32).tolist(),
        "class_accuracy": policy.class_accuracy.tolist(),
        "feature_names": list(policy.feature_names),
        "calibration_budgets": budgets,
        "price_low": [c.price_low for c in cal],
        "price_high": [c.price_high for c in cal],
        "price_mix": [c.mix for c in cal],
        "validation_cost": [c.calibration_cost for c in cal],
        "train_rows": train_rows,
        "fit_seconds": policy.fit_seconds,
        "params": json.dumps(policy.params, sort_keys=True),
        "model_format": "cbm" if data is not None else "constant",
        "model": data,
    }


def read_planners(backend: ibis.BaseBackend, run_id: int) -> dict[int, CostPlanner]:
    """The run's cost planners by fold."""
    rows = backend.to_pyarrow(
        backend.table("cost_planners").filter(ibis._.run_id == run_id)
    ).to_pylist()
    return {
        row["fold"]: CostPlanner.from_stored(
            row["method"],
            np.asarray(row["mean_variable"], dtype=np.float64),
            np.asarray(row["shift"] or [], dtype=np.float64),
            row["model"],
            None if row["modelled"] is None else np.asarray(row["modelled"], dtype=bool),
        )
        for row in rows
    }


def read_baselines(backend: ibis.BaseBackend, run_id: int) -> dict[int, list[tuple[str, Policy]]]:
    """The run's fitted baselines by fold: (policy name, policy)."""
    from toolkit.policies import policy_from_state

    rows = backend.to_pyarrow(
        backend.table("policy_states").filter(ibis._.run_id == run_id).order_by(["fold", "policy"])
    ).to_pylist()
    out: dict[int, list[tuple[str, Policy]]] = {}
    for row in rows:
        policy = policy_from_state(row["family"], json.loads(row["state"]))
        out.setdefault(row["fold"], []).append((row["policy"], policy))
    return out


def read_policies(backend: ibis.BaseBackend, run_id: int) -> list[LearnedPolicy]:
    """The run's fitted classifiers back from ``policy_models`` (fold, budget, seed order)."""
    table = backend.to_pyarrow(
        backend.table("policy_models")
        .filter(ibis._.run_id == run_id)
        .order_by(["fold", "menu", "budget", "seed"])
    )
    listed = run_actions(backend, run_id)
    menus = action_menus(listed)  # the adaptive menu's classifiers chose among static too
    every = listed.column("action_id").to_numpy().astype(np.int32)
    out = []
    for row in table.to_pylist():
        actions = every[menus[row["menu"]]]
        calibrations = {
            b: PriceCalibration(low, high, mix, b, cost)
            for b, low, high, mix, cost in zip(
                row["calibration_budgets"],
                row["price_low"],
                row["price_high"],
                row["price_mix"],
                row["validation_cost"],
                strict=True,
            )
        }
        out.append(
            LearnedPolicy(
                budget=row["budget"],
                seed=row["seed"],
                lambda_=row["lambda_star"],
                action_ids=actions,
                classes=np.searchsorted(actions, np.asarray(row["classes"])),
                class_accuracy=np.asarray(row["class_accuracy"], dtype=np.float64),
                feature_names=tuple(row["feature_names"]),
                model=load_model(row["model"]),
                fold=row["fold"],
                menu=row["menu"],
                params=json.loads(row["params"]),
                fit_seconds=row["fit_seconds"],
                decoder=row["decoder"],
                calibrations=calibrations,
            )
        )
    return out


__all__ = [
    "LearnSummary",
    "fit_baselines",
    "learn",
    "read_baselines",
    "read_planners",
    "read_policies",
    "train_scope",
    "training_sample",
]
