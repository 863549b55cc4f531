"""Evaluate: every stored policy on the test instances at every budget, compared at the same
realised spend, with paired bootstrap intervals and the regret bound.

Policies (``expand_policies``), all fitted by ``toolkit.learn`` on each fold's training split
and read back as stored; this stage only calls their ``allocate`` on the test inputs, the same
call a deployment makes:

=======================  ==================================================  ================
policy                   what it is                                          budget met on
=======================  ==================================================  ================
``oracle``               the Lagrangian oracle solved on the test outcomes:  test outcomes
                         the upper bound (it sees the outcomes it is scored
                         on, so it also profits from their estimation noise)
``best_fixed``           one mix for all, over the concave hull of actions   test inputs
``uniform``              one mix for all, the two actions around B           test inputs
``always_<model>``       uniform over one model's actions                    test inputs
``random``               the training oracle's action mix                    test inputs
``prompt_length``        planned cost proportional to prompt length          test inputs
``difficulty_bins``      best action per bin of a difficulty signal          test inputs
``learned_argmax``       the classifier's most probable action               (not priced)
``learned_calibrated``   priced decoder, mu set on the validation split      validation
``learned_batch``        the same decoder, mu set on the test batch          test inputs
=======================  ==================================================  ================

"Test inputs" means the policy sets its price on the batch it serves from the inputs only
(features and planned costs, ``toolkit.costs``), never the outcomes: its mean *planned* cost is
B exactly. With cross-fitting (``[split] folds = k``) each fold's test split is allocated by
that fold's policies and the folds are pooled: every instance is scored once.

**Two allocations per policy and budget.** The allocation priced at B (``accuracy``,
``planned_cost``, realised ``cost``, ``budget_error``, imitation and regret metrics), and the
*matched* allocation whose realised mean cost is B exactly, a mix of two of its grid budgets
(``toolkit.metrics``): every comparison between policies is made there (``matched_accuracy``
and the gains). Metrics per policy, budget and CatBoost seed (``evaluations``, long form;
seedless policies have a null seed), each with a paired bootstrap 95% interval:

- ``accuracy``, ``planned_cost``, ``cost``, ``budget_error`` = cost / B - 1;
- ``matched_accuracy``: accuracy at realised cost B; ``gain_vs_best_fixed``,
  ``relative_gain_vs_best_fixed``, ``gain_vs_uniform``, ``relative_gain_vs_uniform``: paired
  differences of matched accuracies; ``oracle_share``: gain_vs_best_fixed / the oracle's;
- ``imitation_accuracy``: mean weight on the oracle label at lambda*(B) (top-1 agreement for a
  hard policy); ``balanced_accuracy``: the mean of the per-class recalls;
- ``lagrangian_regret``: ``mean_i max_a L_i(a) - sum_a W_ia L_i(a)`` with
  ``L_i(a) = acc_i(a) - lambda* cost_i(a)``; ``regret_bound``: ``eps * Delta_max`` with eps the
  imitation error and ``Delta_max = max_i max_a L_i(a) - min_a L_i(a)``. Each mistaken instance
  loses at most its own gap, so regret <= eps * Delta_max for every policy; ``regret_bounds``
  records the check.

Undefined values (a share of an oracle gain of zero, a matched accuracy where no two budgets
bracket B) are NULL. ``policy_curves`` holds every policy's (planned cost, realised cost,
accuracy) over the grid, ``policy_summaries`` its AIQ and cost to reach the best action.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import ibis
import numpy as np
import pyarrow as pa

from toolkit import db, solve
from toolkit.config import Study
from toolkit.errors import StudyError
from toolkit.learn import (
    FeatureTable,
    OutcomeMatrix,
    action_menus,
    read_baselines,
    read_features,
    read_outcomes,
    read_planners,
    read_policies,
    run_budget_grid,
    run_outcomes,
)
from toolkit.learned import DEPLOYMENTS, LabelKnown, LearnedDeployment
from toolkit.metrics import (
    RESAMPLES,
    MatchedMix,
    PairedBootstrap,
    defined,
    interval,
    matched_mix,
    ratio,
    summarise_curve,
)
from toolkit.noise import OracleNoise, oracle_noise
from toolkit.policies import Decision, Inputs, Policy
from toolkit.progress import Step, Steps
from toolkit.splits import Fold, folds_of

BASELINE_ORDER = (
    "best_fixed",
    "uniform",
    "random",
    "prompt_length",
    "difficulty_bins",
)
LEARNED = DEPLOYMENTS
PROBED = ("oracle_probe", "learned_probe")
"""The policies that see the probe and choose among its actions (runs with a probe)."""
ADAPTIVE = ("oracle_adaptive", "learned_adaptive")
"""The policies that choose among the static and the adaptive actions (runs with
``[[actions.rules]]``); each rule family on its own is a ``rule_<family>`` policy."""
CEILING = ("label_known",)
"""Reference policies that see something no deployment can (the oracle label)."""
POLICIES = ("oracle", *BASELINE_ORDER, *LEARNED, *PROBED, *ADAPTIVE, *CEILING)
"""Every policy name but the ``always_<model>`` and ``rule_<family>`` rows, in evaluation
order."""
MENU_OF = {
    "oracle_probe": "probe",
    "learned_probe": "probe",
    "oracle_adaptive": "adaptive",
    "learned_adaptive": "adaptive",
}
"""The menu of each policy that does not choose among the static actions (and every
``rule_<family>``: the adaptive menu, ``menu_of``)."""


def menu_of(policy: str) -> str:
    """The menu a policy chooses in."""
    return "adaptive" if policy.startswith("rule_") else MENU_OF.get(policy, "static")


REFERENCES = ("oracle", "best_fixed", "uniform")
"""Always evaluated: every gain is measured against them."""


def expand_policies(
    compare: list[str],
    models: tuple[str, ...] = (),
    probe: bool = False,
    families: tuple[str, ...] = (),
) -> list[str]:
    """The study's ``policies.compare`` names as evaluated policies: ``learned`` is its three
    deployments (and ``learned_probe`` with a probe, ``learned_adaptive`` with stopping rules),
    ``always`` one ``always_<model>`` per model (with more than one model); the references
    (with a probe ``oracle_probe``; with stopping rules ``oracle_adaptive`` and each rule
    ``families``' ``rule_<family>``) are always evaluated."""
    wanted = set(compare) | set(REFERENCES)
    if "learned" in wanted:
        wanted |= set(LEARNED) | set(CEILING) | ({"learned_probe"} if probe else set())
        wanted |= {"learned_adaptive"} if families else set()
    if probe:
        wanted.add("oracle_probe")
    if families:
        wanted.add("oracle_adaptive")
    names = [p for p in POLICIES if p in wanted]
    names += [f"rule_{family}" for family in families]
    distinct = list(dict.fromkeys(models))
    if "always" in wanted and len(distinct) > 1:
        names[names.index("uniform") + 1 : names.index("uniform") + 1] = [
            f"always_{m}" for m in distinct
        ]
    return names


@dataclass
class EvaluationSummary:
    """What the evaluate stage wrote, and its rows in memory for callers."""

    rows: dict[str, int] = field(default_factory=dict)
    evaluations: list[dict] = field(default_factory=list)
    regret: list[dict] = field(default_factory=list)
    summaries: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def value(self, policy: str, budget: float, metric: str, seed: int | None = None) -> dict:
        """The evaluation row of one policy, budget, metric (and seed)."""
        for row in self.evaluations:
            if (row["policy"], row["budget"], row["metric"], row["seed"]) == (
                policy,
                budget,
                metric,
                seed,
            ):
                return row
        raise KeyError((policy, budget, metric, seed))


# --------------------------------------------------------------------------------------------
# The test instances, pooled over folds, and the policies that allocate them
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestSet:
    """The test instances of every fold, pooled (instance_id order), and what each fold's
    policies see of them in each menu."""

    outcomes: OutcomeMatrix
    folds: list[Fold]
    menus: dict[str, np.ndarray]
    """Per menu, its actions' column positions."""
    inputs: dict[tuple[str, int], Inputs]
    """Per (menu, fold): the fold's test inputs, restricted to the menu's actions."""
    positions: dict[int, np.ndarray]
    """Per fold, the rows of its test instances in ``outcomes``."""
    fold_of: np.ndarray
    planned: np.ndarray
    """(n, K) planned cost of every pooled test instance (by its fold's planner)."""

    @property
    def n(self) -> int:
        return len(self.outcomes.instance_ids)


@dataclass
class PolicyRun:
    """One evaluated policy (and CatBoost seed) of one menu: its fitted policy in every fold."""

    name: str
    seed: int | None
    by_fold: dict[int, Policy]
    menu: str = "static"

    def allocate(self, test: TestSet, budget: float) -> tuple[np.ndarray, dict[int, Decision]]:
        """The pooled (n, K) weights at ``budget`` (zero outside the menu) and each fold's
        decision."""
        weights = np.zeros(test.outcomes.acc.shape)
        columns = test.menus[self.menu]
        decisions = {}
        for fold, policy in self.by_fold.items():
            decision = policy.allocate(test.inputs[(self.menu, fold)], budget)
            weights[np.ix_(test.positions[fold], columns)] = decision.weights
            decisions[fold] = decision
        return weights, decisions


def read_test_set(
    backend, study: Study, run_id: int, tables: dict[str, FeatureTable]
) -> tuple[TestSet, OutcomeMatrix]:
    """The pooled test set (with every fold's planned costs) and all the run's outcomes;
    ``tables``: the features each menu's policies see."""
    everything = read_outcomes(backend, run_outcomes(backend, run_id))
    splits = backend.to_pyarrow(backend.table("splits").filter(ibis._.run_id == run_id))
    folds = folds_of(splits)
    if not folds or any(len(f.test) == 0 or len(f.train) == 0 for f in folds):
        raise StudyError(
            f"run {run_id} has no train or test split: evaluate needs the learn stage first"
        )
    actions = backend.to_pyarrow(
        backend.table("actions").filter(ibis._.run_id == run_id).order_by("action_id")
    )
    menus = action_menus(actions)
    planners = read_planners(backend, run_id)
    pooled = np.sort(np.concatenate([f.test for f in folds]))
    test = everything.subset(pooled)
    inputs, positions = {}, {}
    fold_of = np.zeros(len(pooled), dtype=np.int64)
    planned = np.zeros(test.acc.shape)
    for fold in folds:
        rows = np.searchsorted(pooled, fold.test)
        fold_planned = planners[fold.fold].planned(
            tables["static"].frame(fold.test), test.known[rows]
        )
        for menu, columns in menus.items():
            frame = tables[menu].frame(fold.test)
            inputs[(menu, fold.fold)] = Inputs(fold.test, frame, fold_planned[:, columns])
        positions[fold.fold] = rows
        fold_of[rows] = fold.fold
        planned[rows] = fold_planned
    return TestSet(test, folds, menus, inputs, positions, fold_of, planned), everything


def policy_runs(backend, run_id: int, wanted: list[str]) -> list[PolicyRun]:
    """Every wanted policy as stored by the learn stage (learned: one run per seed)."""
    baselines = read_baselines(backend, run_id)
    runs: dict[str, PolicyRun] = {}
    for fold, named in baselines.items():
        for name, policy in named:
            if name in wanted:
                run = runs.setdefault(name, PolicyRun(name, None, {}, menu_of(name)))
                run.by_fold[fold] = policy
    out = [runs[name] for name in wanted if name in runs]
    learned = [(d, "static") for d in LEARNED if d in wanted]
    for name in ("learned_probe", "learned_adaptive"):
        if name in wanted:
            learned.append((name, menu_of(name)))
    if not learned:
        return out
    classifiers: dict[tuple[str, int, int], dict[float, object]] = {}
    for policy in read_policies(backend, run_id):
        key = (policy.menu, policy.seed, policy.fold)
        classifiers.setdefault(key, {})[policy.budget] = policy
    seeds = sorted({seed for _, seed, _ in classifiers})
    for name, menu in learned:
        deployment = "learned_batch" if name in ("learned_probe", "learned_adaptive") else name
        for seed in seeds:
            by_fold = {
                fold: LearnedDeployment(deployment, classifiers[(m, s, fold)])
                for m, s, fold in classifiers
                if s == seed and m == menu
            }
            if by_fold:
                out.append(PolicyRun(name, seed, by_fold, menu))
    if "label_known" in wanted:
        out.append(_label_known(backend, run_id, classifiers, seeds[0]))
    return out


def _label_known(backend, run_id: int, classifiers: dict, seed: int) -> PolicyRun:
    """The ceiling reference: the first seed's static classifiers told the test labels."""
    rows = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter((ibis._.run_id == run_id) & (ibis._.split == "test") & (ibis._.menu == "static"))
        .select("fold", "budget", "instance_id", "action_id")
    ).to_pylist()
    labels: dict[int, dict[float, dict[int, int]]] = {}
    for row in rows:
        by_budget = labels.setdefault(row["fold"], {})
        by_budget.setdefault(row["budget"], {})[row["instance_id"]] = row["action_id"]
    by_fold = {
        fold: LabelKnown(classifiers[("static", seed, fold)], labels[fold])
        for m, s, fold in classifiers
        if m == "static" and s == seed
    }
    return PolicyRun("label_known", None, by_fold)


