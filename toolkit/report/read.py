"""Reading a study database (through the views of ``sql/views``) into the report's info objects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import ibis

from toolkit import bi, db
from toolkit.errors import StudyError
from toolkit.formatting import budget_label
from toolkit.report.context import (
    ActionAccuracyRow,
    AdaptiveBudget,
    AdaptiveSection,
    AllocationInfo,
    ConfusionInfo,
    EstimationInfo,
    FrontierInfo,
    HeadlineBudget,
    HeadlineRow,
    ImitationRow,
    ImportanceRow,
    LearningCurveInfo,
    LearningCurvePoint,
    LevelAccuracyInfo,
    LevelCostInfo,
    NoiseRow,
    Panel,
    PolicyPoint,
    ReferenceRow,
    RegretInfo,
    RegretRow,
    RuleActionRow,
    RunInfo,
    SavingsRow,
    Series,
    SummaryInfo,
    SummaryRow,
    TableSize,
)

_ = ibis._

POLICY_ORDER = (
    "oracle",
    "label_known",
    "oracle_adaptive",
    "oracle_probe",
    "learned_adaptive",
    "learned_probe",
    "learned_batch",
    "learned_calibrated",
    "learned_argmax",
    "difficulty_bins",
    "prompt_length",
    "random",
    "best_fixed",
    "uniform",
)
"""Display order of the policies: the upper bound, the learned ones, the baselines
(``always_<model>`` rows after them)."""

FEATURED_POLICY = "learned_batch"
"""The learned policy the allocation, imitation and regret sections show next to the oracle:
the deployment priced on the batch it serves, which meets B in planned cost exactly (the
validation-priced ``learned_calibrated`` misses B by the split-to-split noise)."""

CURVE_OF = {"pass": "coverage", "majority": "majority"}
"""Which published curve (``reference_curves.curve``) a run's aggregation measures."""


# --------------------------------------------------------------------------------------------
# Reading the database into info objects
# --------------------------------------------------------------------------------------------
def _rows(expr: ibis.Table) -> list[dict]:
    return expr.to_pyarrow().to_pylist()


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def _record(cls: type[T], row: dict[str, Any]) -> T:
    """The dataclass ``cls`` from a view's row, by field name (other columns ignored)."""
    return cls(**{f.name: row[f.name] for f in fields(cls)})


def _scalar(expr: ibis.Scalar):
    return expr.to_pyarrow().as_py()


def _view(backend: ibis.BaseBackend, name: str, run_id: int) -> ibis.Table:
    return backend.table(name).filter(_.run_id == run_id)


def _policy_rank(policy: str) -> int:
    return POLICY_ORDER.index(policy) if policy in POLICY_ORDER else len(POLICY_ORDER)


def _short_actions(names: Sequence[str], models: Sequence[str]) -> tuple[str, ...]:
    """Action names for axes: ``b=4`` when the run has one model, the full name otherwise."""
    if len(set(models)) == 1:
        return tuple(name.split("@", 1)[-1] for name in names)
    return tuple(names)


def _level_label(dataset: str, level: int | None, several_datasets: bool) -> str:
    text = "all" if level is None else f"level {level}"
    return f"{dataset} {text}" if several_datasets else text


def _describe_dataset(spec: dict) -> str:
    """``math (math, 5,000 instances)`` for a simulated dataset, ``name (source: file)`` for
    one read from a file."""
    if spec.get("source", "simulate") == "simulate":
        return f"{spec['name']} ({spec.get('preset')}, {spec.get('instances') or 0:,} instances)"
    return f"{spec['name']} ({spec['source']}: {Path(spec.get('path') or '').name})"


