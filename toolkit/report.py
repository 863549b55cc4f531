"""The HTML report: one self-contained file per run, or several runs side by side.

``build_context(backend, run_id)`` reads a study database (through the views of ``sql/views``)
into one frozen ``ReportContext``; ``render`` fills the Jinja templates of ``reports/`` with it.
Templates format, they do not compute.

Charts are inline SVG drawn with matplotlib, so the file opens offline. Each chart has a typed
*info* object of plain numbers, built from the database by a ``*_info`` function; the
``plot_*`` function only draws it. Tests check the numbers in the info, not the picture.

Policies with several CatBoost seeds (``learned_*``) are shown as the mean over their seeds,
intervals included (the views say how). The learned policy the allocation, imitation and
regret sections feature is ``learned_calibrated``: the held-out deployment, its price set on
the validation split.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import matplotlib as mpl
import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from toolkit import bi, db
from toolkit.errors import StudyError
from toolkit.resources import reports_dir

_ = ibis._

POLICY_ORDER = (
    "oracle",
    "learned_calibrated",
    "learned_batch",
    "learned_argmax",
    "difficulty_bins",
    "prompt_length",
    "random",
    "uniform",
)
"""Display order of the policies: the upper bound, the learned ones, the baselines."""

FEATURED_POLICY = "learned_calibrated"
"""The learned policy the allocation, imitation and regret sections show next to the oracle."""


# --------------------------------------------------------------------------------------------
# The context: typed, frozen, plain numbers and strings (and the rendered charts)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chart:
    """A rendered chart: ``name`` becomes the element id ``chart-<name>``."""

    name: str
    title: str
    svg: Markup


@dataclass(frozen=True)
class Series:
    """One line of a chart, with an optional band (a confidence interval) around it."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Panel:
    """One axes of a multi-panel line chart."""

    title: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class TableSize:
    """Rows a run holds in one table."""

    table: str
    rows: int


@dataclass(frozen=True)
class RunInfo:
    """The study and run: settings, versions and data sizes."""

    run_id: int
    study: str
    description: str
    seed: int
    config_hash: str
    cost_unit: str
    aggregation: str
    samples_per_instance: int | None
    engine: str
    training: str
    """How many training instances CatBoost saw (a seeded sample beyond learn.max_train_rows)."""
    created_at: str
    database: str
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    actions: tuple[str, ...]
    budgets: tuple[float, ...]
    policies: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]
    sizes: tuple[TableSize, ...]
    config_json: str


@dataclass(frozen=True)
class ActionAccuracyRow:
    """One action over all instances: its mean cost and accuracy (estimated and, in
    simulation, true), and the mean absolute estimation error."""

    action: str
    b: int
    mean_cost: float
    mean_acc: float
    mean_acc_true: float | None
    mean_abs_error: float | None


@dataclass(frozen=True)
class LevelAccuracyInfo:
    """Mean accuracy of every b per difficulty level, for one model: one series per level."""

    model: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class PolicyPoint:
    """One policy at one budget on the test split (view ``policy_frontier``)."""

    policy: str
    budget: float
    n_seeds: int
    accuracy: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    cost: float
    gain: float
    gain_ci_low: float
    gain_ci_high: float
    relative_gain: float
    relative_gain_ci_low: float
    relative_gain_ci_high: float
    oracle_share: float | None
    oracle_share_ci_low: float | None
    oracle_share_ci_high: float | None
    imitation_accuracy: float
    balanced_accuracy: float


@dataclass(frozen=True)
class FrontierInfo:
    """Accuracy and gain over uniform against the budget, one series per policy, with the
    95% intervals as bands."""

    cost_unit: str
    accuracy: tuple[Series, ...]
    gain: tuple[Series, ...]


@dataclass(frozen=True)
class HeadlineBudget:
    """The headline table at one budget: every policy, the best first after the oracle."""

    budget: float
    rows: tuple[PolicyPoint, ...]


