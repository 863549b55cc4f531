"""Learn: a CatBoost classifier that predicts the oracle's action from cheap input features.

The stage, ``learn(backend, study, run_id)``:

1. computes every instance's features (``toolkit.features``) and stores them (``features``,
   ``feature_catalog``);
2. splits the instances into train / validation / test, by instance, seeded from the study seed,
   with each dataset split in the study's proportions (``splits``);
3. solves each budget B on the training split (``toolkit.solve``), giving lambda*(B), and labels
   every instance with its oracle action at lambda*(B) (``oracle_labels``);
4. fits one classifier per budget and CatBoost seed on the training labels and calibrates its
   budget price on the validation split (``policy_models``, ``feature_importance``).

Two deployments of a fitted classifier (``LearnedPolicy``):

- the raw argmax: ``argmax_a p(a | x)``, whatever it costs;
- budget-calibrated: ``argmax_a s(a | x) - mu * cost(a)`` with mu bisected so that the mean
  cost is B. The score is the expected accuracy ``s(a | x) = sum_k p(k | x) acc_k(a)``, where
  ``acc_k`` is the mean training accuracy curve of the instances whose oracle label is k
  (decoder ``expected_accuracy``; it is the Lagrangian of the classifier's posterior), or
  ``log p(a | x)`` (decoder ``log_probability``). On the default study the two
  keep the same share of the oracle's gain over uniform at B = 2 (0.64 vs 0.65, test-batch
  price) and the expected-accuracy decoder far more at larger budgets (B = 4: 0.22 vs 0.08;
  B = 8: 0.19 vs -0.02), so it is the default.

The validation price meets B on validation exactly; on test it is off by split-to-split
sampling noise, not a bias. Over 9 study seeds of the default study, the test budget error
ranged from -7% to +8%, with a mean of +0.7% and an RMS of 4.4%. Its sign is shared by every
budget and CatBoost seed of a run, because they all use the same split. The test split alone
contributes about 2% (the SD of the mean cost of 1,000 instances at a fixed price), so no
price set without the test inputs meets B within 1% reliably. Calibrating on cross-fitted
out-of-fold training predictions plus validation (4,000 rows) only lowered the RMS to 3.5% and
costs five more fits per policy, so it is not done.

The learner is close to what its features allow. On the default study, a CatBoost regressor
of ``acc_true(x, a)`` fitted on 60,000 independently simulated instances, priced on the test
batch, keeps 0.66-0.71 (B = 2) to 0.26 (B = 8) of the oracle's gain, 0.01-0.05 more than this
classifier. A policy that knows the latent difficulty keeps 0.76-0.93. The gap is in the
features, not in the classifier or its decoder.

CatBoost settings are chosen for speed on 2 cores (``catboost_params``): small categoricals are
one-hot encoded (no CTR statistics), feature combinations stop at one categorical, plain
boosting, 64 borders.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from toolkit import db, features, solve
from toolkit.config import LearnSpec, SplitSpec, Study
from toolkit.errors import StudyError
from toolkit.policies import (
    PriceCalibration,
    calibrate_price,
    log_probability_scores,
    onehot,
    priced_weights,
)

SPLITS = ("train", "validation", "test")
DECODERS = ("expected_accuracy", "log_probability")
DEFAULT_DECODER = "expected_accuracy"

_SPLIT_STREAM = 1_000_001
"""SeedSequence key of the split's random stream (the simulator's keys are shorter tuples)."""
_TRAIN_SAMPLE_STREAM = 1_000_002
"""SeedSequence key of the training sample's stream (``learn.max_train_rows``)."""


def training_sample(train_ids: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """The training instances CatBoost sees: all of them up to ``limit``, else a seeded uniform
    sample of ``limit`` (sorted), so a fit stays bounded in memory at any N."""
    if len(train_ids) <= limit:
        return train_ids
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _TRAIN_SAMPLE_STREAM])))
    return np.sort(rng.choice(train_ids, size=limit, replace=False))


