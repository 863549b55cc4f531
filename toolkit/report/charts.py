"""Charts: an info object -> a matplotlib figure -> inline SVG (the report opens offline)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator, PercentFormatter

from toolkit.formatting import format_cost
from toolkit.report.context import (
    AllocationInfo,
    ConfusionInfo,
    EstimationInfo,
    FrontierInfo,
    LearningCurveInfo,
    LevelAccuracyInfo,
    LevelCostInfo,
    Panel,
    RegretInfo,
    Series,
)
from toolkit.report.read import _policy_rank

# --------------------------------------------------------------------------------------------
# Charts: info -> matplotlib figure -> inline SVG
# --------------------------------------------------------------------------------------------
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#d9dee4"
POLICY_STYLE: dict[str, tuple[str, str]] = {
    "oracle": ("#111827", "-"),
    "oracle_probe": ("#111827", ":"),
    "oracle_adaptive": ("#111827", "-."),
    "learned_adaptive": ("#be185d", "-"),
    "label_known": ("#a16207", ":"),
    "learned_probe": ("#0e7490", "-"),
    "learned_calibrated": ("#1d4ed8", "-"),
    "learned_batch": ("#60a5fa", "--"),
    "learned_argmax": ("#7c3aed", ":"),
    "difficulty_bins": ("#15803d", "-"),
    "prompt_length": ("#d97706", "-"),
    "random": ("#b91c1c", "-."),
    "best_fixed": ("#374151", "--"),
    "uniform": ("#9ca3af", "-"),
}
"""Colour and line style per policy, the same in every chart and every report."""

_EXTRA_COLORS = ("#0f766e", "#be185d", "#854d0e", "#4338ca", "#9a3412", "#166534")
_SVG_METADATA = ("Creator", "Date", "Format", "Type")
"""matplotlib's default SVG metadata, left out: a date would make reports differ run to run."""


class _Points(Formatter):
    """Tick labels for accuracy differences, in signed percentage points, with the decimals the
    ticks' spacing needs (0.05 points apart: two; never two ticks with one label)."""

    decimals = 1

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        steps = np.diff(np.sort(np.asarray(values, dtype=float) * 100))
        step = steps[steps > 0].min() if (steps > 0).any() else 1.0
        self.decimals = int(min(4, max(1, -np.floor(np.log10(step) + 1e-9))))
        return [self(value, i) for i, value in enumerate(values)]

    def __call__(self, value: float, pos: int | None = None) -> str:
        return f"{100 * value:+.{self.decimals}f}" if value else "0"


def _points_axis(axis: mpl.axis.Axis) -> None:
    """An accuracy-difference axis: ticks at 1, 2 or 5 times a power of ten points (a 0.25-point
    step would print as +0.2, +0.5, +0.8), labelled in percentage points."""
    axis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    axis.set_major_formatter(_Points())


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


def _cost_axis(ax: Axes, costs: Sequence[float], cost_unit: str) -> None:
    positive = [c for c in costs if c > 0]
    if positive and max(positive) / min(positive) >= 8:
        ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: format_cost(v, cost_unit)))
    ax.set_xlabel(f"realised mean cost ({cost_unit} per question)")