# --------------------------------------------------------------------------------------------
# Per budget: the references every gain is measured against
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class References:
    """At one budget: lambda*, the oracle labels, and the matched accuracies of the oracle,
    best_fixed and uniform (per test instance)."""

    budget: float
    lambda_: np.ndarray
    """(n,) lambda*(B) of each instance's fold."""
    labels: np.ndarray
    """(n,) column index of each test instance's oracle label at its fold's lambda*(B)."""
    oracle: np.ndarray
    best_fixed: np.ndarray | None
    uniform: np.ndarray | None
    binding: bool
    noise: OracleNoise | None = None
    """The oracle's gain apparent and held out (``toolkit.noise``)."""

    def for_menu(
        self, labels: tuple[np.ndarray, np.ndarray], oracle: np.ndarray | None = None
    ) -> References:
        """The same references with another menu's oracle labels and lambda*; with ``oracle``
        (the menu's own oracle's matched accuracy per instance) shares of the oracle's gain
        are of that oracle's, and its held-out gain is not measured (None)."""
        from dataclasses import replace

        columns, lambdas = labels
        if oracle is None:
            return replace(self, labels=columns, lambda_=lambdas)
        return replace(self, labels=columns, lambda_=lambdas, oracle=oracle, noise=None)


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


def _metrics(means: dict[str, np.ndarray], budget: float) -> dict[str, np.ndarray]:
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
        value = defined(value)
        low, high = (None, None) if value is None else interval(np.asarray(sampled[name], float))
        rows.append({**key, "metric": name, "value": value, "ci_low": low, "ci_high": high})
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


