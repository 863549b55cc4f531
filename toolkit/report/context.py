"""The report's context: typed, frozen, plain numbers and strings (and the rendered charts).

Each chart has a typed *info* object of plain numbers (built from the database in
``toolkit.report.read``); ``toolkit.report.charts`` only draws it. Tests check the numbers in
the info, not the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup


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
    low: tuple[float | None, ...] | None = None
    high: tuple[float | None, ...] | None = None


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
    tolerance: float
    """A policy over B by more than this share is flagged (``[budgets] tolerance``)."""
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
    """One policy at one budget on the test split: a row of the view ``policy_frontier``
    (numbers may be None where undefined)."""

    policy: str
    budget: float
    n_seeds: int
    binding: bool
    accuracy: float
    accuracy_ci_low: float | None
    accuracy_ci_high: float | None
    planned_cost: float
    cost: float
    budget_error: float
    within_budget: bool
    matched_accuracy: float | None
    matched_accuracy_ci_low: float | None
    matched_accuracy_ci_high: float | None
    gain_vs_best_fixed: float | None
    gain_vs_best_fixed_ci_low: float | None
    gain_vs_best_fixed_ci_high: float | None
    verdict: str
    relative_gain_vs_best_fixed: float | None
    gain_vs_uniform: float | None
    gain_vs_uniform_ci_low: float | None
    gain_vs_uniform_ci_high: float | None
    relative_gain_vs_uniform: float | None
    relative_gain_vs_uniform_ci_low: float | None
    relative_gain_vs_uniform_ci_high: float | None
    oracle_share: float | None
    oracle_share_ci_low: float | None
    oracle_share_ci_high: float | None
    oracle_share_heldout: float | None
    oracle_share_heldout_ci_low: float | None
    oracle_share_heldout_ci_high: float | None
    imitation_accuracy: float
    balanced_accuracy: float | None
    lagrangian_regret: float
    regret_bound: float
    imitation_accuracy_ci_low: float | None = None
    imitation_accuracy_ci_high: float | None = None
    """(Null in a database written before the view had them.)"""


@dataclass(frozen=True)
class FrontierInfo:
    """Left: accuracy against realised cost, one curve per policy over the budget grid (lines
    only). Right: the paired gain over best_fixed at matched spend at each declared budget,
    with its 95% interval as a band."""

    cost_unit: str
    budgets: tuple[float, ...]
    curves: tuple[Series, ...]
    gain: tuple[Series, ...]


@dataclass(frozen=True)
class HeadlineRow:
    """One policy in a budget's headline: its rank (as ``best_policy_per_budget.sql`` ranks
    it; None for the oracle, which is shown first and not ranked), its numbers, and why its
    share of the oracle's gain is undefined where it is."""

    rank: int | None
    point: PolicyPoint
    share_note: str


@dataclass(frozen=True)
class HeadlineBudget:
    """The headline table at one budget: the oracle, then every policy in rank order."""

    budget: float
    label: str
    binding: bool
    rows: tuple[HeadlineRow, ...]


@dataclass(frozen=True)
class NoiseRow:
    """The oracle's gain at one budget on the evidence it chose on and on held-out evidence
    (table ``oracle_noise``)."""

    budget: float
    evidence: str
    actions: str
    apparent_gain: float | None
    heldout_gain: float | None
    heldout_gain_ci_low: float | None
    heldout_gain_ci_high: float | None
    noise_share: float | None
    noise_share_ci_low: float | None
    noise_share_ci_high: float | None


@dataclass(frozen=True)
class SummaryRow:
    """One policy's whole curve in two numbers (table ``policy_summaries``, mean over seeds):
    AIQ and the realised cost at which it reaches the best single action's accuracy."""

    policy: str
    n_seeds: int
    aiq: float | None
    cost_to_reach: float | None
    saving: float | None


@dataclass(frozen=True)
class SummaryInfo:
    """Every policy's AIQ and cost to reach the best action, and what they refer to."""

    rows: tuple[SummaryRow, ...]
    target_action: str
    target_accuracy: float
    target_cost: float
    cost_low: float
    cost_high: float


@dataclass(frozen=True)
class ImportanceRow:
    """A feature's CatBoost importance (mean over seeds and folds), per declared budget."""

    feature: str
    kind: str
    by_budget: tuple[float, ...]
    mean: float


@dataclass(frozen=True)
class LearningCurvePoint:
    """The learned policy (priced on the batch) refitted on a share of its training data."""

    train_rows: int
    accuracy: float
    gain_vs_best_fixed: float
    imitation_accuracy: float


@dataclass(frozen=True)
class LearningCurveInfo:
    """Test accuracy of the learned policy against its training size, at one budget."""

    budget: float
    seed: int
    points: tuple[LearningCurvePoint, ...]


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
    balanced_accuracy: float | None
    support: tuple[float, ...]
    recall: tuple[float | None, ...]


