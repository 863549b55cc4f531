"""Outcomes: the outcomes table of the static actions (``estimate_outcomes``): per model, its
accuracy estimator by ``actions.aggregation`` and its costs, the columns laid out in
(instance_id, action_id) order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.config import Study, resolve_model
from toolkit.outcomes.accuracy import (
    best_of_accuracy,
    majority_vote_accuracies_iid,
    majority_vote_accuracy,
    pass_at_b,
)
from toolkit.outcomes.actions import Prompts, Usage, action_cost, action_table
from toolkit.outcomes.profiles import profile_keys
from toolkit.presets import ModelPreset
from toolkit.scores import instance_matrices, vote_weights, weighted_vote_accuracy


def estimate_outcomes(
    study: Study,
    profiles: pa.Table,
    prompt_tokens: pa.Table,
    truth: pa.Table | None = None,
    levels: pa.Table | None = None,
    scored: pa.Table | None = None,
) -> pa.Table:
    """The outcomes table (instance_id, action_id, acc, cost, known_cost, acc_true, samples,
    acc_se) of the static actions.

    profiles: ``answer_profiles`` executed; prompt_tokens: (instance_id, prompt_tokens);
    truth: simulation's (instance_id, model, p_correct, p_wrong), or None for real data;
    levels: ``score_levels`` executed (needed for best-of-b); scored:
    ``toolkit.scores.scored_samples`` executed (needed for the score-weighted vote).
    """
    actions = action_table(study)
    prompts = Prompts(prompt_tokens)
    parts = []
    for spec in study.models:
        model = resolve_model(spec)
        mine = profiles.filter(pa.compute.equal(profiles.column("model"), spec.name))
        mine = mine.sort_by("instance_id")
        if mine.num_rows == 0:
            continue
        instance_ids = mine.column("instance_id").to_numpy()
        usage = Usage.of(mine, instance_ids, prompts)
        rows = _static_actions(actions, spec.name)
        estimate = _accuracy_estimator(
            study, spec.name, mine, instance_ids, truth, levels, scored, [r["b"] for r in rows]
        )
        del mine
        parts.append(_model_outcomes(study, model, instance_ids, usage, estimate, rows))
    return _outcome_table(parts)


_Estimate = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""An action's (acc, acc_true or None without a truth, acc_se or None where exact) per instance."""
_Estimator = Callable[[int, int], _Estimate]
"""One model's ``_Estimate`` of b samples for the action with that action_id: ``(b, action_id)``."""


def _accuracy_estimator(
    study: Study,
    model_name: str,
    profiles: pa.Table,
    instance_ids: np.ndarray,
    truth: pa.Table | None,
    levels: pa.Table | None,
    scored: pa.Table | None,
    bs: list[int],
) -> _Estimator:
    """How the accuracy of b samples of one model is estimated (``actions.aggregation``), from
    its profiles (in instance_id order) and what else the aggregation needs, for the sample
    counts ``bs`` of its actions. Keeps only what the estimates need, not the profiles."""
    aggregation = study.actions.aggregation
    if aggregation == "majority":
        return _majority_estimator(profiles, model_truth(truth, model_name), bs)
    if aggregation == "best_of":
        if levels is None:
            raise ValueError("best-of-b needs the samples' score levels")
        return _best_of_estimator(levels, model_name, instance_ids)
    if aggregation == "weighted":
        if scored is None:
            raise ValueError("a score-weighted vote needs the samples' scores")
        return _weighted_estimator(study, scored, model_name, instance_ids)
    return _pass_at_estimator(profiles, model_truth(truth, model_name))


def _majority_estimator(
    profiles: pa.Table, known_truth: tuple[np.ndarray, np.ndarray] | None, bs: list[int]
) -> _Estimator:
    """Majority vote: exact per distinct profile (``profile_keys``), and under the truth (every
    b of ``bs`` in one pass)."""
    distinct_n, distinct_correct, distinct_wrong, inverse = profile_keys(profiles)
    true_by_b = None
    if known_truth is not None:
        columns = sorted(set(bs))
        true_by_b = dict(
            zip(columns, majority_vote_accuracies_iid(*known_truth, columns).T, strict=True)
        )

    def estimate(b: int, action_id: int) -> _Estimate:
        acc = majority_vote_accuracy(distinct_correct, distinct_wrong, distinct_n, b)[inverse]
        return acc, None if true_by_b is None else true_by_b[b], None

    return estimate