# --------------------------------------------------------------------------------------------
# Curves: every policy over the grid
# --------------------------------------------------------------------------------------------
@dataclass
class Curve:
    """One policy run over the grid: per budget the pooled means."""

    budgets: list[float] = field(default_factory=list)
    planned: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    accuracy_true: list[float | None] = field(default_factory=list)

    def add(self, test: TestSet, budget: float, weights: np.ndarray) -> None:
        o = test.outcomes
        self.budgets.append(budget)
        self.planned.append(float((weights * test.planned).sum(axis=1).mean()))
        self.cost.append(float((weights * o.cost).sum(axis=1).mean()))
        self.accuracy.append(float((weights * o.acc).sum(axis=1).mean()))
        self.accuracy_true.append(
            None if o.acc_true is None else float((weights * o.acc_true).sum(axis=1).mean())
        )

    def rows(self, policy: str, seed: int | None) -> Iterator[dict]:
        for budget, planned, cost, acc, truth in zip(
            self.budgets, self.planned, self.cost, self.accuracy, self.accuracy_true, strict=True
        ):
            yield {
                "policy": policy,
                "seed": seed,
                "budget": budget,
                "planned_cost": planned,
                "cost": cost,
                "accuracy": acc,
                "accuracy_true": truth,
            }


def matched_weights(
    run: PolicyRun, test: TestSet, curve: Curve, budget: float
) -> tuple[np.ndarray | None, MatchedMix | None]:
    """The run's allocation at realised mean cost ``budget`` (a mix of two grid budgets)."""
    mix = matched_mix(curve.budgets, curve.cost, budget)
    if mix is None:
        return None, None
    low, _ = run.allocate(test, mix.low_budget)
    if mix.low_budget == mix.high_budget:
        return low, mix
    high, _ = run.allocate(test, mix.high_budget)
    return mix.weight * low + (1.0 - mix.weight) * high, mix