ONE_HOT_MAX_SIZE = 16
"""Categoricals with at most this many values are one-hot encoded (MATH subjects: 7)."""


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------
def assign_splits(instances: pa.Table, split: SplitSpec, seed: int) -> pa.Table:
    """(instance_id, split): each dataset's instances shuffled with the study seed and cut in the
    declared proportions (largest remainder, so counts add up exactly).

    ``instances``: instance_id and dataset of every instance."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _SPLIT_STREAM])))
    ids = instances.column("instance_id").to_numpy()
    datasets = instances.column("dataset").to_numpy(zero_copy_only=False)
    order = np.argsort(ids, kind="stable")
    ids, datasets = ids[order], datasets[order]
    fractions = np.array([split.train, split.validation, split.test])
    labels = np.empty(len(ids), dtype=object)
    for name in sorted(set(datasets.tolist())):
        members = np.flatnonzero(datasets == name)
        want = fractions * len(members)
        counts = np.floor(want).astype(int)
        counts[np.argsort(-(want - counts), kind="stable")[: len(members) - counts.sum()]] += 1
        shuffled = rng.permutation(members)
        labels[shuffled] = np.repeat(np.array(SPLITS, dtype=object), counts)
    return pa.table({"instance_id": pa.array(ids, pa.int64()), "split": labels.astype(str)})


def split_outcomes(outcomes: ir.Table, splits: ir.Table, split: str) -> ir.Table:
    """The outcomes (instance_id, action_id, acc, cost) of one split's instances."""
    members = splits.filter(splits.split == split).select("instance_id")
    return outcomes.semi_join(members, "instance_id").select(
        "instance_id", "action_id", "acc", "cost"
    )


# --------------------------------------------------------------------------------------------
# Reading the run's data as matrices
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutcomeMatrix:
    """Outcomes of n instances x K actions, rows in instance_id order."""

    instance_ids: np.ndarray
    action_ids: np.ndarray
    acc: np.ndarray
    cost: np.ndarray

    def rows(self, instance_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.instance_ids, instance_ids)

    def subset(self, instance_ids: np.ndarray) -> OutcomeMatrix:
        index = self.rows(np.sort(instance_ids))
        return OutcomeMatrix(
            self.instance_ids[index], self.action_ids, self.acc[index], self.cost[index]
        )

    def weights(self, assignment: pa.Table) -> np.ndarray:
        """An assignment (instance_id, action_id, weight) as an n x K weight matrix."""
        out = np.zeros(self.acc.shape)
        rows = self.rows(assignment.column("instance_id").to_numpy())
        cols = np.searchsorted(self.action_ids, assignment.column("action_id").to_numpy())
        np.add.at(out, (rows, cols), assignment.column("weight").to_numpy())
        return out


def read_outcomes(backend: ibis.BaseBackend, outcomes: ir.Table) -> OutcomeMatrix:
    """Execute outcomes into an n x K matrix; every instance needs every action."""
    table = backend.to_pyarrow(
        outcomes.select("instance_id", "action_id", "acc", "cost").order_by(
            ["instance_id", "action_id"]
        )
    )
    ids = table.column("instance_id").to_numpy()
    actions = table.column("action_id").to_numpy()
    instance_ids = np.unique(ids)
    action_ids = np.unique(actions)
    n, k = len(instance_ids), len(action_ids)
    if n * k != table.num_rows:
        raise StudyError(
            f"outcomes: {table.num_rows} rows for {n} instances x {k} actions; learning needs "
            "an outcome for every instance and action"
        )
    return OutcomeMatrix(
        instance_ids,
        action_ids.astype(np.int32),
        table.column("acc").to_numpy().reshape(n, k),
        table.column("cost").to_numpy().reshape(n, k),
    )


def run_instances(backend: ibis.BaseBackend, run_id: int) -> ir.Table:
    return backend.table("instances").filter(ibis._.run_id == run_id)


def run_outcomes(backend: ibis.BaseBackend, run_id: int) -> ir.Table:
    return backend.table("outcomes").filter(ibis._.run_id == run_id)


