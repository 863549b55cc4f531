"""One run's report context, and several runs side by side."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import ibis
from matplotlib.figure import Figure

from toolkit.formatting import budget_label
from toolkit.report.charts import (
    plot_allocation,
    plot_comparison,
    plot_confusion,
    plot_estimation,
    plot_frontier,
    plot_learning_curve,
    plot_level_accuracy,
    plot_level_cost,
    plot_regret,
    svg,
)
from toolkit.report.context import (
    AllocationSection,
    Chart,
    ComparisonContext,
    ComparisonRow,
    EstimationSection,
    FrontierSection,
    ImitationSection,
    LearnedSection,
    LevelAccuracyInfo,
    OutcomesSection,
    Panel,
    ReferenceSection,
    RegretSection,
    ReportContext,
    RunInfo,
    Series,
)
from toolkit.report.paper import paper_section
from toolkit.report.read import (
    FEATURED_POLICY,
    _,
    _middle,
    _scalar,
    _view,
    action_accuracy_rows,
    adaptive_section,
    allocation_info,
    confusion_info,
    estimation_info,
    featured_policy,
    frontier_info,
    headline,
    imitation_rows,
    importance_rows,
    learning_curve_info,
    level_accuracy_info,
    level_cost_info,
    noise_rows,
    policy_points,
    reference_rows,
    regret_info,
    run_info,
    summary_info,
)


# --------------------------------------------------------------------------------------------
# Building the context
# --------------------------------------------------------------------------------------------
def _chart(name: str, title: str, figure: Figure) -> Chart:
    return Chart(name=name, title=title, svg=svg(figure, name))


def _outcomes_section(
    backend: ibis.BaseBackend, run_id: int, prefix: str, notes: list[str]
) -> OutcomesSection:
    levels = level_accuracy_info(backend, run_id)
    charts = []
    for index, info in enumerate(levels):
        if max((len(series.x) for series in info.series), default=0) < 2:
            notes.append(
                f"Accuracy by b and level ({info.model}) is not drawn: the model has one "
                "action, so each level is a single point (the table shows it)."
            )
            continue
        charts.append(
            _chart(
                f"{prefix}level-accuracy-{index}",
                f"Accuracy by b and level, {info.model}",
                plot_level_accuracy(info),
            )
        )
    return OutcomesSection(
        actions=action_accuracy_rows(backend, run_id), level_accuracy=levels, charts=tuple(charts)
    )


def _frontier_section(
    backend: ibis.BaseBackend, run_id: int, run: RunInfo, points, prefix: str
) -> FrontierSection:
    frontier = frontier_info(backend, run_id, points, run.cost_unit)
    config = json.loads(run.config_json)
    folds = int(config.get("split", {}).get("folds", 1))
    return FrontierSection(
        info=frontier,
        n_seeds=max(p.n_seeds for p in points),
        folds=folds,
        test_instances=_scalar(_view(backend, "splits", run_id).filter(_.split == "test").count()),
        summary=summary_info(backend, run_id),
        noise=noise_rows(backend, run_id),
        chart=_chart(
            f"{prefix}frontier",
            "Accuracy against realised cost, and the gain over best_fixed at matched spend",
            plot_frontier(frontier),
        ),
    )


def _allocation_section(
    backend: ibis.BaseBackend, run_id: int, run: RunInfo, shown, points, prefix, notes
) -> AllocationSection:
    allocation = allocation_info(backend, run_id, shown, _middle([p.budget for p in points]))
    level_cost = level_cost_info(backend, run_id, shown, run.cost_unit)
    charts = [
        _chart(
            f"{prefix}allocation",
            f"Actions chosen by level at {budget_label(allocation.budget, run.cost_unit)}",
            plot_allocation(allocation),
        )
    ]
    if len(level_cost.levels) > 1:
        charts.append(
            _chart(
                f"{prefix}level-cost",
                "Mean cost by level at every budget",
                plot_level_cost(level_cost),
            )
        )
    else:
        notes.append(
            "Mean cost by level is not drawn: the instances have no levels, so each budget "
            "is a single point."
        )
    return AllocationSection(info=allocation, level_cost=level_cost, charts=tuple(charts))


def _learned_section(backend: ibis.BaseBackend, run_id: int, prefix: str) -> LearnedSection | None:
    budgets, importance = importance_rows(backend, run_id)
    if not importance:
        return None
    curve = learning_curve_info(backend, run_id)
    chart = None
    if curve is not None and len(curve.points) > 1:
        chart = _chart(
            f"{prefix}learning-curve",
            "The learned policy's gain over best_fixed against its training size",
            plot_learning_curve(curve),
        )
    return LearnedSection(budgets=budgets, importance=importance, learning_curve=curve, chart=chart)


def build_context(
    backend: ibis.BaseBackend, run_id: int, database: str = "", chart_prefix: str = ""
) -> ReportContext:
    """Read one run into the report context, drawing every chart. ``chart_prefix`` keeps chart
    ids unique when several runs share one page."""
    run = run_info(backend, run_id, database)
    notes: list[str] = []
    outcomes = _outcomes_section(backend, run_id, chart_prefix, notes)
    truth = estimation_info(backend, run_id)
    estimation = None
    if truth is not None:
        estimation = EstimationSection(
            info=truth,
            chart=_chart(
                f"{chart_prefix}estimation", "Estimated vs true accuracy", plot_estimation(truth)
            ),
        )
    title = f"{run.study}, run {run.run_id}"
    reference = _reference_section(backend, run, chart_prefix)
    points = policy_points(backend, run_id)
    if not points:
        return ReportContext(
            title,
            run,
            outcomes,
            None,
            (),
            None,
            None,
            None,
            estimation,
            notes=tuple(notes),
            reference=reference,
        )
    featured = featured_policy(points)
    shown = tuple(p for p in ("oracle", featured) if any(q.policy == p for q in points))
    confusion = confusion_info(backend, run_id, featured)
    regret = regret_info(backend, run_id)
    context = ReportContext(
        title=title,
        run=run,
        outcomes=outcomes,
        frontier=_frontier_section(backend, run_id, run, points, chart_prefix),
        headline=headline(backend, run_id, points, run.cost_unit),
        allocation=_allocation_section(backend, run_id, run, shown, points, chart_prefix, notes),
        imitation=ImitationSection(
            policy=featured,
            actions=confusion.actions,
            rows=imitation_rows(backend, run_id, featured, points),
            confusion=confusion,
            chart=_chart(
                f"{chart_prefix}confusion",
                f"Confusion of {featured} against the oracle labels",
                plot_confusion(confusion),
            ),
        ),
        regret=RegretSection(
            policy=featured,
            rows=tuple(r for r in regret.rows if r.policy == featured),
            info=regret,
            all_hold=all(r.holds for r in regret.rows),
            chart=_chart(
                f"{chart_prefix}regret",
                "Share of the bound the realised regret uses",
                plot_regret(regret),
            ),
        ),
        estimation=estimation,
        learned=_learned_section(backend, run_id, chart_prefix),
        adaptive=adaptive_section(backend, run_id, points, run.cost_unit),
        notes=tuple(notes),
        reference=reference,
    )
    return dataclasses.replace(context, paper=paper_section([context], featured))


def _reference_section(
    backend: ibis.BaseBackend, run: RunInfo, prefix: str
) -> ReferenceSection | None:
    """The run's accuracy by b beside the published curves declared for its data, a chart per
    dataset and model (None without declared curves)."""
    sources, rows = reference_rows(backend, run.run_id, run.aggregation)
    if not rows:
        return None
    charts: list[Chart] = []
    for dataset, model in sorted({(r.dataset, r.model) for r in rows}):
        mine = [r for r in rows if (r.dataset, r.model) == (dataset, model)]
        series: list[Series] = []
        for curve in sorted({r.curve for r in mine}):
            points = [r for r in mine if r.curve == curve]
            series.append(
                Series(
                    f"{curve}, published",
                    tuple(r.b for r in points),
                    tuple(r.published for r in points),
                )
            )
            measured = [(r.b, r.ours) for r in points if r.ours is not None]
            if measured:
                series.append(
                    Series(
                        f"{curve}, this run",
                        tuple(b for b, _ in measured),
                        tuple(ours for _, ours in measured),
                    )
                )
        info = LevelAccuracyInfo(model=f"{dataset}, {model}", series=tuple(series))
        charts.append(
            _chart(
                f"{prefix}reference-{len(charts)}",
                f"{dataset}, {model}: published curves and this run's",
                plot_level_accuracy(info),
            )
        )
    return ReferenceSection(
        sources=sources, aggregation=run.aggregation, rows=rows, charts=tuple(charts)
    )


def comparison_context(reports: Sequence[ReportContext]) -> ComparisonContext:
    """Runs side by side: per run and budget best_fixed, the featured policy and the oracle at
    matched spend, and the featured policy's gain curves over best_fixed overlaid."""
    policy = FEATURED_POLICY
    rows = []
    series: list[Series] = []
    for report in reports:
        label = f"{report.run.study} (run {report.run.run_id})"
        for block in report.headline:
            by_policy = {r.point.policy: r.point for r in block.rows}
            if "best_fixed" not in by_policy:
                continue
            featured = by_policy.get(policy)
            oracle = by_policy.get("oracle")
            rows.append(
                ComparisonRow(
                    run=label,
                    budget=block.budget,
                    budget_label=block.label,
                    best_fixed=by_policy["best_fixed"].matched_accuracy,
                    featured=None if featured is None else featured.matched_accuracy,
                    oracle=None if oracle is None else oracle.matched_accuracy,
                    oracle_share=None if featured is None else featured.oracle_share,
                )
            )
        if report.frontier is not None:
            series.extend(
                Series(label=label, x=s.x, y=s.y, low=s.low, high=s.high)
                for s in report.frontier.info.gain
                if s.label == policy
            )
    units = {report.run.cost_unit for report in reports}
    panel = Panel(title=f"{policy}: gain over best_fixed", series=tuple(series)) if series else None
    chart = None
    if panel is not None:
        unit = units.pop() if len(units) == 1 else "cost"
        chart = _chart(
            "comparison", "Gain over best_fixed, run by run", plot_comparison(panel, unit)
        )
    return ComparisonContext(
        title=" vs ".join(f"{r.run.study} (run {r.run.run_id})" for r in reports),
        policy=policy,
        rows=tuple(rows),
        gain=panel,
        chart=chart,
        runs=tuple(reports),
        paper=paper_section(reports, policy),
    )