def _oracle_run(
    test: TestSet, grid: tuple[float, ...], menu: str = "static"
) -> tuple[Curve, dict[float, solve.Allocation]]:
    """The oracle of one menu solved on the pooled test outcomes at every grid budget."""
    menu_outcomes = test.outcomes.columns_subset(test.menus[menu])
    allocations = solve.solve_columns(menu_outcomes.columns(), list(grid), clip=True)
    curve = Curve()
    by_budget = {}
    for budget, allocation in zip(grid, allocations, strict=True):
        curve.add(test, budget, test.outcomes.weights(allocation.assignment))
        by_budget[budget] = allocation
    return curve, by_budget


def _write_oracle(writer, test, refs, bootstrap, name: str, allocation) -> None:
    """The oracle of a menu at one budget as a policy row (its realised cost is B: matched)."""
    weights = test.outcomes.weights(allocation.assignment)
    writer.allocation(test, refs, bootstrap, name, None, weights, weights)
    writer.setting(
        name,
        refs.budget,
        None,
        None,
        "test_outcomes",
        "lambda",
        float(allocation.lambda_),
        None,
        "argmax_a acc - lambda cost, solved on the test outcomes (upper bound)",
        MatchedMix(refs.budget, refs.budget, 1.0),
    )


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------
def evaluate(
    backend: ibis.BaseBackend,
    study: Study,
    run_id: int,
    *,
    resamples: int = RESAMPLES,
    step: Step | None = None,
) -> EvaluationSummary:
    """Evaluate every policy the study compares on the run's test instances at every budget and
    write the tables (see the module docstring); ``step`` is told (steps done, in all) after
    each policy's curve over the budget grid and each policy at each budget."""
    summary = EvaluationSummary()
    start = time.perf_counter()
    tables = {"static": read_features(backend, run_id, study)}
    probe = study.probe_model is not None
    if probe:
        tables["probe"] = read_features(backend, run_id, study, probe=True)
    tables["adaptive"] = tables["static"]
    test, everything = read_test_set(backend, study, run_id, tables)
    grid = run_budget_grid(study, everything.columns_subset(test.menus["static"]))
    models = _action_models(backend, run_id)
    wanted = expand_policies(list(study.policies.compare), models, probe, rule_families(study))
    runs = policy_runs(backend, run_id, wanted)
    labels = {menu: _test_labels(backend, run_id, test, menu) for menu in test.menus}
    bootstrap = PairedBootstrap(test.n, resamples, study.study.seed, test.fold_of)
    names = _action_names(backend, run_id)
    summary.seconds["read"] = time.perf_counter() - start

    start = time.perf_counter()
    budgets = list(study.budgets.values)
    oracles = {"oracle": _oracle_run(test, grid)}
    if probe:
        oracles["oracle_probe"] = _oracle_run(test, grid, "probe")
    if "adaptive" in test.menus:
        oracles["oracle_adaptive"] = _oracle_run(test, grid, "adaptive")
    oracle_at = oracles["oracle"][1]
    solve.write_allocations(backend, run_id, [oracle_at[b] for b in budgets], scope="test")
    curves = {(r.name, r.seed): Curve() for r in runs}
    steps = Steps(step, len(runs) * (1 + len(budgets)))
    for run in runs:
        for budget in grid:
            weights, _ = run.allocate(test, budget)
            curves[(run.name, run.seed)].add(test, budget, weights)
        steps.advance()
    summary.seconds["curves"] = time.perf_counter() - start

    start = time.perf_counter()
    writer = _Rows(backend, run_id)
    by_name = {(r.name, r.seed): r for r in runs}
    for budget in budgets:
        refs = _references(
            test, labels["static"], budget, oracle_at[budget], by_name, curves, names
        )
        by_menu = {menu: refs.for_menu(labels[menu][budget]) for menu in test.menus}
        if "oracle_adaptive" in oracles:  # adaptive shares are of the adaptive oracle's gain
            own = test.outcomes.weights(oracles["oracle_adaptive"][1][budget].assignment)
            by_menu["adaptive"] = refs.for_menu(
                labels["adaptive"][budget], (own * test.outcomes.acc).sum(axis=1)
            )
        writer.noise(refs, bootstrap)
        for name, (_curve, at) in oracles.items():
            _write_oracle(writer, test, by_menu[menu_of(name)], bootstrap, name, at[budget])
        for run in runs:
            weights, decisions = run.allocate(test, budget)
            matched, mix = matched_weights(run, test, curves[(run.name, run.seed)], budget)
            writer.allocation(
                test, by_menu[run.menu], bootstrap, run.name, run.seed, weights, matched
            )
            for fold, decision in decisions.items():
                writer.setting(
                    run.name,
                    budget,
                    run.seed,
                    fold,
                    decision.calibrated_on,
                    decision.parameter_name,
                    decision.parameter,
                    decision.mix,
                    decision.description,
                    mix,
                )
            steps.advance()
    summary.seconds["policies_and_metrics"] = time.perf_counter() - start

    start = time.perf_counter()
    every = [(name, None, curve) for name, (curve, _at) in oracles.items()]
    every += [(name, seed, curve) for (name, seed), curve in curves.items()]
    for name, seed, curve in every:
        writer.curves(curve, name, seed)
    writer.summaries(test, every)
    writer.planned_costs(test)
    if any(run.name in LEARNED for run in runs):
        writer.learning = learning_curve(
            backend, study, run_id, tables["static"], test, labels["static"], by_name
        )
    summary.rows.update(writer.write(backend, run_id))
    summary.evaluations, summary.regret = writer.evaluations, writer.regret
    summary.summaries = writer.summary_rows
    summary.seconds["write"] = time.perf_counter() - start
    return summary