@dataclass(frozen=True)
class AllocationInfo:
    """Which actions policies choose by level at one budget (view ``allocations_by_level``):
    ``shares[p][a][l]`` is the mean weight policy p puts on action a at level l."""

    budget: float
    policies: tuple[str, ...]
    actions: tuple[str, ...]
    levels: tuple[str, ...]
    shares: tuple[tuple[tuple[float, ...], ...], ...]


@dataclass(frozen=True)
class LevelCostInfo:
    """Mean cost per level, one panel per policy and one series per budget; a series' x
    values are indices into ``levels``."""

    cost_unit: str
    levels: tuple[str, ...]
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class ConfusionInfo:
    """The featured policy against the oracle labels, per budget: ``counts[k][t][p]`` is the
    weight on predicted action p over instances labelled t at budget k (mean over seeds)."""

    policy: str
    actions: tuple[str, ...]
    budgets: tuple[float, ...]
    counts: tuple[tuple[tuple[float, ...], ...], ...]


@dataclass(frozen=True)
class ImitationRow:
    """How well the featured policy imitates the oracle at one budget: overall, and the recall
    of each action's label (None where the oracle never chose the action)."""

    budget: float
    imitation_accuracy: float
    balanced_accuracy: float
    support: tuple[float, ...]
    recall: tuple[float | None, ...]


@dataclass(frozen=True)
class RegretRow:
    """The regret bound of one policy at one budget (view ``regret_bound_check``), means over
    seeds; ``bound_used`` = regret / bound (None for a zero bound)."""

    policy: str
    budget: float
    n_seeds: int
    lambda_star: float
    imitation_error: float
    delta_max: float
    bound: float
    regret: float
    bound_used: float | None
    max_bound_used: float | None
    holds: bool


@dataclass(frozen=True)
class RegretInfo:
    """Realised regret against its bound for every policy and budget."""

    rows: tuple[RegretRow, ...]


@dataclass(frozen=True)
class EstimationInfo:
    """Estimated vs true accuracy over every (instance, action) of a simulated run.

    ``counts[i][j]`` counts pairs with the true accuracy in bin i and the estimate in bin j of
    ``bins`` equal bins over [0, 1]."""

    bins: int
    counts: tuple[tuple[int, ...], ...]
    mean_abs_error: float
    rmse: float


@dataclass(frozen=True)
class OutcomesSection:
    """What each action buys, overall and by level."""

    actions: tuple[ActionAccuracyRow, ...]
    level_accuracy: tuple[LevelAccuracyInfo, ...]
    charts: tuple[Chart, ...]


@dataclass(frozen=True)
class FrontierSection:
    """Accuracy against budget for every policy; ``n_seeds``: the CatBoost seeds the learned
    policies' numbers average over."""

    info: FrontierInfo
    n_seeds: int
    chart: Chart


@dataclass(frozen=True)
class AllocationSection:
    """Where the oracle and the featured policy spend compute."""

    info: AllocationInfo
    level_cost: LevelCostInfo
    charts: tuple[Chart, ...]


@dataclass(frozen=True)
class ImitationSection:
    """The featured policy's imitation of the oracle labels."""

    policy: str
    actions: tuple[str, ...]
    rows: tuple[ImitationRow, ...]
    confusion: ConfusionInfo
    chart: Chart


@dataclass(frozen=True)
class RegretSection:
    """The regret bound: the featured policy per budget in the table, every policy charted."""

    policy: str
    rows: tuple[RegretRow, ...]
    info: RegretInfo
    all_hold: bool
    chart: Chart


@dataclass(frozen=True)
class EstimationSection:
    """Simulation only: how far the estimated accuracy is from the truth."""

    info: EstimationInfo
    chart: Chart