def _best_of_estimator(levels: pa.Table, model_name: str, instance_ids: np.ndarray) -> _Estimator:
    """Best-of-b by a score (real logs only: no truth)."""
    model_levels = levels.filter(pa.compute.equal(levels.column("model"), model_name))

    def estimate(b: int, action_id: int) -> _Estimate:
        level_ids, acc = best_of_accuracy(model_levels, b)
        if not np.array_equal(level_ids, instance_ids):
            raise ValueError(f"score levels of model {model_name!r} miss instances")
        return acc, None, None

    return estimate


def _weighted_estimator(
    study: Study, scored: pa.Table, model_name: str, instance_ids: np.ndarray
) -> _Estimator:
    """The score-weighted vote (real logs only: no truth), a Monte Carlo over orders seeded by
    the study seed and the action."""
    scored_ids, keys, scores, correct = instance_matrices(scored, model_name)
    if not np.array_equal(scored_ids, instance_ids):
        raise ValueError(f"scored samples of model {model_name!r} miss instances")
    scores = vote_weights(scores, study.actions.score_weights, model_name)

    def estimate(b: int, action_id: int) -> _Estimate:
        seed = [study.study.seed, action_id]
        acc, acc_se = weighted_vote_accuracy(
            keys, scores, correct, b, orders=study.estimation.orders, seed=seed
        )
        return acc, None, acc_se

    return estimate


def _pass_at_estimator(
    profiles: pa.Table, known_truth: tuple[np.ndarray, np.ndarray] | None
) -> _Estimator:
    """pass@b: the unbiased estimator, and ``1 - (1 - p)^b`` under the truth."""
    n = profiles.column("n").to_numpy()
    n_correct = profiles.column("n_correct").to_numpy()

    def estimate(b: int, action_id: int) -> _Estimate:
        acc_true = 1.0 - (1.0 - known_truth[0]) ** b if known_truth is not None else None
        return pass_at_b(n, n_correct, b), acc_true, None

    return estimate


def _static_actions(actions: pa.Table, model_name: str) -> list[dict]:
    """The rows of ``action_table`` of one model's static actions."""
    static = pa.compute.equal(actions.column("menu"), "static")
    mine = pa.compute.and_(pa.compute.equal(actions.column("model"), model_name), static)
    return actions.filter(mine).to_pylist()


def _model_outcomes(
    study: Study,
    model: ModelPreset,
    instance_ids: np.ndarray,
    usage: Usage,
    estimate: _Estimator,
    action_rows: list[dict],
) -> _ModelOutcomes:
    """One model's outcomes of its static actions."""
    part = _ModelOutcomes(instance_ids)
    for row in action_rows:
        b = row["b"]
        acc, acc_true, acc_se = estimate(b, row["action_id"])
        part.action_ids.append(row["action_id"])
        part.acc.append(np.clip(acc, 0.0, 1.0))
        cost, known = action_cost(study.actions, b, usage, model)
        part.cost.append(cost)
        part.known_cost.append(known)
        part.acc_true.append(None if acc_true is None else np.clip(acc_true, 0.0, 1.0))
        part.samples.append(np.full(len(instance_ids), float(b)))
        part.acc_se.append(acc_se)
    return part


@dataclass
class _ModelOutcomes:
    """One model's outcomes: its instances (ascending) and per action a column of each."""

    instance_ids: np.ndarray
    action_ids: list[int] = field(default_factory=list)
    acc: list[np.ndarray] = field(default_factory=list)
    cost: list[np.ndarray] = field(default_factory=list)
    known_cost: list[np.ndarray] = field(default_factory=list)
    acc_true: list[np.ndarray | None] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    acc_se: list[np.ndarray | None] = field(default_factory=list)