def plot_frontier(info: FrontierInfo) -> Figure:
    """Left: accuracy against realised cost, one line per policy over the budget grid (the
    declared budgets dotted). Right: the paired gain over best_fixed at matched spend at each
    declared budget, 95% intervals as error bars, policies side by side. One legend."""
    figure = Figure(figsize=(11.5, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    for series in info.curves:
        color, line = policy_style(series.label)
        left.plot(
            series.x, series.y, color=color, linestyle=line, linewidth=1.7, label=series.label
        )
    for budget in info.budgets:
        left.axvline(budget, color=GRID, linewidth=0.9, linestyle=":", zorder=0)
    _cost_axis(left, [x for s in info.curves for x in s.x], info.cost_unit)
    left.set_ylabel("accuracy (test)")
    left.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    _style(left)
    positions = np.arange(len(info.budgets))
    width = 0.8 / max(len(info.gain), 1)
    for index, series in enumerate(info.gain):
        color, _line = policy_style(series.label)
        x = np.array([info.budgets.index(b) for b in series.x]) + (index + 0.5) * width - 0.4
        assert series.low is not None and series.high is not None  # a gain has its interval
        low = [
            y - lo if lo is not None else 0.0 for y, lo in zip(series.y, series.low, strict=True)
        ]
        high = [
            hi - y if hi is not None else 0.0 for y, hi in zip(series.y, series.high, strict=True)
        ]
        right.errorbar(
            x,
            series.y,
            yerr=[low, high],
            fmt="o",
            color=color,
            markersize=3.5,
            elinewidth=1.4,
            capsize=2,
            label=None,
        )
        if not any(s.label == series.label for s in info.curves):
            right.plot([], [], color=color, label=series.label)
    right.axhline(0.0, color=MUTED, linewidth=0.8)
    right.set_xticks(positions, [format_cost(b, info.cost_unit) for b in info.budgets])
    right.set_xlabel(f"budget B ({info.cost_unit} per question)")
    right.set_ylabel("gain over best_fixed at matched spend (points)")
    _points_axis(right.yaxis)
    _style(right)
    handles, labels = left.get_legend_handles_labels()
    extra_handles, extra_labels = right.get_legend_handles_labels()
    figure.legend(
        handles + extra_handles,
        labels + extra_labels,
        loc="outside right center",
        frameon=False,
        fontsize=9,
    )
    return figure


def plot_learning_curve(info: LearningCurveInfo) -> Figure:
    """The learned policy's test accuracy and gain over best_fixed against training size."""
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.add_subplot()
    x = [p.train_rows for p in info.points]
    color, _line = policy_style("learned_batch")
    ax.plot(
        x,
        [p.gain_vs_best_fixed for p in info.points],
        color=color,
        marker="o",
        linewidth=1.8,
        label="learned_batch - best_fixed",
    )
    ax.axhline(0.0, color=MUTED, linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [f"{v:,}" for v in x])
    ax.minorticks_off()
    ax.set_xlabel("training instances")
    ax.set_ylabel("gain over best_fixed (points)")
    _points_axis(ax.yaxis)
    ax.set_title(f"B = {info.budget:g}, seed {info.seed}", fontsize=10, loc="left")
    _style(ax)
    return figure


def _level_lines(ax, series: Sequence[Series]) -> None:
    """One marked line per series, in the level palette (easy to hard)."""
    for color, line in zip(_level_colors(len(series)), series, strict=True):
        ax.plot(
            line.x,
            line.y,
            marker="o",
            markersize=4,
            linewidth=1.8,
            color=color,
            label=line.label,
        )


def plot_level_accuracy(info: LevelAccuracyInfo) -> Figure:
    """Accuracy against b (log scale), one line per difficulty level."""
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = figure.add_subplot()
    _level_lines(ax, info.series)
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
        _level_lines(ax, panel.series)
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
        mine = [
            (r.budget, r.bound_used)
            for r in info.rows
            if r.policy == policy and r.bound_used is not None
        ]
        color, line = policy_style(policy)
        ax.plot(
            [budget for budget, _ in mine],
            [used for _, used in mine],
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
    """The runs' gain over best_fixed at each budget, runs side by side at each budget with
    their 95% intervals as error bars (overlaid bands of several runs blur into one grey), one
    legend."""
    figure = Figure(figsize=(9.5, 4.0), layout="constrained")
    ax = figure.add_subplot()
    budgets = sorted({x for s in panel.series for x in s.x})
    width = 0.8 / max(len(panel.series), 1)
    for index, series in enumerate(panel.series):
        color = _EXTRA_COLORS[index % len(_EXTRA_COLORS)]
        x = np.array([budgets.index(b) for b in series.x]) + (index + 0.5) * width - 0.4
        errors = None
        if series.low is not None and series.high is not None:
            errors = [
                [
                    y - lo if lo is not None else 0.0
                    for y, lo in zip(series.y, series.low, strict=True)
                ],
                [
                    hi - y if hi is not None else 0.0
                    for y, hi in zip(series.y, series.high, strict=True)
                ],
            ]
        ax.errorbar(
            x,
            series.y,
            yerr=errors,
            fmt="o",
            color=color,
            markersize=4,
            elinewidth=1.4,
            capsize=2,
            label=series.label,
        )
    ax.axhline(0.0, color=MUTED, linewidth=0.8)
    ax.set_xticks(np.arange(len(budgets)), [format_cost(b, cost_unit) for b in budgets])
    ax.set_xlabel(f"budget B ({cost_unit} per question)")
    ax.set_ylabel("gain over best_fixed at matched spend (points)")
    _points_axis(ax.yaxis)
    ax.set_title(panel.title, fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _style(ax)
    return figure