def run_info(backend: ibis.BaseBackend, run_id: int, database: str) -> RunInfo:
    """The run's settings (from ``runs``) and the rows it holds in every table."""
    found = _rows(_view(backend, "runs", run_id))
    if not found:
        raise StudyError(f"{database}: no run {run_id}")
    run = found[0]
    config = json.loads(run["config_json"])
    sizes = tuple(
        TableSize(table, _scalar(_view(backend, table, run_id).count()))
        for table in db.run_tables(backend)
    )
    actions = _rows(_view(backend, "actions", run_id).order_by("action_id").select("name"))
    return RunInfo(
        run_id=run_id,
        study=run["study"],
        description=config["study"].get("description", ""),
        seed=run["seed"],
        config_hash=run["config_hash"],
        cost_unit=run["cost_unit"],
        aggregation=run["aggregation"],
        samples_per_instance=run["samples_per_instance"],
        engine=run["engine"],
        training=_training(backend, run_id, config),
        created_at=run["created_at"].strftime("%Y-%m-%d %H:%M UTC"),
        database=database,
        datasets=tuple(_describe_dataset(d) for d in config["datasets"]),
        models=tuple(m["name"] for m in config["models"]),
        actions=tuple(a["name"] for a in actions),
        budgets=tuple(config["budgets"]["values"]),
        tolerance=float(config["budgets"].get("tolerance", 0.02)),
        policies=tuple(config["policies"]["compare"]),
        versions=tuple(sorted(json.loads(run["versions"]).items())),
        sizes=sizes,
        config_json=json.dumps(config, indent=2, sort_keys=True),
    )


def _training(backend: ibis.BaseBackend, run_id: int, config: dict) -> str:
    models = _view(backend, "policy_models", run_id)
    used = _scalar(models.train_rows.max())
    if used is None:
        return "no learned policy in this run"
    split = _scalar(_view(backend, "splits", run_id).filter(_.split == "train").count())
    limit = config.get("learn", {}).get("max_train_rows")
    sampled = f", a seeded sample (learn.max_train_rows = {limit:,})" if used < split else ""
    return f"CatBoost fitted on {used:,} of {split:,} training instances{sampled}"


def action_accuracy_rows(backend: ibis.BaseBackend, run_id: int) -> tuple[ActionAccuracyRow, ...]:
    """Every static action's mean cost and accuracy over all instances (view
    ``action_accuracy``; a probe action's numbers follow the probe, policies show them)."""
    rows = _rows(
        _view(backend, "action_accuracy", run_id).filter(_.menu == "static").order_by("action_id")
    )
    return tuple(_record(ActionAccuracyRow, r) for r in rows)


def level_accuracy_info(backend: ibis.BaseBackend, run_id: int) -> tuple[LevelAccuracyInfo, ...]:
    """Per model, the mean accuracy of each b per dataset and level (view
    ``level_action_accuracy``)."""
    rows = _rows(
        _view(backend, "level_action_accuracy", run_id)
        .filter(_.menu == "static")
        .order_by(["model", "dataset", "level", "b"])
    )
    several = len({r["dataset"] for r in rows}) > 1
    by_model: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in rows:
        label = _level_label(r["dataset"], r["level"], several)
        by_model.setdefault(r["model"], {}).setdefault(label, []).append(
            (float(r["b"]), r["mean_acc"])
        )
    return tuple(
        LevelAccuracyInfo(
            model=model,
            series=tuple(
                Series(
                    label=label,
                    x=tuple(b for b, _acc in points),
                    y=tuple(acc for _b, acc in points),
                )
                for label, points in levels.items()
            ),
        )
        for model, levels in by_model.items()
    )


def policy_points(backend: ibis.BaseBackend, run_id: int) -> tuple[PolicyPoint, ...]:
    """Every policy at every budget (view ``policy_frontier``), in display order."""
    rows = _rows(_view(backend, "policy_frontier", run_id))
    points = [_record(PolicyPoint, r) for r in rows]
    return tuple(sorted(points, key=lambda p: (p.budget, _policy_rank(p.policy))))