@dataclass(frozen=True)
class ReportContext:
    """Everything one run's report shows. A run without evaluations (``stl simulate``) has
    None for the evaluation sections; a real-data run has no estimation section."""

    title: str
    run: RunInfo
    outcomes: OutcomesSection
    frontier: FrontierSection | None
    headline: tuple[HeadlineBudget, ...]
    allocation: AllocationSection | None
    imitation: ImitationSection | None
    regret: RegretSection | None
    estimation: EstimationSection | None


@dataclass(frozen=True)
class ComparisonRow:
    """One run at one budget in the comparison: uniform, the featured policy and the oracle."""

    run: str
    budget: float
    uniform: float
    featured: float | None
    oracle: float | None
    oracle_share: float | None


@dataclass(frozen=True)
class ComparisonContext:
    """Several runs side by side: the gain curves overlaid, then each run's own report."""

    title: str
    policy: str
    rows: tuple[ComparisonRow, ...]
    gain: Panel | None
    chart: Chart | None
    runs: tuple[ReportContext, ...]


# --------------------------------------------------------------------------------------------
# Reading the database into info objects
# --------------------------------------------------------------------------------------------
def _rows(expr: ibis.Table) -> list[dict]:
    return expr.to_pyarrow().to_pylist()


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
    """Every action's mean cost and accuracy over all instances (view ``action_accuracy``)."""
    rows = _rows(_view(backend, "action_accuracy", run_id).order_by("action_id"))
    return tuple(
        ActionAccuracyRow(
            action=r["action"],
            b=r["b"],
            mean_cost=r["mean_cost"],
            mean_acc=r["mean_acc"],
            mean_acc_true=r["mean_acc_true"],
            mean_abs_error=r["mean_abs_error"],
        )
        for r in rows
    )


def level_accuracy_info(backend: ibis.BaseBackend, run_id: int) -> tuple[LevelAccuracyInfo, ...]:
    """Per model, the mean accuracy of each b per dataset and level (view
    ``level_action_accuracy``)."""
    rows = _rows(
        _view(backend, "level_action_accuracy", run_id).order_by(["model", "dataset", "level", "b"])
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
    fields = PolicyPoint.__dataclass_fields__
    points = [PolicyPoint(**{k: v for k, v in r.items() if k in fields}) for r in rows]
    return tuple(sorted(points, key=lambda p: (p.budget, _policy_rank(p.policy))))


def frontier_info(points: Sequence[PolicyPoint], cost_unit: str) -> FrontierInfo:
    """One accuracy series and one gain series per policy, over the budgets."""
    policies = sorted({p.policy for p in points}, key=_policy_rank)

    def series(policy: str, value: str) -> Series:
        mine = sorted((p for p in points if p.policy == policy), key=lambda p: p.budget)
        return Series(
            label=policy,
            x=tuple(p.budget for p in mine),
            y=tuple(getattr(p, value) for p in mine),
            low=tuple(getattr(p, f"{value}_ci_low") for p in mine),
            high=tuple(getattr(p, f"{value}_ci_high") for p in mine),
        )

    return FrontierInfo(
        cost_unit=cost_unit,
        accuracy=tuple(series(p, "accuracy") for p in policies),
        gain=tuple(series(p, "gain") for p in policies),
    )


def headline(points: Sequence[PolicyPoint]) -> tuple[HeadlineBudget, ...]:
    """Per budget, the oracle first, then the other policies by accuracy (best first)."""
    budgets = sorted({p.budget for p in points})
    return tuple(
        HeadlineBudget(
            budget=budget,
            rows=tuple(
                sorted(
                    (p for p in points if p.budget == budget),
                    key=lambda p: (p.policy != "oracle", -p.accuracy),
                )
            ),
        )
        for budget in budgets
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


# --------------------------------------------------------------------------------------------
# Charts: info -> matplotlib figure -> inline SVG
# --------------------------------------------------------------------------------------------
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#d9dee4"
POLICY_STYLE: dict[str, tuple[str, str]] = {
    "oracle": ("#111827", "-"),
    "learned_calibrated": ("#1d4ed8", "-"),
    "learned_batch": ("#60a5fa", "--"),
    "learned_argmax": ("#7c3aed", ":"),
    "difficulty_bins": ("#15803d", "-"),
    "prompt_length": ("#d97706", "-"),
    "random": ("#b91c1c", "-."),
    "uniform": ("#6b7280", "-"),
}
"""Colour and line style per policy, the same in every chart and every report."""

_EXTRA_COLORS = ("#0f766e", "#be185d", "#854d0e", "#4338ca", "#9a3412", "#166534")
_SVG_METADATA = ("Creator", "Date", "Format", "Type")
"""matplotlib's default SVG metadata, left out: a date would make reports differ run to run."""


_POINTS = FuncFormatter(lambda value, _position: f"{100 * value:+.1f}" if value else "0")
"""Tick labels for accuracy differences, in percentage points."""


def policy_style(policy: str) -> tuple[str, str]:
    """The colour and line style of a policy (a stable fallback for unknown names)."""
    if policy in POLICY_STYLE:
        return POLICY_STYLE[policy]
    return _EXTRA_COLORS[sum(map(ord, policy)) % len(_EXTRA_COLORS)], "-"


def _level_colors(n: int) -> list:
    # viridis without its last, pale-yellow fifth: every line stays readable on white
    return [mpl.colormaps["viridis"](v) for v in np.linspace(0.0, 0.8, max(n, 2))][:n]


def _style(ax: Axes) -> None:
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9aa5b1")
    ax.tick_params(colors=INK, labelsize=9)
    ax.xaxis.label.set_color(INK)
    ax.yaxis.label.set_color(INK)
    ax.title.set_color(INK)


def svg(figure: Figure, name: str) -> Markup:
    """The figure as an inline ``<svg>`` element: text stays text, and ids are salted with the
    chart's name so that several charts in one page never share a clip-path id."""
    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": name, "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata=dict.fromkeys(_SVG_METADATA))
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])