def rule_families(study: Study) -> tuple[str, ...]:
    """The study's stopping-rule families, in action order (``esc``, ``ac``, ..., ``cascade``)."""
    from toolkit.outcomes import action_table
    from toolkit.policies import rule_family

    labels = action_table(study).column("rule").to_pylist()
    return tuple(dict.fromkeys(f for f in map(rule_family, labels) if f))


def _action_names(backend, run_id: int) -> tuple[str, ...]:
    actions = backend.to_pyarrow(
        backend.table("actions").filter(ibis._.run_id == run_id).order_by("action_id")
    )
    return tuple(actions.column("name").to_pylist())


def _action_models(backend, run_id: int) -> tuple[str, ...]:
    actions = backend.to_pyarrow(
        backend.table("actions").filter(ibis._.run_id == run_id).order_by("action_id")
    )
    return tuple(actions.column("model").to_pylist())


def _test_labels(
    backend, run_id: int, test: TestSet, menu: str = "static"
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per budget: each pooled test instance's oracle label in a menu (a column index among
    all actions) and lambda*."""
    rows = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter((ibis._.run_id == run_id) & (ibis._.split == "test") & (ibis._.menu == menu))
        .select("budget", "instance_id", "action_id", "lambda_star")
        .order_by(["budget", "instance_id"])
    )
    out = {}
    budget = rows.column("budget").to_numpy()
    for value in np.unique(budget):
        mine = rows.filter(pa.compute.equal(rows.column("budget"), value))
        ids = mine.column("instance_id").to_numpy()
        if not np.array_equal(ids, test.outcomes.instance_ids):
            raise RuntimeError(f"oracle_labels of budget {value} do not cover the test split")
        columns = np.searchsorted(test.outcomes.action_ids, mine.column("action_id").to_numpy())
        out[float(value)] = (columns, mine.column("lambda_star").to_numpy())
    return out


def _references(
    test, labels, budget, oracle: solve.Allocation, runs, curves, action_names
) -> References:
    o = test.outcomes
    oracle_weights = o.weights(oracle.assignment)
    matched, weights_of = {}, {}
    for name in ("best_fixed", "uniform"):
        run = runs.get((name, None))
        weights = (
            None if run is None else matched_weights(run, test, curves[(name, None)], budget)[0]
        )
        weights_of[name] = weights
        matched[name] = None if weights is None else (weights * o.acc).sum(axis=1)
    columns, lambdas = labels[budget]
    return References(
        budget,
        lambdas,
        columns,
        (oracle_weights * o.acc).sum(axis=1),
        matched["best_fixed"],
        matched["uniform"],
        oracle.binding,
        _static_noise(test, budget, oracle_weights, weights_of["best_fixed"], action_names),
    )


def _static_noise(test, budget, oracle_weights, fixed_weights, action_names) -> OracleNoise | None:
    """The static oracle's noise, on the static menu's actions only (the probe menu's have no
    truth or halves of their own: their samples follow the probe's)."""
    columns = test.menus["static"]
    return oracle_noise(
        test.outcomes.columns_subset(columns),
        budget,
        oracle_weights[:, columns],
        None if fixed_weights is None else fixed_weights[:, columns],
        [action_names[c] for c in columns],
    )


LEARNING_CURVE_SHARES = (0.125, 0.25, 0.5, 1.0)
"""Shares of fold 0's training sample the learning curve refits the classifier on."""
_LEARNING_CURVE_STREAM = 1_000_003


def learning_curve(
    backend, study: Study, run_id: int, table: FeatureTable, test: TestSet, labels, runs: dict
) -> list[dict]:
    """The classifier of the middle declared budget and first CatBoost seed, refitted on
    nested shares of fold 0's training sample and priced on fold 0's test batch."""
    from toolkit.learn import training_sample
    from toolkit.learned import fit_policies

    budgets = sorted(study.budgets.values)
    budget, seed, fold = budgets[len(budgets) // 2], study.learn.seeds[0], test.folds[0]
    train_labels = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter(
            (ibis._.run_id == run_id)
            & (ibis._.fold == fold.fold)
            & (ibis._.budget == budget)
            & (ibis._.split == "train")
            & (ibis._.menu == "static")
        )
        .order_by("instance_id")
    )
    label_of = dict(
        zip(
            train_labels.column("instance_id").to_pylist(),
            train_labels.column("action_id").to_pylist(),
            strict=True,
        )
    )
    fit_ids = training_sample(fold.train, study.learn.max_train_rows, study.study.seed, fold.fold)
    everything = (
        read_outcomes(backend, run_outcomes(backend, run_id))
        .subset(fit_ids)
        .columns_subset(test.menus["static"])
    )
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([study.study.seed, _LEARNING_CURVE_STREAM]))
    )
    order = rng.permutation(len(fit_ids))
    inputs, rows = test.inputs[("static", fold.fold)], test.positions[fold.fold]
    o = test.outcomes
    columns, lambdas = labels[budget]
    best_fixed = runs[("best_fixed", None)].by_fold[fold.fold].allocate(inputs, budget).weights
    static = test.menus["static"]  # the first columns: labels index them alike
    acc = o.acc[np.ix_(rows, static)]
    best_fixed_acc = float((best_fixed * acc).sum(axis=1).mean())
    jobs, sizes = [], []
    for share in LEARNING_CURVE_SHARES:
        chosen = np.sort(order[: max(1, round(share * len(fit_ids)))])
        if len(chosen) < 20:
            continue
        ids = fit_ids[chosen]
        sizes.append(len(ids))
        jobs.append(
            {
                "frame": table.frame(ids),
                "labels": np.array([label_of[i] for i in ids.tolist()], dtype=np.int32),
                "acc": everything.acc[chosen],
                "action_ids": everything.action_ids,
                "budget": budget,
                "lambda_": float(lambdas[rows][0]),
                "seed": seed,
                "spec": study.learn,
                "fold": fold.fold,
            }
        )
    out = []
    for train_rows, policy in zip(sizes, fit_policies(jobs), strict=True):
        weights = policy.decide(inputs, budget, "learned_batch").weights
        accuracy = float((weights * acc).sum(axis=1).mean())
        out.append(
            {
                "fold": fold.fold,
                "budget": budget,
                "seed": seed,
                "train_rows": train_rows,
                "accuracy": accuracy,
                "best_fixed_accuracy": best_fixed_acc,
                "gain_vs_best_fixed": accuracy - best_fixed_acc,
                "imitation_accuracy": float(weights[np.arange(len(rows)), columns[rows]].mean()),
            }
        )
    return out