def frontier_info(
    backend: ibis.BaseBackend, run_id: int, points: Sequence[PolicyPoint], cost_unit: str
) -> FrontierInfo:
    """Per policy its accuracy-cost curve (table ``policy_curves``, mean over seeds) and its
    gain over best_fixed at the declared budgets (view ``policy_frontier``)."""
    curves = _rows(
        _view(backend, "policy_curves", run_id)
        .group_by(["policy", "budget"])
        .agg(cost=_.cost.mean(), accuracy=_.accuracy.mean())
        .order_by(["policy", "budget"])
    )
    policies = sorted({p.policy for p in points}, key=_policy_rank)
    curve_series = []
    for policy in policies:
        mine = [r for r in curves if r["policy"] == policy]
        if mine:
            curve_series.append(
                Series(
                    label=policy,
                    x=tuple(r["cost"] for r in mine),
                    y=tuple(r["accuracy"] for r in mine),
                )
            )
    gain_series = []
    for policy in policies:
        gains = sorted(
            (
                (p.budget, p.gain_vs_best_fixed, p.gain_vs_best_fixed_ci_low)
                + (p.gain_vs_best_fixed_ci_high,)
                for p in points
                if p.policy == policy and p.gain_vs_best_fixed is not None
            ),
            key=lambda gain: gain[0],
        )
        if policy != "best_fixed" and gains:
            gain_series.append(
                Series(
                    label=policy,
                    x=tuple(budget for budget, _, _, _ in gains),
                    y=tuple(gain for _, gain, _, _ in gains),
                    low=tuple(low for _, _, low, _ in gains),
                    high=tuple(high for _, _, _, high in gains),
                )
            )
    return FrontierInfo(
        cost_unit=cost_unit,
        budgets=tuple(sorted({p.budget for p in points})),
        curves=tuple(curve_series),
        gain=tuple(gain_series),
    )


def _share_note(point: PolicyPoint) -> str:
    if point.oracle_share is not None:
        return ""
    if point.matched_accuracy is None:
        return "no two of its budgets bracket B in realised cost"
    return "the oracle gains nothing over best_fixed here"


def headline(
    backend: ibis.BaseBackend, run_id: int, points: Sequence[PolicyPoint], cost_unit: str
) -> tuple[HeadlineBudget, ...]:
    """Per budget, the oracle first, then every policy in the rank
    ``sql/analyses/best_policy_per_budget.sql`` gives it (the same as ``stl run`` prints)."""
    rank = {(r["budget"], r["policy"]): r["rank"] for r in bi.headline_rows(backend, run_id)}
    out = []
    for budget in sorted({p.budget for p in points}):
        mine = [p for p in points if p.budget == budget]
        rows = sorted(
            (HeadlineRow(rank.get((budget, p.policy)), p, _share_note(p)) for p in mine),
            key=lambda r: (r.rank is not None, r.rank or 0),
        )
        out.append(
            HeadlineBudget(
                budget=budget,
                label=budget_label(budget, cost_unit),
                binding=all(p.binding for p in mine),
                rows=tuple(rows),
            )
        )
    return tuple(out)


ADAPTIVE_ORDER = (
    "uniform",
    "best_fixed",
    "oracle",
    "oracle_adaptive",
    "learned_batch",
    "learned_adaptive",
)
"""The adaptive section's rows: the static references, then (after them) each
``rule_<family>``, the oracle and the learned policy over static and over static + adaptive
actions."""


def adaptive_section(
    backend: ibis.BaseBackend, run_id: int, points: Sequence[PolicyPoint], cost_unit: str
) -> AdaptiveSection | None:
    """The adaptive section of a run with stopping rules (None without)."""
    rows = _rows(
        _view(backend, "action_accuracy", run_id).filter(_.menu == "adaptive").order_by("action_id")
    )
    if not rows:
        return None
    fields = RuleActionRow.__dataclass_fields__
    actions = tuple(RuleActionRow(**{k: r[k] for k in fields}) for r in rows)
    fields = SavingsRow.__dataclass_fields__
    savings = tuple(
        SavingsRow(**{k: r[k] for k in fields})
        for r in bi.analysis_rows(backend, run_id, bi.SAVINGS_SQL, "model, family, tolerance")
    )
    families = sorted({p.policy for p in points if p.policy.startswith("rule_")})
    order = [*ADAPTIVE_ORDER[:2], *families, *ADAPTIVE_ORDER[2:]]
    budgets = []
    for budget in sorted({p.budget for p in points}):
        mine = {p.policy: p for p in points if p.budget == budget}
        budgets.append(
            AdaptiveBudget(
                budget, budget_label(budget, cost_unit), tuple(mine[p] for p in order if p in mine)
            )
        )
    return AdaptiveSection(actions, savings, tuple(budgets))


