"""The measures of one allocation at one budget against its references: every metric with its
paired bootstrap interval (``metric_rows``, names in ``METRICS``), the regret bound check
(``regret_row``), and the imitation of the oracle labels as weighted confusion counts
(``confusion_rows``) and per-action recall and precision (``class_rows``)."""

from __future__ import annotations

import numpy as np

from toolkit.evaluate.compare import References
from toolkit.evaluate.runs import TestSet
from toolkit.metrics import PairedBootstrap, defined, interval, ratio


def _per_instance(
    test: TestSet, refs: References, weights: np.ndarray, matched: np.ndarray | None
) -> dict[str, np.ndarray]:
    """The per-instance quantities whose means make every metric (a mean or a ratio of two)."""
    o = test.outcomes
    n, k = weights.shape
    lagrangian = o.acc - refs.lambda_[:, None] * o.cost
    agree = weights[np.arange(n), refs.labels]
    labelled = np.zeros((n, k))
    labelled[np.arange(n), refs.labels] = 1.0
    nan = np.full(n, np.nan)
    m = nan if matched is None else matched
    return {
        "acc": (weights * o.acc).sum(axis=1),
        "planned": (weights * test.planned).sum(axis=1),
        "cost": (weights * o.cost).sum(axis=1),
        "matched": m,
        "vs_best_fixed": nan if refs.best_fixed is None else m - refs.best_fixed,
        "best_fixed": nan if refs.best_fixed is None else refs.best_fixed,
        "vs_uniform": nan if refs.uniform is None else m - refs.uniform,
        "uniform": nan if refs.uniform is None else refs.uniform,
        "oracle_gain": nan if refs.best_fixed is None else refs.oracle - refs.best_fixed,
        "heldout_gain": nan if refs.noise is None else refs.noise.heldout,
        "agree": agree,
        "regret": lagrangian.max(axis=1) - (weights * lagrangian).sum(axis=1),
        "hits": labelled * agree[:, None],
        "support": labelled,
    }


def _metrics(means: dict[str, np.ndarray], budget: float) -> dict[str, np.ndarray | float]:
    """Metrics from the means of ``_per_instance`` (scalars, or one value per resample); NaN
    marks an undefined value."""
    with np.errstate(divide="ignore", invalid="ignore"):
        support = means["support"]
        recall = np.where(support > 0, means["hits"] / np.where(support > 0, support, 1.0), np.nan)
        balanced = np.nanmean(recall, axis=-1) if np.isfinite(recall).any() else np.nan
    return {
        "accuracy": means["acc"],
        "planned_cost": means["planned"],
        "cost": means["cost"],
        "budget_error": means["cost"] / budget - 1.0,
        "matched_accuracy": means["matched"],
        "gain_vs_best_fixed": means["vs_best_fixed"],
        "relative_gain_vs_best_fixed": ratio(means["vs_best_fixed"], means["best_fixed"]),
        "gain_vs_uniform": means["vs_uniform"],
        "relative_gain_vs_uniform": ratio(means["vs_uniform"], means["uniform"]),
        "oracle_share": ratio(means["vs_best_fixed"], means["oracle_gain"]),
        "oracle_share_heldout": ratio(means["vs_best_fixed"], means["heldout_gain"]),
        "imitation_accuracy": means["agree"],
        "balanced_accuracy": balanced,
        "lagrangian_regret": means["regret"],
    }


METRICS = (
    "accuracy",
    "planned_cost",
    "cost",
    "budget_error",
    "matched_accuracy",
    "gain_vs_best_fixed",
    "relative_gain_vs_best_fixed",
    "gain_vs_uniform",
    "relative_gain_vs_uniform",
    "oracle_share",
    "oracle_share_heldout",
    "imitation_accuracy",
    "balanced_accuracy",
    "lagrangian_regret",
    "regret_bound",
)


def metric_rows(
    test: TestSet,
    refs: References,
    bootstrap: PairedBootstrap,
    key: dict,
    weights: np.ndarray,
    matched: np.ndarray | None,
    bound: float,
) -> list[dict]:
    """Every metric of one allocation with its paired bootstrap interval, and the regret
    bound without one."""
    quantities = _per_instance(test, refs, weights, matched)
    names = list(quantities)
    widths = [1 if quantities[q].ndim == 1 else quantities[q].shape[1] for q in names]
    stacked = np.column_stack([quantities[q] for q in names])
    offsets = np.cumsum([0, *widths])

    def unstack(values: np.ndarray) -> dict[str, np.ndarray]:
        return {
            q: values[..., a] if w == 1 else values[..., a : a + w]
            for q, a, w in zip(names, offsets[:-1], widths, strict=True)
        }

    point = _metrics(unstack(stacked.mean(axis=0)), refs.budget)
    finite = np.where(np.isfinite(stacked), stacked, 0.0)
    sampled = _metrics(unstack(bootstrap.means(finite)), refs.budget)
    rows = []
    for name, value in point.items():
        stored = defined(value)
        low, high = (None, None) if stored is None else interval(np.asarray(sampled[name], float))
        rows.append({**key, "metric": name, "value": stored, "ci_low": low, "ci_high": high})
    rows.append({**key, "metric": "regret_bound", "value": bound, "ci_low": None, "ci_high": None})
    return rows


def regret_row(test: TestSet, refs: References, key: dict, weights: np.ndarray) -> dict:
    """The regret bound check: Lagrangian regret <= imitation error * Delta_max."""
    o = test.outcomes
    n = weights.shape[0]
    lagrangian = o.acc - refs.lambda_[:, None] * o.cost
    gaps = lagrangian.max(axis=1) - lagrangian.min(axis=1)
    regret = float((lagrangian.max(axis=1) - (weights * lagrangian).sum(axis=1)).mean())
    eps = 1.0 - float(weights[np.arange(n), refs.labels].mean())
    delta_max = float(gaps.max())
    bound = eps * delta_max
    return {
        **key,
        "lambda_star": float(np.mean(refs.lambda_)),
        "imitation_error": eps,
        "delta_max": delta_max,
        "mean_gap": float(gaps.mean()),
        "regret": regret,
        "bound": bound,
        "holds": bool(regret <= bound + 1e-12),
    }


def confusion_rows(test: TestSet, refs: References, key: dict, weights: np.ndarray) -> list[dict]:
    """Weighted confusion counts: oracle label (true) x chosen action (predicted)."""
    k = weights.shape[1]
    label_onehot = np.zeros((len(refs.labels), k))
    label_onehot[np.arange(len(refs.labels)), refs.labels] = 1.0
    matrix = label_onehot.T @ weights
    actions = test.outcomes.action_ids
    return [
        {
            **key,
            "true_action_id": int(actions[t]),
            "predicted_action_id": int(actions[p]),
            "n": float(matrix[t, p]),
        }
        for t in range(k)
        for p in range(k)
    ]


def class_rows(test: TestSet, refs: References, key: dict, weights: np.ndarray) -> list[dict]:
    """Per action: support (oracle labels), predicted mass, correct mass, recall, precision."""
    rows = []
    for t in range(weights.shape[1]):
        labelled = refs.labels == t
        support = float(labelled.sum())
        predicted = float(weights[:, t].sum())
        correct = float(weights[labelled, t].sum())
        rows.append(
            {
                **key,
                "action_id": int(test.outcomes.action_ids[t]),
                "support": support,
                "predicted": predicted,
                "correct": correct,
                "recall": correct / support if support else None,
                "precision": correct / predicted if predicted else None,
            }
        )
    return rows