def run_splits(backend: ibis.BaseBackend, run_id: int) -> ir.Table:
    return backend.table("splits").filter(ibis._.run_id == run_id)


def read_features(backend: ibis.BaseBackend, run_id: int) -> tuple[pa.Table, list[str]]:
    """Every instance's features (instance_id order) and the feature names."""
    instances = run_instances(backend, run_id)
    n_signals = int(backend.to_pyarrow(features.signal_count(instances)).as_py())
    wide = backend.to_pyarrow(
        features.instance_features(instances, n_signals=n_signals).order_by("instance_id")
    )
    return wide, features.feature_names(n_signals)


def feature_rows(wide: pa.Table, instance_ids: np.ndarray) -> pa.Table:
    """The rows of ``wide`` (sorted by instance_id) for the given instance ids, in that order."""
    index = np.searchsorted(wide.column("instance_id").to_numpy(), instance_ids)
    return wide.take(pa.array(index))


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------
def catboost_params(spec: LearnSpec, seed: int) -> dict:
    """CatBoost settings: the study's size and seed, and what keeps it fast on 2 cores.

    Measured on the default study (3,000 training rows, 20 features, 5 classes, depth 6, 300
    iterations, 2 threads): the subject as a CTR categorical 1.55 s a fit, plus a subject x
    level combination 2.1 s; one-hot subject 0.84 s; and 64 borders instead of 254 0.48 s.
    Ordered boosting: 4.4 s."""
    return {
        "loss_function": "MultiClass",
        "iterations": spec.iterations,
        "depth": spec.depth,
        "learning_rate": spec.learning_rate,
        "thread_count": spec.thread_count,
        "random_seed": seed,
        "one_hot_max_size": ONE_HOT_MAX_SIZE,
        "max_ctr_complexity": 1,
        "boosting_type": "Plain",
        "border_count": 64,
        "verbose": 0,
        "allow_writing_files": False,
    }


@dataclass(frozen=True)
class LearnedPolicy:
    """A fitted classifier of oracle actions at one budget, and what deploying it needs."""

    budget: float
    seed: int
    lambda_: float
    """lambda*(B) solved on the training split: the price the labels were made at."""
    action_ids: np.ndarray
    """(K,) every action id, in the order of the columns of probabilities."""
    classes: np.ndarray
    """Indices into action_ids of the classes the classifier saw (labels in training)."""
    class_accuracy: np.ndarray
    """(len(classes), K) mean training accuracy per action of the instances labelled k."""
    action_cost: np.ndarray
    """(K,) mean training cost per action: the planned cost the decoders price."""
    feature_names: tuple[str, ...]
    model: object | None
    """The CatBoostClassifier, or None when every training label is the same action."""
    params: dict = field(default_factory=dict)
    fit_seconds: float = 0.0
    decoder: str = DEFAULT_DECODER
    calibration: PriceCalibration | None = None
    """The budget price calibrated on the validation split."""

    def probabilities(self, frame) -> np.ndarray:
        """p(a | x): (n, K), zero for actions the classifier never saw."""
        out = np.zeros((len(frame), len(self.action_ids)))
        if self.model is None:
            out[:, self.classes[0]] = 1.0
        else:
            out[:, self.classes] = self.model.predict_proba(frame)
        return out

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """The calibrated deployment's score per action (see the module docstring)."""
        if self.decoder == "expected_accuracy":
            return probabilities[:, self.classes] @ self.class_accuracy
        return log_probability_scores(probabilities)

    def min_price(self) -> float | None:
        return 0.0 if self.decoder == "expected_accuracy" else None

    def calibrate(self, probabilities: np.ndarray, budget: float) -> PriceCalibration:
        return calibrate_price(
            self.scores(probabilities), self.action_cost, budget, min_price=self.min_price()
        )

    def argmax_weights(self, probabilities: np.ndarray) -> np.ndarray:
        """The raw deployment: the most probable action (ties: the cheaper)."""
        return onehot(probabilities.argmax(axis=1), len(self.action_ids))

    def calibrated_weights(
        self, probabilities: np.ndarray, calibration: PriceCalibration | None = None
    ) -> np.ndarray:
        """The calibrated deployment at ``calibration`` (default: the validation price)."""
        chosen = calibration or self.calibration
        if chosen is None:
            raise ValueError("the policy has no calibrated price")
        return priced_weights(self.scores(probabilities), self.action_cost, chosen)

    def model_bytes(self) -> bytes | None:
        """The model in CatBoost's binary format (a .cbm file's content).

        CatBoost stamps every model with a random guid and its finish time; both are blanked
        so that the same inputs and seed store the same bytes."""
        if self.model is None:
            return None
        metadata = self.model.get_metadata()
        metadata["model_guid"] = ""
        metadata["train_finish_time"] = ""
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.cbm")
            self.model.save_model(path, format="cbm")
            with open(path, "rb") as handle:
                return handle.read()

    def importances(self) -> np.ndarray:
        if self.model is None:
            return np.zeros(len(self.feature_names))
        return np.asarray(self.model.get_feature_importance(), dtype=np.float64)