@dataclass(frozen=True)
class RegretRow:
    """The regret bound of one policy at one budget (view ``regret_bound_check``), means over
    seeds; ``bound_used`` = regret / bound (None for a zero bound), ``bound_over_regret`` its
    inverse, ``vacuous`` when the bound is at least the worst allocation's regret."""

    policy: str
    budget: float
    n_seeds: int
    lambda_star: float
    imitation_error: float
    delta_max: float
    bound: float
    regret: float
    mean_gap: float
    bound_used: float | None
    max_bound_used: float | None
    bound_over_regret: float | None
    vacuous: bool
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
    """Accuracy against realised cost for every policy; ``n_seeds``: the CatBoost seeds the
    learned policies' numbers average over; ``folds``: 1, or the cross-fitting folds."""

    info: FrontierInfo
    n_seeds: int
    folds: int
    test_instances: int
    summary: SummaryInfo | None
    noise: tuple[NoiseRow, ...]
    chart: Chart


@dataclass(frozen=True)
class LearnedSection:
    """What the learned policy looks at (feature importance) and how it grows with data."""

    budgets: tuple[float, ...]
    importance: tuple[ImportanceRow, ...]
    learning_curve: LearningCurveInfo | None
    chart: Chart | None


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
class RuleActionRow:
    """One adaptive action over all instances (view ``action_accuracy``)."""

    action: str
    rule: str
    mean_samples: float
    mean_cost: float
    mean_acc: float


@dataclass(frozen=True)
class SavingsRow:
    """A stopping-rule family against the largest static vote (``adaptive_savings.sql``)."""

    model: str
    family: str
    tolerance: float
    reference: str
    reference_acc: float
    reference_samples: float
    matching_rule: str | None
    rule_acc: float | None
    rule_samples: float | None
    samples_saved_factor: float | None


@dataclass(frozen=True)
class AdaptiveBudget:
    """At one budget: the static references, each rule family, the two oracles and the learned
    policies of either menu, at matched realised spend."""

    budget: float
    label: str
    rows: tuple[PolicyPoint, ...]


@dataclass(frozen=True)
class AdaptiveSection:
    """Runs with stopping rules: what each rule buys, the samples it needs to match the largest
    static vote, and static against adaptive allocation at the same spend."""

    actions: tuple[RuleActionRow, ...]
    savings: tuple[SavingsRow, ...]
    budgets: tuple[AdaptiveBudget, ...]


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
    learned: LearnedSection | None = None
    adaptive: AdaptiveSection | None = None
    notes: tuple[str, ...] = ()
    """Charts left out, and why (a chart of one point says nothing)."""
    paper: PaperSection | None = None
    """The paper's figures beside the run's, for a run on MATH or GSM8K."""
    reference: ReferenceSection | None = None
    """The run's accuracies beside published curves declared for its data."""


@dataclass(frozen=True)
class ComparisonRow:
    """One run at one budget in the comparison: uniform, the featured policy and the oracle."""

    run: str
    budget: float
    budget_label: str
    best_fixed: float | None
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
    paper: PaperSection | None = None
    """The paper's figures beside the runs', for the runs on MATH or GSM8K."""


@dataclass(frozen=True)
class PaperFigureRow:
    """A published figure beside ours: for an "up to" claim our best (run and budget) over the
    comparable runs and budgets, for an "over" claim our lowest, with its 95% interval."""

    label: str
    paper: str
    ours: float | None
    ci_low: float | None
    ci_high: float | None
    where: str
    spread: str
    """Our range over every comparable run and budget (``min to max``)."""
    ceiling: float | None = None
    """For a gain: the oracle's best over the same runs and budgets, what any policy could
    reach on these outcomes (solved on the samples it is scored on, so optimistic)."""


@dataclass(frozen=True)
class PaperRunRow:
    """One comparable run at one budget: the learned policy's relative gain over uniform at
    matched spend, the oracle's (solved on the samples it is scored on), and imitation."""

    run: str
    benchmark: str
    models: str
    budget_label: str
    relative_gain: float | None
    relative_gain_ci_low: float | None
    relative_gain_ci_high: float | None
    oracle_relative_gain: float | None
    imitation: float | None
    imitation_ci_low: float | None
    imitation_ci_high: float | None


@dataclass(frozen=True)
class PaperSection:
    """The paper's published setting and figures beside the runs' own (``toolkit.paper``)."""

    paper: str
    policy: str
    setting: tuple[tuple[str, str, str], ...]
    """(aspect, the paper's, ours)."""
    figures: tuple[PaperFigureRow, ...]
    rows: tuple[PaperRunRow, ...]
    differs: tuple[str, ...]
    """What differs between the paper's measurements and ours, a sentence each."""


@dataclass(frozen=True)
class ReferenceRow:
    """A published accuracy at b beside the run's own of the same model (None where the run
    does not measure it: its aggregation measures the other curve, or it has no action of b
    samples)."""

    dataset: str
    model: str
    curve: str
    b: int
    published: float
    ours: float | None


@dataclass(frozen=True)
class ReferenceSection:
    """The run's accuracy by b beside the published curves declared for its datasets
    (``reference_curves``)."""

    sources: tuple[str, ...]
    aggregation: str
    rows: tuple[ReferenceRow, ...]
    charts: tuple[Chart, ...]