def noise_rows(backend: ibis.BaseBackend, run_id: int) -> tuple[NoiseRow, ...]:
    """The oracle's gain apparent and held out, per budget (table ``oracle_noise``)."""
    fields = NoiseRow.__dataclass_fields__
    rows = _rows(_view(backend, "oracle_noise", run_id).order_by("budget"))
    return tuple(NoiseRow(**{k: v for k, v in r.items() if k in fields}) for r in rows)


def summary_info(backend: ibis.BaseBackend, run_id: int) -> SummaryInfo | None:
    """Every policy's AIQ and cost to reach the best action (table ``policy_summaries``)."""
    rows = _rows(
        _view(backend, "policy_summaries", run_id)
        .group_by("policy")
        .agg(
            n_seeds=_.count(),
            aiq=_.aiq.mean(),
            cost_to_reach=_.cost_to_reach.mean(),
            reached=_.cost_to_reach.count(),
            saving=_.saving.mean(),
            target_action_id=_.target_action_id.max(),
            target_accuracy=_.target_accuracy.max(),
            target_cost=_.target_cost.max(),
            cost_low=_.cost_low.max(),
            cost_high=_.cost_high.max(),
        )
    )
    if not rows:
        return None
    names = {
        r["action_id"]: r["name"]
        for r in _rows(_view(backend, "actions", run_id).select("action_id", "name"))
    }
    first = rows[0]
    return SummaryInfo(
        rows=tuple(
            SummaryRow(
                policy=r["policy"],
                n_seeds=r["n_seeds"],
                aiq=r["aiq"],
                # a policy reaches the target only if every seed does
                cost_to_reach=r["cost_to_reach"] if r["reached"] == r["n_seeds"] else None,
                saving=r["saving"] if r["reached"] == r["n_seeds"] else None,
            )
            for r in sorted(rows, key=lambda r: -(r["aiq"] or 0.0))
        ),
        target_action=names.get(first["target_action_id"], str(first["target_action_id"])),
        target_accuracy=first["target_accuracy"],
        target_cost=first["target_cost"],
        cost_low=first["cost_low"],
        cost_high=first["cost_high"],
    )


def importance_rows(
    backend: ibis.BaseBackend, run_id: int
) -> tuple[tuple[float, ...], tuple[ImportanceRow, ...]]:
    """Each feature's mean CatBoost importance per budget (table ``feature_importance``,
    mean over seeds and folds), most important first; the budgets."""
    rows = _rows(
        _view(backend, "feature_importance", run_id)
        .group_by(["feature", "budget"])
        .agg(importance=_.importance.mean())
    )
    kinds = {
        r["feature"]: r["kind"]
        for r in _rows(_view(backend, "feature_catalog", run_id).select("feature", "kind"))
    }
    budgets = tuple(sorted({r["budget"] for r in rows}))
    value = {(r["feature"], r["budget"]): r["importance"] for r in rows}
    features = sorted({r["feature"] for r in rows})
    parsed = [
        ImportanceRow(
            feature=f,
            kind=kinds.get(f, ""),
            by_budget=tuple(value.get((f, b), 0.0) for b in budgets),
            mean=sum(value.get((f, b), 0.0) for b in budgets) / max(len(budgets), 1),
        )
        for f in features
    ]
    return budgets, tuple(sorted(parsed, key=lambda r: -r.mean))


def learning_curve_info(backend: ibis.BaseBackend, run_id: int) -> LearningCurveInfo | None:
    """The learned policy's test accuracy against its training size (table ``learning_curve``)."""
    rows = _rows(_view(backend, "learning_curve", run_id).order_by("train_rows"))
    if not rows:
        return None
    return LearningCurveInfo(
        budget=rows[0]["budget"],
        seed=rows[0]["seed"],
        points=tuple(_record(LearningCurvePoint, r) for r in rows),
    )


def featured_policy(points: Sequence[PolicyPoint]) -> str:
    """``FEATURED_POLICY`` when the run evaluated it, else its best-ranked learned policy."""
    present = sorted({p.policy for p in points}, key=_policy_rank)
    if FEATURED_POLICY in present:
        return FEATURED_POLICY
    learned = [p for p in present if p.startswith("learned")]
    return (learned or [p for p in present if p != "oracle"] or present)[0]


