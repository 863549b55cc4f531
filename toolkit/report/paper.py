"""The report's "Against the paper" section: the paper's published figures (``toolkit.paper``)
beside what the runs measure, for the runs on the paper's benchmarks (MATH, GSM8K: a simulated
preset, or a file's declared ``benchmark``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from toolkit.formatting import budget_label, percent
from toolkit.paper import BENCHMARK_NAMES, FIGURES, PAPER, SETTING, Figure
from toolkit.report.context import (
    PaperFigureRow,
    PaperRunRow,
    PaperSection,
    PolicyPoint,
    ReportContext,
)


def benchmark_of(config: dict) -> str | None:
    """The one paper benchmark every dataset of a run is from (None: none, or several)."""
    found = {
        d.get("preset") if d.get("source", "simulate") == "simulate" else d.get("benchmark")
        for d in config["datasets"]
    }
    if len(found) != 1:
        return None
    benchmark = found.pop()
    return benchmark if benchmark in BENCHMARK_NAMES else None


def _points(report: ReportContext, policy: str) -> list[PolicyPoint]:
    return [
        row.point for block in report.headline for row in block.rows if row.point.policy == policy
    ]


def _run_rows(report: ReportContext, benchmark: str, policy: str) -> list[PaperRunRow]:
    oracle = {p.budget: p for p in _points(report, "oracle")}
    rows = []
    for point in _points(report, policy):
        ceiling = oracle.get(point.budget)
        rows.append(
            PaperRunRow(
                run=f"{report.run.study} (run {report.run.run_id})",
                benchmark=BENCHMARK_NAMES[benchmark],
                models=", ".join(report.run.models),
                budget_label=budget_label(point.budget, report.run.cost_unit),
                relative_gain=point.relative_gain_vs_uniform,
                relative_gain_ci_low=point.relative_gain_vs_uniform_ci_low,
                relative_gain_ci_high=point.relative_gain_vs_uniform_ci_high,
                oracle_relative_gain=None if ceiling is None else ceiling.relative_gain_vs_uniform,
                imitation=point.imitation_accuracy,
                imitation_ci_low=point.imitation_accuracy_ci_low,
                imitation_ci_high=point.imitation_accuracy_ci_high,
            )
        )
    return rows


_VALUES = {
    "relative_gain_vs_uniform": ("relative_gain", "relative_gain_ci_low", "relative_gain_ci_high"),
    "imitation_accuracy": ("imitation", "imitation_ci_low", "imitation_ci_high"),
}


def _figure_row(figure: Figure, rows: Sequence[PaperRunRow]) -> PaperFigureRow:
    """The figure beside our best (an "up to" claim) or lowest (an "over" claim) value over the
    runs and budgets it is about."""
    value, low, high = _VALUES[figure.metric]
    wanted = BENCHMARK_NAMES.get(figure.benchmark or "")
    mine = [r for r in rows if getattr(r, value) is not None and wanted in (None, r.benchmark)]
    paper = f"{figure.claim} {percent(figure.value)}"
    if not mine:
        return PaperFigureRow(figure.label, paper, None, None, None, "no comparable run", "")
    pick = max if figure.claim == "up to" else min
    chosen = pick(mine, key=lambda r: getattr(r, value))
    values = [getattr(r, value) for r in mine]
    ceilings = [r.oracle_relative_gain for r in mine if r.oracle_relative_gain is not None]
    ceiling = max(ceilings) if value == "relative_gain" and ceilings else None
    return PaperFigureRow(
        label=figure.label,
        paper=paper,
        ours=getattr(chosen, value),
        ci_low=getattr(chosen, low),
        ci_high=getattr(chosen, high),
        where=f"{'best' if pick is max else 'lowest'}: {chosen.benchmark}, "
        f"{chosen.models}, {chosen.budget_label}",
        spread=f"{percent(min(values))} to {percent(max(values))} over {len(mine)} "
        f"run-budget pairs",
        ceiling=ceiling,
    )


def _questions(report: ReportContext) -> str:
    return next((f"{s.rows:,}" for s in report.run.sizes if s.table == "instances"), "?")


def _simulated(config: dict) -> bool:
    return all(d.get("source", "simulate") == "simulate" for d in config["datasets"])


def _ours(
    configs: Sequence[dict], reports: Sequence[ReportContext], benchmarks: Sequence[str]
) -> dict[str, str]:
    """Our side of the setting table, from the runs' configs (``benchmarks``: each run's)."""
    datasets = sorted(
        {
            f"{BENCHMARK_NAMES[b]} ({_questions(r)} questions"
            f"{', simulated' if _simulated(c) else ''})"
            for c, r, b in zip(configs, reports, benchmarks, strict=True)
        }
    )
    models = sorted({m["name"] for c in configs for m in c["models"]})
    pooled = any(len(c["models"]) > 1 for c in configs)
    actions = sorted(
        {
            f"{c['actions'].get('aggregation', 'majority')} over b in "
            f"{{{', '.join(map(str, c['actions'].get('samples', [])))}}}"
            for c in configs
        }
    )
    stored = sorted({r.run.samples_per_instance for r in reports if r.run.samples_per_instance})
    splits = set()
    for c in configs:
        split, seeds = c.get("split", {}), len(c.get("learn", {}).get("seeds", []))
        folds = split.get("folds", 1)
        test = round(100 / folds)
        cut = (
            f"{folds}-fold cross-fitting (each fold an {100 - test}/{test} split)"
            if folds > 1
            else f"{split.get('train')}/{split.get('validation')}/{split.get('test')} "
            "train/validation/test"
        )
        splits.add(f"{cut}, {seeds} CatBoost seed{'s' if seeds != 1 else ''}")
    return {
        "datasets": "; ".join(datasets),
        "models": ", ".join(models)
        + (", allocated jointly" if pooled else ", each on its own" if len(models) > 1 else ""),
        "actions": "; ".join(actions),
        "estimation": ", ".join(f"{n:,}" for n in stored) + " samples per question",
        "features": _features(reports),
        "splits": "; ".join(sorted(splits)),
    }


def _features(reports: Sequence[ReportContext]) -> str:
    counts = sorted({len(r.learned.importance) for r in reports if r.learned is not None})
    if not counts:
        return "no learned policy"
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    return f"{span} cheap input features (toolkit.features)"


def _differs(configs: Sequence[dict], policy: str) -> tuple[str, ...]:
    simulated = all(_simulated(c) for c in configs)
    models = sorted({m["name"] for c in configs for m in c["models"]})
    outcomes = (
        "Our outcomes are simulated from presets calibrated to each model's published "
        "single-sample accuracy (toolkit/presets.py), not sampled from the models: the gains "
        "measure the method on a known difficulty structure, not on the paper's logs."
        if simulated
        else f"Our outcomes are real samples of {', '.join(models)}, not of the paper's models."
    )
    oracle = (
        "Both oracles are solved on estimated accuracies. Ours, in the oracle column, is solved "
        "on the test samples it is scored on, so it also profits from their estimation noise: "
        "an upper bound. Imitation accuracy is our policy's agreement with the oracle labels at "
        "the budget's price, solved on the test questions' estimates."
    )
    matched = (
        f"Our learned policy is {policy}. Every gain is at matched realised spend (a mix of two "
        "neighbouring budgets of the policy's curve costing exactly B), with a paired bootstrap "
        "95% interval over test questions; the paper reports point figures."
    )
    unlike = sorted(
        {
            f"{c['study']['name']} ({_action_kind(c)})"
            for c in configs
            if _action_kind(c) != "a majority vote, cost in samples"
        }
    )
    actions = (
        (
            f"Not the paper's actions: {'; '.join(unlike)} against its majority vote with cost "
            "in samples; their gains measure another action menu, beside its figures for "
            "orientation only.",
        )
        if unlike
        else ()
    )
    return outcomes, oracle, matched, *actions


_AGGREGATIONS = {
    "majority": "a majority vote",
    "pass": "pass@b, a verifier picking any correct sample",
    "best_of": "best-of-b by a score",
    "weighted": "a score-weighted vote",
}


def _action_kind(config: dict) -> str:
    actions = config["actions"]
    aggregation = actions.get("aggregation", "majority")
    kind = _AGGREGATIONS.get(aggregation, aggregation)
    return f"{kind}, cost in {actions.get('cost', 'samples')}"


def paper_section(reports: Sequence[ReportContext], policy: str) -> PaperSection | None:
    """The section for the evaluated runs on a paper benchmark (None when there is none)."""
    rows: list[PaperRunRow] = []
    configs = []
    kept = []
    benchmarks = []
    for report in reports:
        config = json.loads(report.run.config_json)
        benchmark = benchmark_of(config)
        if benchmark is None or not report.headline:
            continue
        configs.append(config)
        kept.append(report)
        benchmarks.append(benchmark)
        rows += _run_rows(report, benchmark, policy)
    if not rows:
        return None
    ours = _ours(configs, kept, benchmarks)
    return PaperSection(
        paper=PAPER,
        policy=policy,
        setting=tuple((aspect, paper, ours[aspect]) for aspect, paper in SETTING),
        figures=tuple(_figure_row(figure, rows) for figure in FIGURES),
        rows=tuple(rows),
        differs=_differs(configs, policy),
    )


__all__ = ["benchmark_of", "paper_section"]