class _Rows:
    """The rows of every table the stage writes, gathered, then appended in bulk; the policies'
    allocations (the one table that grows with N times the policies) are appended as each is
    made, so the stage never holds more than one."""

    def __init__(self, backend: ibis.BaseBackend, run_id: int) -> None:
        self.backend, self.run_id = backend, run_id
        self.evaluations: list[dict] = []
        self.regret: list[dict] = []
        self.confusion: list[dict] = []
        self.classes: list[dict] = []
        self.settings: list[dict] = []
        self.curve_rows: list[dict] = []
        self.summary_rows: list[dict] = []
        self.allocation_rows = 0
        self.planned: pa.Table | None = None
        self.learning: list[dict] = []
        self.noise_rows: list[dict] = []

    def allocation(self, test, refs, bootstrap, policy, seed, weights, matched_weights_) -> None:
        key = {"policy": policy, "budget": refs.budget, "seed": seed}
        o = test.outcomes
        matched = None if matched_weights_ is None else (matched_weights_ * o.acc).sum(axis=1)
        regret = regret_row(test, refs, key, weights)
        self.regret.append(regret)
        self.evaluations.extend(
            metric_rows(test, refs, bootstrap, key, weights, matched, regret["bound"])
        )
        self.confusion.extend(confusion_rows(test, refs, key, weights))
        self.classes.extend(class_rows(test, refs, key, weights))
        rows, cols = np.nonzero(weights > 0)
        count = len(rows)
        self.allocation_rows += db.append(
            self.backend,
            "policy_allocations",
            pa.table(
                {
                    "policy": pa.array([policy] * count, pa.string()),
                    "budget": pa.array(np.full(count, refs.budget), pa.float64()),
                    "seed": pa.array([seed] * count, pa.int64()),
                    "fold": pa.array(test.fold_of[rows], pa.int32()),
                    "instance_id": pa.array(o.instance_ids[rows], pa.int64()),
                    "action_id": pa.array(o.action_ids[cols], pa.int32()),
                    "weight": pa.array(weights[rows, cols], pa.float64()),
                }
            ),
            self.run_id,
        )

    def noise(self, refs: References, bootstrap: PairedBootstrap) -> None:
        """The oracle's gain, apparent and held out, and the share that is noise."""
        noise = refs.noise
        if noise is None:
            return
        point = (float(noise.apparent.mean()), float(noise.heldout.mean()))
        sampled = bootstrap.means(np.column_stack([noise.apparent, noise.heldout]))
        share = 1.0 - ratio(sampled[:, 1], sampled[:, 0])
        low, high = interval(share)
        heldout_low, heldout_high = interval(sampled[:, 1])
        self.noise_rows.append(
            {
                "budget": refs.budget,
                "evidence": noise.evidence,
                "actions": noise.actions,
                "apparent_gain": point[0],
                "heldout_gain": point[1],
                "heldout_gain_ci_low": heldout_low,
                "heldout_gain_ci_high": heldout_high,
                "noise_share": defined(1.0 - ratio(np.array(point[1]), np.array(point[0]))),
                "noise_share_ci_low": low,
                "noise_share_ci_high": high,
            }
        )

    def setting(self, policy, budget, seed, fold, on, name, value, mix, text, matched) -> None:
        self.settings.append(
            {
                "policy": policy,
                "budget": budget,
                "seed": seed,
                "fold": fold,
                "calibrated_on": on,
                "parameter_name": name,
                "parameter": None if value is None else defined(value),
                "mix": mix,
                "description": text,
                "matched_low_budget": None if matched is None else matched.low_budget,
                "matched_high_budget": None if matched is None else matched.high_budget,
                "matched_weight": None if matched is None else matched.weight,
            }
        )

    def curves(self, curve: Curve, policy: str, seed: int | None) -> None:
        self.curve_rows.extend(curve.rows(policy, seed))

    def summaries(self, test: TestSet, curves: list[tuple[str, int | None, Curve]]) -> None:
        o = test.outcomes
        mean_cost, mean_acc = o.cost.mean(axis=0), o.acc.mean(axis=0)
        cheapest = int(np.lexsort((-mean_acc, mean_cost))[0])
        best = int(np.lexsort((mean_cost, -mean_acc))[0])
        for policy, seed, curve in curves:
            found = summarise_curve(
                curve.cost,
                curve.accuracy,
                (float(mean_cost[cheapest]), float(mean_acc[cheapest])),
                (float(mean_cost[best]), float(mean_acc[best])),
            )
            self.summary_rows.append(
                {
                    "policy": policy,
                    "seed": seed,
                    "aiq": found.aiq,
                    "cost_to_reach": found.cost_to_reach,
                    "saving": found.saving,
                    "cost_low": found.cost_low,
                    "cost_high": found.cost_high,
                    "target_action_id": int(o.action_ids[best]),
                    "target_accuracy": found.target_accuracy,
                    "target_cost": found.target_cost,
                }
            )

    def planned_costs(self, test: TestSet) -> None:
        n, k = test.planned.shape
        o = test.outcomes
        self.planned = pa.table(
            {
                "fold": pa.array(np.repeat(test.fold_of, k), pa.int32()),
                "instance_id": pa.array(np.repeat(o.instance_ids, k), pa.int64()),
                "action_id": pa.array(np.tile(o.action_ids, n), pa.int32()),
                "planned_cost": pa.array(test.planned.ravel(), pa.float64()),
            }
        )

    def write(self, backend, run_id: int) -> dict[str, int]:
        tables = {
            "evaluations": self.evaluations,
            "regret_bounds": self.regret,
            "confusion": self.confusion,
            "imitation_classes": self.classes,
            "policy_settings": self.settings,
            "policy_curves": self.curve_rows,
            "policy_summaries": self.summary_rows,
            "learning_curve": self.learning,
            "oracle_noise": self.noise_rows,
        }
        rows = {}
        for name, records in tables.items():
            rows[name] = db.append(backend, name, db.records(backend, name, records), run_id)
        rows["policy_allocations"] = self.allocation_rows
        rows["planned_costs"] = db.append(backend, "planned_costs", self.planned, run_id)
        return rows


__all__ = [
    "LEARNED",
    "METRICS",
    "POLICIES",
    "EvaluationSummary",
    "PolicyRun",
    "TestSet",
    "evaluate",
    "expand_policies",
]