def _budget_axis(ax: Axes, budgets: Sequence[float], cost_unit: str | None) -> None:
    # budgets spanning a factor of 8 or more (4, 16, 64) read better on a log scale
    if budgets and min(budgets) > 0 and max(budgets) / min(budgets) >= 8:
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
    ax.set_xticks(list(budgets), [f"{b:g}" for b in budgets])
    ax.set_xlabel("budget B" if cost_unit is None else f"budget B, mean {cost_unit} per question")


def plot_frontier(info: FrontierInfo) -> Figure:
    """Left: accuracy against budget per policy, 95% intervals as bands. Right: the paired gain
    over uniform, where the intervals are narrow enough to tell policies apart."""
    figure = Figure(figsize=(11.5, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    budgets = sorted({x for s in info.accuracy for x in s.x})
    for ax, group, ylabel, formatter in (
        (left, info.accuracy, "accuracy (test split)", PercentFormatter(xmax=1, decimals=0)),
        (right, info.gain, "gain over uniform (accuracy points)", _POINTS),
    ):
        for series in group:
            color, line = policy_style(series.label)
            ax.plot(
                series.x,
                series.y,
                color=color,
                linestyle=line,
                linewidth=1.9,
                marker="o",
                markersize=3.5,
                label=series.label,
            )
            if series.low is not None and series.high is not None:
                ax.fill_between(
                    series.x, series.low, series.high, color=color, alpha=0.10, linewidth=0
                )
        _budget_axis(ax, budgets, info.cost_unit)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(formatter)
        _style(ax)
    right.axhline(0.0, color=MUTED, linewidth=0.8)
    handles, labels = left.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right center", frameon=False, fontsize=9)
    return figure


def plot_level_accuracy(info: LevelAccuracyInfo) -> Figure:
    """Accuracy against b (log scale), one line per difficulty level."""
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.add_subplot()
    for color, series in zip(_level_colors(len(info.series)), info.series, strict=True):
        ax.plot(
            series.x,
            series.y,
            marker="o",
            markersize=4,
            linewidth=1.8,
            color=color,
            label=series.label,
        )
    ax.set_xscale("log", base=2)
    xs = sorted({x for s in info.series for x in s.x})
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel("b, samples per question")
    ax.set_ylabel("mean accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_title(info.model, fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _style(ax)
    return figure


def plot_allocation(info: AllocationInfo) -> Figure:
    """Per policy, the share of each action by level as stacked bars (darker: more compute)."""
    figure = Figure(figsize=(11.5, 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(info.policies), sharey=True))
    colors = [mpl.colormaps["Blues"](v) for v in np.linspace(0.25, 0.95, len(info.actions))]
    positions = np.arange(len(info.levels))
    for ax, policy, shares in zip(axes, info.policies, info.shares, strict=True):
        bottom = np.zeros(len(info.levels))
        for color, action, share in zip(colors, info.actions, shares, strict=True):
            ax.bar(
                positions,
                share,
                bottom=bottom,
                color=color,
                width=0.72,
                label=action,
                edgecolor="white",
                linewidth=0.5,
            )
            bottom += np.asarray(share)
        ax.set_xticks(positions, info.levels, rotation=30 if len(info.levels) > 6 else 0)
        ax.set_ylim(0, 1)
        ax.set_title(f"{policy}, B = {info.budget:g}", fontsize=10, loc="left")
        ax.set_xlabel("difficulty level")
        _style(ax)
        ax.grid(False, axis="x")
    axes[0].set_ylabel("share of questions")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="outside right center",
        frameon=False,
        fontsize=9,
        title="action",
        title_fontsize=9,
    )
    return figure


def plot_level_cost(info: LevelCostInfo) -> Figure:
    """Per policy, the mean cost spent on each level, one line per budget."""
    figure = Figure(figsize=(11.5, 3.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(info.panels), sharey=True))
    for ax, panel in zip(axes, info.panels, strict=True):
        colors = _level_colors(len(panel.series))
        for color, series in zip(colors, panel.series, strict=True):
            ax.plot(
                series.x,
                series.y,
                marker="o",
                markersize=4,
                linewidth=1.8,
                color=color,
                label=series.label,
            )
        ax.set_xticks(
            range(len(info.levels)), info.levels, rotation=30 if len(info.levels) > 6 else 0
        )
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.set_xlabel("difficulty level")
        _style(ax)
    axes[0].set_ylabel(f"mean cost ({info.cost_unit})")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right center", frameon=False, fontsize=9)
    return figure


def plot_confusion(info: ConfusionInfo) -> Figure:
    """One heatmap per budget: rows the oracle's label, columns the policy's choice, colour the
    row share (recall on the diagonal), each cell annotated with that share in percent."""
    n = len(info.budgets)
    columns = min(n, 5)
    rows = -(-n // columns)
    panel = min(3.2, 10.5 / columns)
    figure = Figure(figsize=(columns * panel + 1.0, rows * (panel + 0.9)), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    image = None
    for index, (ax, budget, counts) in enumerate(
        zip(axes, info.budgets, info.counts, strict=False)
    ):
        matrix = np.asarray(counts, dtype=float)
        totals = matrix.sum(axis=1, keepdims=True)
        share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for t in range(share.shape[0]):
            for p in range(share.shape[1]):
                if totals[t, 0] > 0:
                    ax.text(
                        p,
                        t,
                        f"{100 * share[t, p]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if share[t, p] > 0.6 else INK,
                    )
        ticks = range(len(info.actions))
        ax.set_xticks(ticks, info.actions, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(ticks, info.actions if index % columns == 0 else [], fontsize=8)
        ax.set_title(f"B = {budget:g}", fontsize=10, loc="left", color=INK)
    for ax in axes[n:]:
        ax.set_visible(False)
    figure.supxlabel(f"action {info.policy} chooses", fontsize=9, color=INK)
    figure.supylabel("oracle label", fontsize=9, color=INK)
    if image is not None:
        bar = figure.colorbar(image, ax=list(axes[:n]), shrink=0.8)
        bar.set_label("share of the label's questions", fontsize=8, color=INK)
        bar.ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
        bar.ax.tick_params(labelsize=8)
    return figure


def plot_regret(info: RegretInfo) -> Figure:
    """The share of its bound each policy's realised regret uses, against the budget: the
    bound holds below 1 (the dashed line)."""
    figure = Figure(figsize=(6.8, 3.9), layout="constrained")
    ax = figure.add_subplot()
    for policy in sorted({r.policy for r in info.rows}, key=_policy_rank):
        mine = [r for r in info.rows if r.policy == policy and r.bound_used is not None]
        color, line = policy_style(policy)
        ax.plot(
            [r.budget for r in mine],
            [r.bound_used for r in mine],
            color=color,
            linestyle=line,
            linewidth=1.8,
            marker="o",
            markersize=3.5,
            label=policy,
        )
    ax.axhline(1.0, color="#b91c1c", linewidth=1, linestyle="--", label="bound")
    _budget_axis(ax, sorted({r.budget for r in info.rows}), None)
    ax.set_ylabel("realised regret / bound")
    top = max([1.0] + [r.bound_used for r in info.rows if r.bound_used is not None])
    ax.set_ylim(0, top * 1.08)
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _style(ax)
    return figure


def plot_estimation(info: EstimationInfo) -> Figure:
    """Estimated against true accuracy as a 2-D histogram (log colour scale), the diagonal
    marking a perfect estimate."""
    figure = Figure(figsize=(4.8, 3.9), layout="constrained")
    ax = figure.add_subplot()
    counts = np.asarray(info.counts, dtype=float).T  # rows: the estimate (y); columns: truth
    edges = np.linspace(0, 1, info.bins + 1)
    mesh = ax.pcolormesh(
        edges,
        edges,
        np.ma.masked_equal(counts, 0),
        cmap="Blues",
        norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)),
    )
    ax.plot([0, 1], [0, 1], color="#c2410c", linewidth=1, linestyle="--", label="estimate = truth")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("true accuracy (acc_true)")
    ax.set_ylabel("estimated accuracy (acc)")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    bar = figure.colorbar(mesh, ax=ax, shrink=0.85)
    bar.set_label("instance x action pairs", color=INK, fontsize=9)
    bar.ax.tick_params(labelsize=8)
    _style(ax)
    ax.grid(False)
    return figure


def plot_comparison(panel: Panel, cost_unit: str) -> Figure:
    """The runs' gain over uniform against budget, overlaid."""
    figure = Figure(figsize=(8.5, 4.0), layout="constrained")
    ax = figure.add_subplot()
    for index, series in enumerate(panel.series):
        color = _EXTRA_COLORS[index % len(_EXTRA_COLORS)]
        ax.plot(
            series.x,
            series.y,
            color=color,
            linewidth=1.9,
            marker="o",
            markersize=3.5,
            label=series.label,
        )
        if series.low is not None and series.high is not None:
            ax.fill_between(series.x, series.low, series.high, color=color, alpha=0.12, linewidth=0)
    ax.axhline(0.0, color=MUTED, linewidth=0.8)
    _budget_axis(ax, sorted({x for s in panel.series for x in s.x}), cost_unit)
    ax.set_ylabel("gain over uniform (accuracy points)")
    ax.yaxis.set_major_formatter(_POINTS)
    ax.set_title(panel.title, fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _style(ax)
    return figure


# --------------------------------------------------------------------------------------------
# Building the context
# --------------------------------------------------------------------------------------------
def _chart(name: str, title: str, figure: Figure) -> Chart:
    return Chart(name=name, title=title, svg=svg(figure, name))


def build_context(
    backend: ibis.BaseBackend, run_id: int, database: str = "", chart_prefix: str = ""
) -> ReportContext:
    """Read one run into the report context, drawing every chart. ``chart_prefix`` keeps chart
    ids unique when several runs share one page."""
    run = run_info(backend, run_id, database)
    levels = level_accuracy_info(backend, run_id)
    outcomes = OutcomesSection(
        actions=action_accuracy_rows(backend, run_id),
        level_accuracy=levels,
        charts=tuple(
            _chart(
                f"{chart_prefix}level-accuracy-{index}",
                f"Accuracy by b and level, {info.model}",
                plot_level_accuracy(info),
            )
            for index, info in enumerate(levels)
        ),
    )
    truth = estimation_info(backend, run_id)
    estimation = None
    if truth is not None:
        estimation = EstimationSection(
            info=truth,
            chart=_chart(
                f"{chart_prefix}estimation", "Estimated vs true accuracy", plot_estimation(truth)
            ),
        )
    points = policy_points(backend, run_id)
    if not points:
        return ReportContext(
            title=f"{run.study}, run {run.run_id}",
            run=run,
            outcomes=outcomes,
            frontier=None,
            headline=(),
            allocation=None,
            imitation=None,
            regret=None,
            estimation=estimation,
        )

    frontier = frontier_info(points, run.cost_unit)
    featured = featured_policy(points)
    shown = tuple(p for p in ("oracle", featured) if any(q.policy == p for q in points))
    allocation = allocation_info(backend, run_id, shown, _middle([p.budget for p in points]))
    level_cost = level_cost_info(backend, run_id, shown, run.cost_unit)
    confusion = confusion_info(backend, run_id, featured)
    regret = regret_info(backend, run_id)
    featured_regret = tuple(r for r in regret.rows if r.policy == featured)
    return ReportContext(
        title=f"{run.study}, run {run.run_id}",
        run=run,
        outcomes=outcomes,
        frontier=FrontierSection(
            info=frontier,
            n_seeds=max(p.n_seeds for p in points),
            chart=_chart(
                f"{chart_prefix}frontier",
                "Accuracy and gain over uniform vs budget",
                plot_frontier(frontier),
            ),
        ),
        headline=headline(points),
        allocation=AllocationSection(
            info=allocation,
            level_cost=level_cost,
            charts=(
                _chart(
                    f"{chart_prefix}allocation",
                    f"Actions chosen by level at B = {allocation.budget:g}",
                    plot_allocation(allocation),
                ),
                _chart(
                    f"{chart_prefix}level-cost",
                    "Mean cost by level at every budget",
                    plot_level_cost(level_cost),
                ),
            ),
        ),
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
            rows=featured_regret,
            info=regret,
            all_hold=all(r.holds for r in regret.rows),
            chart=_chart(
                f"{chart_prefix}regret",
                "Share of the bound the realised regret uses",
                plot_regret(regret),
            ),
        ),
        estimation=estimation,
    )


def comparison_context(reports: Sequence[ReportContext]) -> ComparisonContext:
    """Runs side by side: per run and budget uniform, the featured policy and the oracle, and
    the featured policy's gain curves overlaid."""
    policy = FEATURED_POLICY
    rows = []
    series = []
    for report in reports:
        label = f"{report.run.study} (run {report.run.run_id})"
        for block in report.headline:
            by_policy = {p.policy: p for p in block.rows}
            if "uniform" not in by_policy:
                continue
            featured = by_policy.get(policy)
            oracle = by_policy.get("oracle")
            rows.append(
                ComparisonRow(
                    run=label,
                    budget=block.budget,
                    uniform=by_policy["uniform"].accuracy,
                    featured=None if featured is None else featured.accuracy,
                    oracle=None if oracle is None else oracle.accuracy,
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
    panel = Panel(title=f"{policy}: gain over uniform", series=tuple(series)) if series else None
    chart = None
    if panel is not None:
        unit = units.pop() if len(units) == 1 else "cost"
        chart = _chart("comparison", "Gain over uniform, run by run", plot_comparison(panel, unit))
    return ComparisonContext(
        title=" vs ".join(f"{r.run.study} (run {r.run.run_id})" for r in reports),
        policy=policy,
        rows=tuple(rows),
        gain=panel,
        chart=chart,
        runs=tuple(reports),
    )


# --------------------------------------------------------------------------------------------
# Rendering and writing
# --------------------------------------------------------------------------------------------
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(reports_dir()),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["pct"] = lambda value, digits=1: f"{100 * value:.{digits}f}%"
    environment.filters["pts"] = lambda value, digits=1: f"{100 * value:+.{digits}f}"
    environment.filters["num"] = lambda value, digits=3: f"{value:,.{digits}f}"
    environment.filters["count"] = lambda value: f"{value:,}"
    return environment


def render(context: ReportContext | ComparisonContext) -> str:
    """The HTML page for a context (``study.html.j2`` or ``compare.html.j2``)."""
    template = "compare.html.j2" if isinstance(context, ComparisonContext) else "study.html.j2"
    return _environment().get_template(template).render(ctx=context)


def latest_run(backend: ibis.BaseBackend, database: str) -> int:
    """The most recent run in a database."""
    latest = _scalar(backend.table("runs").run_id.max())
    if latest is None:
        raise StudyError(f"{database}: the database holds no run")
    return int(latest)


def _write(context: ReportContext | ComparisonContext, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(context), encoding="utf-8")
    return out


def write_report(database: str | Path, out: str | Path, run_id: int | None = None) -> Path:
    """Render one run's report (the latest run by default) into ``out``; the path."""
    backend = bi.open_read_only(database)
    try:
        chosen = run_id if run_id is not None else latest_run(backend, str(database))
        context = build_context(backend, chosen, str(database))
    finally:
        backend.disconnect()
    return _write(context, Path(out))


def write_comparison(
    databases: Sequence[str | Path], out: str | Path, run_ids: Sequence[int] = ()
) -> Path:
    """Render several runs side by side into ``out``; the path.

    Several databases: each contributes its latest run. One database: the runs ``run_ids``
    (every run in it when empty)."""
    if len(databases) > 1 and run_ids:
        raise StudyError("compare several databases (their latest runs) or runs of one database")
    reports: list[ReportContext] = []
    for database in databases:
        backend = bi.open_read_only(database)
        try:
            if len(databases) > 1:
                wanted = [latest_run(backend, str(database))]
            else:
                wanted = list(run_ids) or sorted(_scalar(backend.table("runs").run_id.collect()))
            for run_id in wanted:
                prefix = f"run{len(reports)}-"
                reports.append(build_context(backend, run_id, str(database), prefix))
        finally:
            backend.disconnect()
    if len(reports) < 2:
        raise StudyError("a comparison needs at least two runs")
    return _write(comparison_context(reports), Path(out))


def write(
    databases: Sequence[str | Path], out: str | Path | None = None, run_ids: Sequence[int] = ()
) -> Path:
    """The report the ``report`` command asks for: one run (one database and at most one run
    id; written as ``report.html`` next to the database by default), or a side-by-side
    comparison (several databases or run ids; ``compare.html`` by default)."""
    if not databases:
        raise StudyError("name at least one study database")
    folder = Path(databases[0]).parent
    if len(databases) == 1 and len(run_ids) <= 1:
        return write_report(
            databases[0], out or folder / "report.html", run_ids[0] if run_ids else None
        )
    return write_comparison(databases, out or folder / "compare.html", run_ids)


__all__ = [
    "ComparisonContext",
    "ReportContext",
    "build_context",
    "comparison_context",
    "render",
    "write",
    "write_comparison",
    "write_report",
]