def load_model(data: bytes | None):
    """A CatBoostClassifier from ``model_bytes``."""
    if data is None:
        return None
    from catboost import CatBoostClassifier

    model = CatBoostClassifier()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.cbm")
        with open(path, "wb") as handle:
            handle.write(data)
        model.load_model(path, format="cbm")
    return model


def fit_policy(
    frame,
    labels: np.ndarray,
    train: OutcomeMatrix,
    *,
    budget: float,
    lambda_: float,
    seed: int,
    spec: LearnSpec,
    decoder: str = DEFAULT_DECODER,
) -> LearnedPolicy:
    """Fit the classifier on the training split's features and oracle labels (action ids)."""
    from catboost import CatBoostClassifier, Pool

    label_index = np.searchsorted(train.action_ids, labels)
    classes = np.unique(label_index)
    class_accuracy = np.array([train.acc[label_index == k].mean(axis=0) for k in classes])
    action_cost = train.cost.mean(axis=0)
    params = catboost_params(spec, seed)
    start = time.perf_counter()
    model = None
    if len(classes) > 1:
        model = CatBoostClassifier(**params)
        y = np.searchsorted(classes, label_index)
        cat = [name for name in frame.columns if name in features.CATEGORICAL]
        model.fit(Pool(frame, y, cat_features=cat))
    return LearnedPolicy(
        budget=budget,
        seed=seed,
        lambda_=lambda_,
        action_ids=train.action_ids,
        classes=classes,
        class_accuracy=class_accuracy,
        action_cost=action_cost,
        feature_names=tuple(frame.columns),
        model=model,
        params=params,
        fit_seconds=time.perf_counter() - start,
        decoder=decoder,
    )


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------
@dataclass
class LearnSummary:
    """What the learn stage wrote."""

    rows: dict[str, int] = field(default_factory=dict)
    fit_seconds: list[float] = field(default_factory=list)
    policies: list[LearnedPolicy] = field(default_factory=list)


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


