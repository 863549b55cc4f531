"""The learned policy: a CatBoost classifier of the oracle's action, and its deployments.

One classifier per budget B (and CatBoost seed, and fold) is fitted on the training split's
oracle labels at lambda*(B) (``toolkit.learn``). Deployed (``LearnedDeployment``), it allocates
a batch of ``toolkit.policies.Inputs`` at a budget with the classifier fitted for the declared
budget nearest to it (in log scale):

- ``learned_argmax``: ``argmax_a p(a | x)``, whatever it costs;
- ``learned_calibrated``: ``argmax_a s(a | x) - mu * planned(a)`` with mu calibrated on the
  validation split (stored with the classifier, for every budget of the run's grid);
- ``learned_batch``: the same score, mu set on the batch's own inputs (never its outcomes),
  so the batch meets B exactly in planned cost.

The score is the expected accuracy ``s(a | x) = sum_k p(k | x) acc_k(a)``, where ``acc_k`` is the
mean training accuracy curve of the instances whose oracle label is k (decoder
``expected_accuracy``; it is the Lagrangian of the classifier's posterior), or ``log p(a | x)``
(decoder ``log_probability``). On the default study the two keep the same share of the oracle's
gain over uniform at B = 2 (0.64 vs 0.65, test-batch price) and the expected-accuracy decoder
far more at larger budgets (B = 4: 0.22 vs 0.08; B = 8: 0.19 vs -0.02), so it is the default.

CatBoost settings are chosen for speed on 2 cores (``catboost_params``): small categoricals are
one-hot encoded (no CTR statistics), feature combinations stop at one categorical, plain
boosting, 64 borders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from toolkit import features
from toolkit.config import LearnSpec
from toolkit.model_bytes import from_bytes, to_bytes
from toolkit.policies import (
    Decision,
    Inputs,
    LastCurve,
    Policy,
    PriceCalibration,
    PriceCurve,
    log_probability_scores,
    onehot,
    priced_decision,
)

DECODERS = ("expected_accuracy", "log_probability")
DEFAULT_DECODER = "expected_accuracy"
DEPLOYMENTS = ("learned_argmax", "learned_calibrated", "learned_batch")
ONE_HOT_MAX_SIZE = 16
"""Categoricals with at most this many values are one-hot encoded (MATH subjects: 7)."""

TEXT_PROCESSING = {
    "tokenizers": [
        {
            "tokenizer_id": "Space",
            "separator_type": "ByDelimiter",
            "delimiter": " ",
            "lowercasing": "true",
        }
    ],
    "dictionaries": [
        {
            "dictionary_id": "Word",
            "max_dictionary_size": "5000",
            "occurrence_lower_bound": "3",
            "gram_order": "1",
        }
    ],
    "feature_processing": {
        "default": [
            {
                "dictionaries_names": ["Word"],
                "feature_calcers": ["NaiveBayes", "BM25"],
                "tokenizers_names": ["Space"],
            }
        ]
    },
}
"""How CatBoost turns the question text into numbers: lowercased words seen at least 3 times,
scored per class by naive Bayes and BM25 (both computed online over permutations, so a text
does not see its own label). CatBoost's default adds a bag of words over words and bigrams, one
0/1 feature per dictionary entry: on 300 MATH-500 problems with 9 classes (300 iterations,
depth 6, 2 threads) a fit took 193 s with it (another run shared the cores), 10.6 s with the
100 most frequent words, and 1.9 s with these two calcers (``fit_policy``'s settings). It
made a 5-fold study on real logs take hours (GSM8K: 1 h 53 min)."""


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
        "text_processing": TEXT_PROCESSING,
    }


@dataclass
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
    feature_names: tuple[str, ...]
    model: Any | None
    """The CatBoostClassifier, or None when every training label is the same action."""
    fold: int = 0
    menu: str = "static"
    """The actions it chooses among (``actions.menu``)."""
    params: dict = field(default_factory=dict)
    fit_seconds: float = 0.0
    decoder: str = DEFAULT_DECODER
    calibrations: dict[float, PriceCalibration] = field(default_factory=dict)
    """Validation-split prices, by budget (the declared budget and the grid budgets it serves)."""
    _cached: tuple[Any, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _last: LastCurve = field(default_factory=LastCurve, repr=False, compare=False)

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """p(a | x): (n, K), zero for actions the classifier never saw (the last frame's are
        kept: every budget of an evaluation asks for the same batch)."""
        if self._cached is not None and self._cached[0] is frame:
            return self._cached[1]
        out = np.zeros((len(frame), len(self.action_ids)))
        if self.model is None:
            out[:, self.classes[0]] = 1.0
        else:
            out[:, self.classes] = self.model.predict_proba(frame[list(self.feature_names)])
        self._cached = (frame, out)
        return out

    def keep(self, frame: pd.DataFrame, probabilities: np.ndarray) -> None:
        """Keep ``probabilities`` as those of ``frame`` (computed piecewise, as a large batch
        is), as ``probabilities`` keeps its last frame's."""
        self._cached = (frame, probabilities)
        self._last.clear()

    def forget_batch(self) -> None:
        """Drop the last batch's probabilities and price curve (``probabilities``,
        ``price_curve``): they hold arrays the size of the batch, and a policy kept after its
        calibration (the learn stage keeps every one) prices no batch again."""
        self._cached = None
        self._last.clear()

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """The priced deployments' score per action (see the module docstring)."""
        if self.decoder == "expected_accuracy":
            return probabilities[:, self.classes] @ self.class_accuracy
        return log_probability_scores(probabilities)

    def min_price(self) -> float | None:
        return 0.0 if self.decoder == "expected_accuracy" else None

    def price_curve(self, frame: pd.DataFrame, planned: np.ndarray) -> PriceCurve:
        """The priced deployments' ``PriceCurve`` on a batch (the last batch's is kept, as its
        probabilities are: every budget of an evaluation prices the same batch)."""
        return self._last.get(
            (frame, planned),
            None,
            lambda: PriceCurve(
                self.scores(self.probabilities(frame)), planned, min_price=self.min_price()
            ),
        )

    def calibrate(self, frame: pd.DataFrame, planned: np.ndarray, budget: float):
        """The price that meets ``budget`` in planned cost on these instances."""
        return self.price_curve(frame, planned).calibrate(budget)

    def decide(self, inputs: Inputs, budget: float, deployment: str) -> Decision:
        """One deployment's allocation of a batch (``DEPLOYMENTS``)."""
        probabilities = self.probabilities(inputs.frame)
        if deployment == "learned_argmax":
            weights = onehot(probabilities.argmax(axis=1), len(self.action_ids))
            return Decision(weights, "none", description="argmax_a p(a | x)")
        curve = self.price_curve(inputs.frame, inputs.planned_cost)
        rule = f"argmax_a {self.decoder} score - mu planned cost(a), mu from the "
        if deployment != "learned_calibrated":
            return curve.decision(budget, "test_features", rule + "batch's inputs")
        if budget not in self.calibrations:
            raise ValueError(f"no validation price for budget {budget:g}")
        return priced_decision(
            curve.scores,
            inputs.planned_cost,
            self.calibrations[budget],
            "validation",
            rule + "validation split",
        )

    def model_bytes(self) -> bytes | None:
        """The model in CatBoost's binary format (a .cbm file's content).

        CatBoost stamps every model with a random guid and its finish time; both are blanked
        so that the same inputs and seed store the same bytes."""
        return None if self.model is None else to_bytes(self.model)

    def importances(self) -> np.ndarray:
        if self.model is None:
            return np.zeros(len(self.feature_names))
        return np.asarray(self.model.get_feature_importance(), dtype=np.float64)


def load_model(data: bytes | None):
    """A CatBoostClassifier from ``model_bytes``."""
    if data is None:
        return None
    from catboost import CatBoostClassifier

    return from_bytes(CatBoostClassifier, data)


def fit_policy(
    frame: pd.DataFrame,
    labels: np.ndarray,
    acc: np.ndarray,
    action_ids: np.ndarray,
    *,
    budget: float,
    lambda_: float,
    seed: int,
    spec: LearnSpec,
    fold: int = 0,
    decoder: str = DEFAULT_DECODER,
    menu: str = "static",
) -> LearnedPolicy:
    """Fit the classifier on the training split's features and oracle labels (action ids);
    ``acc``: the training instances' (n, K) accuracies, for the decoder's class curves."""
    from catboost import CatBoostClassifier, Pool

    label_index = np.searchsorted(action_ids, labels)
    classes = np.unique(label_index)
    class_accuracy = np.array([acc[label_index == k].mean(axis=0) for k in classes])
    params = catboost_params(spec, seed)
    start = time.perf_counter()
    model = None
    if len(classes) > 1:
        model = CatBoostClassifier(**params)
        y = np.searchsorted(classes, label_index)
        model.fit(
            Pool(
                frame,
                y,
                cat_features=features.categorical_columns(frame),
                text_features=features.text_columns(frame) or None,
            )
        )
    return LearnedPolicy(
        budget=budget,
        seed=seed,
        lambda_=lambda_,
        action_ids=action_ids,
        classes=classes,
        class_accuracy=class_accuracy,
        feature_names=tuple(frame.columns),
        model=model,
        fold=fold,
        menu=menu,
        params=params,
        fit_seconds=time.perf_counter() - start,
        decoder=decoder,
    )


CONCURRENT_FITS = 2
"""CatBoost fits run at once (``fit_policies``). CatBoost releases the GIL while it trains,
and at the default study's size (3,000 rows, 2 threads a fit) one fit leaves a core idle
part of the time: 6 fits took 1.14 s one after another and 0.93 s two at a time, with
identical models (a fit's result does not depend on what runs beside it)."""


def fit_policies(
    jobs: Sequence[dict], on_fit: Callable[[], None] | None = None
) -> list[LearnedPolicy]:
    """``fit_policy(**job)`` for every job, ``CONCURRENT_FITS`` at a time, in the jobs' order;
    ``on_fit`` is called (on the calling thread) as each fit is collected. No query runs while
    they do: the fits read only the frames and arrays they are given."""
    from concurrent.futures import ThreadPoolExecutor

    out = []
    with ThreadPoolExecutor(max_workers=CONCURRENT_FITS) as pool:
        for policy in pool.map(lambda job: fit_policy(**job), jobs):
            out.append(policy)
            if on_fit is not None:
                on_fit()
    return out


def nearest_budget(budgets: Sequence[float], budget: float) -> float:
    """The budget of ``budgets`` nearest to ``budget`` in log scale (the smaller on a tie)."""
    ordered = sorted(budgets)
    distance = [abs(np.log(b) - np.log(budget)) for b in ordered]
    return ordered[int(np.argmin(distance))]


@dataclass
class LearnedDeployment(Policy):
    """One deployment of one CatBoost seed's classifiers (one per declared budget): at a budget,
    the classifier of the nearest declared budget decides."""

    deployment: str
    classifiers: dict[float, LearnedPolicy]
    name: ClassVar[str] = "learned"

    @property
    def seed(self) -> int:
        return next(iter(self.classifiers.values())).seed

    def classifier_for(self, budget: float) -> LearnedPolicy:
        return self.classifiers[nearest_budget(list(self.classifiers), budget)]

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        return self.classifier_for(budget).decide(inputs, budget, self.deployment)


__all__ = [
    "LabelKnown",
    "DECODERS",
    "DEFAULT_DECODER",
    "DEPLOYMENTS",
    "LearnedDeployment",
    "LearnedPolicy",
    "catboost_params",
    "fit_policies",
    "fit_policy",
    "load_model",
    "nearest_budget",
]


@dataclass
class LabelKnown(Policy):
    """A reference, not a deployment: the learned policy's decoder told each test instance's
    oracle label, as a perfect classifier would be. Its score is the mean training accuracy
    curve of the instances with that label, priced on the batch: what the features could buy
    at best if they predicted the label exactly (the features' ceiling)."""

    classifiers: dict[float, LearnedPolicy]
    labels: dict[float, dict[int, int]]
    """Per declared budget, each test instance's oracle label (an action id)."""
    name: ClassVar[str] = "label_known"
    _last: LastCurve = field(default_factory=LastCurve, repr=False, compare=False)

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        declared = nearest_budget(list(self.classifiers), budget)
        policy = self.classifiers[declared]
        label_of = self.labels[declared]
        column = np.searchsorted(
            policy.action_ids, [label_of[int(i)] for i in inputs.instance_ids.tolist()]
        )

        def priced() -> PriceCurve:
            probabilities = np.zeros((len(inputs), len(policy.action_ids)))
            probabilities[np.arange(len(inputs)), column] = 1.0
            scores = policy.scores(probabilities)
            unseen = ~np.isin(column, policy.classes)  # a label no training instance had
            if unseen.any():
                scores[unseen] = policy.class_accuracy.mean(axis=0)
            return PriceCurve(scores, inputs.planned_cost, min_price=policy.min_price())

        curve = self._last.get((inputs.frame, inputs.planned_cost), declared, priced)
        return curve.decision(
            budget,
            "test_outcomes",
            "the decoder told the oracle label (a ceiling reference, not deployable)",
        )