def _outcome_table(parts: list[_ModelOutcomes]) -> pa.Table:
    """The outcomes in (instance_id, action_id) order.

    When every model has the same instances (always, in simulation), that order is each
    instance's actions side by side, model after model (action ids run model-major): the
    columns are interleaved directly, with no sort and no second copy of the table. Otherwise
    the parts are concatenated and sorted."""
    truths = [t is None for part in parts for t in part.acc_true]
    estimated = any(se is not None for part in parts for se in part.acc_se)
    for part in parts if estimated else ():  # a Monte Carlo's error, NaN where exact (nulled)
        part.acc_se = [
            np.full(len(part.instance_ids), np.nan) if se is None else se for se in part.acc_se
        ]
    if (
        parts
        and all(np.array_equal(parts[0].instance_ids, p.instance_ids) for p in parts[1:])
        and (all(truths) or not any(truths))
    ):
        ids = parts[0].instance_ids
        k = sum(len(p.action_ids) for p in parts)

        def interleave(name: str) -> np.ndarray:
            """One column of the table; each per-action array is dropped once copied, so
            the table and its parts are never all in memory at once."""
            out = np.empty((len(ids), k), dtype=np.float64)
            column = 0
            for part in parts:
                values = getattr(part, name)
                while values:
                    out[:, column] = values.pop(0)
                    column += 1
            return out.ravel()

        action_ids = np.array([a for p in parts for a in p.action_ids], dtype=np.int32)
        columns = {
            "instance_id": np.repeat(ids, k),
            "action_id": pa.array(np.tile(action_ids, len(ids)), pa.int32()),
            "acc": interleave("acc"),
            "cost": interleave("cost"),
            "known_cost": interleave("known_cost"),
            "acc_true": pa.nulls(len(ids) * k, pa.float64())
            if all(truths)
            else interleave("acc_true"),
            "samples": interleave("samples"),
            "acc_se": nullable_floats(interleave("acc_se") if estimated else None, len(ids) * k),
        }
        return pa.table(columns)
    tables = []
    for part in parts:
        rows = len(part.instance_ids)
        for action_id, acc, cost, known, acc_true, samples, acc_se in zip(
            part.action_ids,
            part.acc,
            part.cost,
            part.known_cost,
            part.acc_true,
            part.samples,
            part.acc_se,
            strict=True,
        ):
            tables.append(
                pa.table(
                    {
                        "instance_id": part.instance_ids,
                        "action_id": pa.array(np.full(rows, action_id), pa.int32()),
                        "acc": acc,
                        "cost": cost,
                        "known_cost": known,
                        "acc_true": pa.nulls(rows, pa.float64())
                        if acc_true is None
                        else pa.array(acc_true),
                        "samples": samples,
                        "acc_se": nullable_floats(acc_se, rows),
                    }
                )
            )
    order = [("instance_id", "ascending"), ("action_id", "ascending")]
    return pa.concat_tables(tables).sort_by(order)


def nullable_floats(values: np.ndarray | None, n: int) -> pa.Array:
    """A float column with NaN as null; all null when ``values`` is None."""
    if values is None:
        return pa.nulls(n, pa.float64())
    return pa.array(values, pa.float64(), from_pandas=True)


def model_truth(truth: pa.Table | None, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One model's (p_correct (n,), p_wrong (n, k)) in instance_id order from the simulation's
    truth, or None without one."""
    if truth is None:
        return None
    mine = truth.filter(pc.equal(truth.column("model"), model))
    ids = mine.column("instance_id").to_numpy()
    if not np.all(ids[1:] > ids[:-1]):  # the simulation writes its truth in order: no sort
        mine = mine.sort_by("instance_id")
    p_wrong = mine.column("p_wrong").combine_chunks()
    return (
        mine.column("p_correct").to_numpy(),
        p_wrong.flatten().to_numpy().reshape(mine.num_rows, -1),
    )