def learn(
    backend: ibis.BaseBackend, study: Study, run_id: int, *, decoder: str = DEFAULT_DECODER
) -> LearnSummary:
    """Features, splits, oracle labels and the fitted classifiers of one run, written to its
    tables (see the module docstring)."""
    if decoder not in DECODERS:
        raise StudyError(f"unknown decoder {decoder!r}; known: {', '.join(DECODERS)}")
    summary = LearnSummary()
    wide, names = read_features(backend, run_id)
    n_signals = sum(name.startswith("signal_") and name != "signal_mean" for name in names)
    summary.rows["features"] = db.append(backend, "features", features.long_features(wide), run_id)
    summary.rows["feature_catalog"] = db.append(
        backend, "feature_catalog", features.catalog_table(n_signals), run_id
    )

    instances = backend.to_pyarrow(run_instances(backend, run_id).select("instance_id", "dataset"))
    split_table = assign_splits(instances, study.split, study.study.seed)
    summary.rows["splits"] = db.append(backend, "splits", split_table, run_id)
    splits = run_splits(backend, run_id)
    outcomes = run_outcomes(backend, run_id)
    everything = read_outcomes(backend, outcomes)
    train_ids = _split_ids(split_table, "train")
    validation_ids = _split_ids(split_table, "validation")
    for name, ids in (("train", train_ids), ("validation", validation_ids)):
        if len(ids) == 0:
            raise StudyError(f"split: the {name} split of run {run_id} has no instances")
    fit_ids = training_sample(train_ids, study.learn.max_train_rows, study.study.seed)
    train = everything.subset(fit_ids)
    train_frame = features.to_frame(feature_rows(wide, fit_ids), names)
    validation_frame = features.to_frame(feature_rows(wide, validation_ids), names)

    budgets = list(study.budgets.values)
    train_outcomes = split_outcomes(outcomes, splits, "train")
    allocations = solve.solve_budgets(backend, train_outcomes, budgets)
    solve.write_allocations(backend, run_id, allocations, scope="train")

    label_parts, model_rows, importance_rows = [], [], []
    for budget, allocation in zip(budgets, allocations, strict=True):
        labels_all = oracle_label_table(backend, outcomes, allocation.lambda_, everything)
        train_labels = solve.oracle_labels(allocation).sort_by("instance_id")
        if not np.array_equal(train_labels.column("instance_id").to_numpy(), train_ids):
            raise RuntimeError(f"solve.oracle_labels of budget {budget} miss training instances")
        # the training labels are the solver's (its mixed instances resolved as it says); every
        # other instance is labelled with its oracle action at lambda*(B)
        label_ids = labels_all.column("instance_id").to_numpy()
        label_actions = labels_all.column("action_id").to_numpy().copy()
        label_actions[np.searchsorted(label_ids, train_ids)] = train_labels.column(
            "action_id"
        ).to_numpy()
        label_parts.append(
            pa.table(
                {
                    "budget": pa.array(np.full(len(label_ids), budget), pa.float64()),
                    "instance_id": pa.array(label_ids, pa.int64()),
                    "split": split_table.column("split").take(
                        pa.array(
                            np.searchsorted(split_table.column("instance_id").to_numpy(), label_ids)
                        )
                    ),
                    "action_id": pa.array(label_actions, pa.int32()),
                    "lambda_star": pa.array(
                        np.full(len(label_ids), allocation.lambda_), pa.float64()
                    ),
                    "gap": labels_all.column("gap"),
                }
            )
        )
        y = train_labels.column("action_id").to_numpy()[np.searchsorted(train_ids, fit_ids)]
        for seed in study.learn.seeds:
            policy = fit_policy(
                train_frame,
                y,
                train,
                budget=budget,
                lambda_=allocation.lambda_,
                seed=seed,
                spec=study.learn,
                decoder=decoder,
            )
            calibration = policy.calibrate(policy.probabilities(validation_frame), budget)
            policy = _with_calibration(policy, calibration)
            summary.policies.append(policy)
            summary.fit_seconds.append(policy.fit_seconds)
            model_rows.append(_model_row(policy, len(fit_ids)))
            for name, value in zip(policy.feature_names, policy.importances(), strict=True):
                importance_rows.append((budget, seed, name, float(value)))

    summary.rows["oracle_labels"] = db.append(
        backend, "oracle_labels", pa.concat_tables(label_parts), run_id
    )
    summary.rows["policy_models"] = db.append(
        backend, "policy_models", pa.Table.from_pylist(model_rows, schema=_MODEL_SCHEMA), run_id
    )
    summary.rows["feature_importance"] = db.append(
        backend,
        "feature_importance",
        pa.table(
            {
                "budget": pa.array([r[0] for r in importance_rows], pa.float64()),
                "seed": pa.array([r[1] for r in importance_rows], pa.int64()),
                "feature": pa.array([r[2] for r in importance_rows], pa.string()),
                "importance": pa.array([r[3] for r in importance_rows], pa.float64()),
            }
        ),
        run_id,
    )
    return summary