def _middle(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def allocation_info(
    backend: ibis.BaseBackend, run_id: int, policies: Sequence[str], budget: float
) -> AllocationInfo:
    """Action shares by level of ``policies`` at ``budget`` (view ``allocations_by_level``)."""
    actions = _rows(_view(backend, "actions", run_id).order_by("action_id"))
    rows = _rows(
        _view(backend, "allocations_by_level", run_id).filter(
            _.policy.isin(list(policies)) & (_.budget == budget)
        )
    )
    several = len({r["dataset"] for r in rows}) > 1
    level_keys = sorted(
        {(r["dataset"], r["level"]) for r in rows}, key=lambda k: (k[0], k[1] is None, k[1])
    )
    share = {(r["policy"], r["action_id"], r["dataset"], r["level"]): r["share"] for r in rows}
    return AllocationInfo(
        budget=budget,
        policies=tuple(policies),
        actions=_short_actions([a["name"] for a in actions], [a["model"] for a in actions]),
        levels=tuple(_level_label(d, lv, several) for d, lv in level_keys),
        shares=tuple(
            tuple(
                tuple(share.get((policy, a["action_id"], d, lv), 0.0) for d, lv in level_keys)
                for a in actions
            )
            for policy in policies
        ),
    )


def level_cost_info(
    backend: ibis.BaseBackend, run_id: int, policies: Sequence[str], cost_unit: str
) -> LevelCostInfo:
    """Mean cost per level for each policy and budget: the sum over actions of
    ``cost_contribution`` (view ``allocations_by_level``). Series x values index ``levels``."""
    rows = _rows(
        _view(backend, "allocations_by_level", run_id)
        .filter(_.policy.isin(list(policies)))
        .group_by(["policy", "budget", "dataset", "level"])
        .agg(mean_cost=_.cost_contribution.sum())
        .order_by(["policy", "budget", "dataset", "level"])
    )
    several = len({r["dataset"] for r in rows}) > 1
    level_keys = sorted(
        {(r["dataset"], r["level"]) for r in rows}, key=lambda k: (k[0], k[1] is None, k[1])
    )
    position = {key: float(index) for index, key in enumerate(level_keys)}
    panels = []
    for policy in policies:
        mine = [r for r in rows if r["policy"] == policy]
        series = []
        for budget in sorted({r["budget"] for r in mine}):
            points = [r for r in mine if r["budget"] == budget]
            series.append(
                Series(
                    label=f"B = {budget:g}",
                    x=tuple(position[(r["dataset"], r["level"])] for r in points),
                    y=tuple(r["mean_cost"] for r in points),
                )
            )
        panels.append(Panel(title=policy, series=tuple(series)))
    return LevelCostInfo(
        cost_unit=cost_unit,
        levels=tuple(_level_label(d, lv, several) for d, lv in level_keys),
        panels=tuple(panels),
    )


def confusion_info(backend: ibis.BaseBackend, run_id: int, policy: str) -> ConfusionInfo:
    """The policy's confusion matrices against the oracle labels, one per budget, the mean
    over its seeds (table ``confusion``)."""
    actions = _rows(_view(backend, "actions", run_id).order_by("action_id"))
    cells = _rows(
        _view(backend, "confusion", run_id)
        .filter(_.policy == policy)
        .group_by(["budget", "true_action_id", "predicted_action_id"])
        .agg(n=_.n.mean())
    )
    budgets = sorted({c["budget"] for c in cells})
    ids = [a["action_id"] for a in actions]
    n = {(c["budget"], c["true_action_id"], c["predicted_action_id"]): c["n"] for c in cells}
    return ConfusionInfo(
        policy=policy,
        actions=_short_actions([a["name"] for a in actions], [a["model"] for a in actions]),
        budgets=tuple(budgets),
        counts=tuple(
            tuple(tuple(n.get((budget, t, p), 0.0) for p in ids) for t in ids) for budget in budgets
        ),
    )


def imitation_rows(
    backend: ibis.BaseBackend, run_id: int, policy: str, points: Sequence[PolicyPoint]
) -> tuple[ImitationRow, ...]:
    """Per budget, the policy's imitation and balanced accuracy and per-action recall (views
    ``policy_frontier`` and ``imitation_by_action``)."""
    classes = _rows(
        _view(backend, "imitation_by_action", run_id)
        .filter(_.policy == policy)
        .order_by(["budget", "action_id"])
    )
    rows = []
    for point in sorted((p for p in points if p.policy == policy), key=lambda p: p.budget):
        mine = [c for c in classes if c["budget"] == point.budget]
        rows.append(
            ImitationRow(
                budget=point.budget,
                imitation_accuracy=point.imitation_accuracy,
                balanced_accuracy=point.balanced_accuracy,
                support=tuple(c["support"] for c in mine),
                recall=tuple(c["recall"] for c in mine),
            )
        )
    return tuple(rows)


def regret_info(backend: ibis.BaseBackend, run_id: int) -> RegretInfo:
    """The regret bound of every policy at every budget (view ``regret_bound_check``)."""
    rows = _rows(_view(backend, "regret_bound_check", run_id))
    fields = RegretRow.__dataclass_fields__
    parsed = [
        RegretRow(
            **{k: v for k, v in r.items() if k in fields},
            bound_used=r["regret"] / r["bound"] if r["bound"] > 0 else None,
        )
        for r in rows
    ]
    return RegretInfo(rows=tuple(sorted(parsed, key=lambda r: (_policy_rank(r.policy), r.budget))))


def estimation_info(
    backend: ibis.BaseBackend, run_id: int, bins: int = 25
) -> EstimationInfo | None:
    """A 2-D histogram of (true, estimated) accuracy over every instance and action, and the
    mean absolute and root mean squared error; None when the run has no truth (real data)."""
    outcomes = _view(backend, "outcomes", run_id).filter(_.acc_true.notnull())
    summary = _rows(
        outcomes.agg(
            n=_.count(),
            mae=(_.acc - _.acc_true).abs().mean(),
            mse=((_.acc - _.acc_true) ** 2).mean(),
        )
    )[0]
    if summary["n"] == 0:
        return None

    def bin_of(column: ibis.Column) -> ibis.Column:
        return ibis.least((column * bins).floor(), bins - 1).cast("int64")

    cells = _rows(
        outcomes.mutate(true_bin=bin_of(_.acc_true), est_bin=bin_of(_.acc))
        .group_by(["true_bin", "est_bin"])
        .agg(n=_.count())
    )
    counts = [[0] * bins for _row in range(bins)]
    for cell in cells:
        counts[cell["true_bin"]][cell["est_bin"]] = cell["n"]
    return EstimationInfo(
        bins=bins,
        counts=tuple(tuple(row) for row in counts),
        mean_abs_error=summary["mae"],
        rmse=summary["mse"] ** 0.5,
    )


def reference_rows(
    backend: ibis.BaseBackend, run_id: int, aggregation: str
) -> tuple[tuple[str, ...], tuple[ReferenceRow, ...]]:
    """The published curves declared for the run's datasets (table ``reference_curves``) and
    the run's own mean accuracy of b samples of the same model over each dataset's instances,
    where its aggregation measures that curve and it has an action of b samples; the curves'
    sources."""
    if "reference_curves" not in backend.list_tables():  # a database from before the table
        return (), ()
    published = _rows(
        _view(backend, "reference_curves", run_id).order_by(["dataset", "model", "curve", "b"])
    )
    if not published:
        return (), ()
    static = _view(backend, "actions", run_id).filter(_.menu == "static")
    instances = _view(backend, "instances", run_id).select("instance_id", "dataset")
    ours = _rows(
        _view(backend, "outcomes", run_id)
        .join(static, ["run_id", "action_id"])
        .join(instances, "instance_id")
        .group_by(["dataset", "model", "b"])
        .agg(acc=_.acc.mean())
    )
    measured = {(r["dataset"], r["model"], r["b"]): r["acc"] for r in ours}
    rows = tuple(
        ReferenceRow(
            dataset=p["dataset"],
            model=p["model"],
            curve=p["curve"],
            b=p["b"],
            published=p["value"],
            ours=measured.get((p["dataset"], p["model"], p["b"]))
            if CURVE_OF.get(aggregation) == p["curve"]
            else None,
        )
        for p in published
    )
    return tuple(sorted({p["source"] for p in published})), rows