def _split_ids(split_table: pa.Table, name: str) -> np.ndarray:
    """The sorted instance ids of one split."""
    mask = pa.compute.equal(split_table.column("split"), name)
    return np.sort(split_table.filter(mask).column("instance_id").to_numpy())


def _with_calibration(policy: LearnedPolicy, calibration: PriceCalibration) -> LearnedPolicy:
    from dataclasses import replace

    return replace(policy, calibration=calibration)


_MODEL_SCHEMA = pa.schema(
    [
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("lambda_star", pa.float64()),
        ("decoder", pa.string()),
        ("classes", pa.list_(pa.int32())),
        ("class_accuracy", pa.list_(pa.list_(pa.float64()))),
        ("action_cost", pa.list_(pa.float64())),
        ("feature_names", pa.list_(pa.string())),
        ("price_low", pa.float64()),
        ("price_high", pa.float64()),
        ("price_mix", pa.float64()),
        ("validation_cost", pa.float64()),
        ("train_rows", pa.int64()),
        ("fit_seconds", pa.float64()),
        ("params", pa.string()),
        ("model_format", pa.string()),
        ("model", pa.binary()),
    ]
)


def _model_row(policy: LearnedPolicy, train_rows: int) -> dict:
    calibration = policy.calibration
    data = policy.model_bytes()
    return {
        "budget": policy.budget,
        "seed": policy.seed,
        "lambda_star": policy.lambda_,
        "decoder": policy.decoder,
        "classes": policy.action_ids[policy.classes].astype(np.int32).tolist(),
        "class_accuracy": policy.class_accuracy.tolist(),
        "action_cost": policy.action_cost.tolist(),
        "feature_names": list(policy.feature_names),
        "price_low": calibration.price_low,
        "price_high": calibration.price_high,
        "price_mix": calibration.mix,
        "validation_cost": calibration.calibration_cost,
        "train_rows": train_rows,
        "fit_seconds": policy.fit_seconds,
        "params": json.dumps(policy.params, sort_keys=True),
        "model_format": "cbm" if data is not None else "constant",
        "model": data,
    }


def read_policies(backend: ibis.BaseBackend, run_id: int) -> list[LearnedPolicy]:
    """The run's fitted policies back from ``policy_models``."""
    table = backend.to_pyarrow(
        backend.table("policy_models").filter(ibis._.run_id == run_id).order_by(["budget", "seed"])
    )
    actions = np.sort(
        backend.to_pyarrow(
            backend.table("actions").filter(ibis._.run_id == run_id).select("action_id")
        )
        .column("action_id")
        .to_numpy()
    ).astype(np.int32)
    out = []
    for row in table.to_pylist():
        out.append(
            LearnedPolicy(
                budget=row["budget"],
                seed=row["seed"],
                lambda_=row["lambda_star"],
                action_ids=actions,
                classes=np.searchsorted(actions, np.asarray(row["classes"])),
                class_accuracy=np.asarray(row["class_accuracy"], dtype=np.float64),
                action_cost=np.asarray(row["action_cost"], dtype=np.float64),
                feature_names=tuple(row["feature_names"]),
                model=load_model(row["model"]),
                params=json.loads(row["params"]),
                fit_seconds=row["fit_seconds"],
                decoder=row["decoder"],
                calibration=PriceCalibration(
                    row["price_low"],
                    row["price_high"],
                    row["price_mix"],
                    row["budget"],
                    row["validation_cost"],
                ),
            )
        )
    return out


__all__ = [
    "DECODERS",
    "SPLITS",
    "LearnSummary",
    "LearnedPolicy",
    "OutcomeMatrix",
    "assign_splits",
    "catboost_params",
    "fit_policy",
    "learn",
    "load_model",
    "read_features",
    "read_outcomes",
    "read_policies",
]
