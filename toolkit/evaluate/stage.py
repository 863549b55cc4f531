"""The evaluate stage, ``evaluate(backend, study, run_id)``: it reads the run's pooled test set
and stored policies, runs every policy over the budget grid, scores each at every declared
budget against the references at matched spend, and writes the tables (``toolkit.evaluate``
says what they hold)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import ibis

from toolkit import solve
from toolkit.config import Study
from toolkit.evaluate.compare import (
    Curve,
    OracleRun,
    References,
    matched_weights,
    oracle_run,
    references,
)
from toolkit.evaluate.learning import learning_curve
from toolkit.evaluate.registry import LEARNED, expand_policies, menu_of, rule_families
from toolkit.evaluate.rows import Rows
from toolkit.evaluate.runs import (
    Labels,
    PolicyRun,
    RunKey,
    TestSet,
    policy_runs,
    read_test_labels,
    read_test_set,
)
from toolkit.metrics import RESAMPLES, MatchedMix, PairedBootstrap
from toolkit.progress import Step, Steps
from toolkit.run_data import FeatureTable, read_features, run_actions, run_budget_grid


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


def evaluate(
    backend: ibis.BaseBackend,
    study: Study,
    run_id: int,
    *,
    resamples: int = RESAMPLES,
    step: Step | None = None,
) -> EvaluationSummary:
    """Evaluate every policy the study compares on the run's test instances at every budget and
    write the tables (see the package docstring); ``step`` is told (steps done, in all) after
    each policy's curve over the budget grid and each policy at each budget."""
    summary = EvaluationSummary()
    with _timed(summary.seconds, "read"):
        setup = _read(backend, study, run_id, resamples)

    with _timed(summary.seconds, "curves"):
        oracles = _oracles(setup)
        oracle_at = oracles["oracle"][1]
        solve.write_allocations(
            backend, run_id, [oracle_at[b] for b in setup.budgets], scope="test"
        )
        steps = Steps(step, len(setup.runs) * (1 + len(setup.budgets)))
        curves = _policy_curves(setup, steps)

    with _timed(summary.seconds, "policies_and_metrics"):
        writer = Rows(backend, run_id)
        for budget in setup.budgets:
            _score_budget(writer, setup, oracles, curves, budget, steps)

    with _timed(summary.seconds, "write"):
        _gather_curves(writer, setup.test, oracles, curves)
        writer.planned_costs(setup.test)
        if any(run.name in LEARNED for run in setup.runs):
            writer.learning = learning_curve(
                backend,
                study,
                run_id,
                setup.tables["static"],
                setup.test,
                setup.labels["static"],
                setup.by_name,
            )
        summary.rows.update(writer.write(backend, run_id))
        summary.evaluations, summary.regret = writer.evaluations, writer.regret
        summary.summaries = writer.summary_rows
    return summary


@contextlib.contextmanager
def _timed(seconds: dict[str, float], phase: str) -> Iterator[None]:
    """Records the seconds the block took as ``seconds[phase]``."""
    start = time.perf_counter()
    yield
    seconds[phase] = time.perf_counter() - start


@dataclass(frozen=True)
class _Setup:
    """What the stage reads before it allocates."""

    study: Study
    tables: dict[str, FeatureTable]
    """Per menu, the features its policies see."""
    test: TestSet
    grid: tuple[float, ...]
    runs: list[PolicyRun]
    labels: dict[str, Labels]
    """Per menu, the test instances' oracle labels and lambda* by budget."""
    bootstrap: PairedBootstrap
    action_names: tuple[str, ...]

    @property
    def budgets(self) -> list[float]:
        return list(self.study.budgets.values)

    @property
    def by_name(self) -> dict[RunKey, PolicyRun]:
        return {(r.name, r.seed): r for r in self.runs}


def _read(backend: ibis.BaseBackend, study: Study, run_id: int, resamples: int) -> _Setup:
    """The features of every menu, the pooled test set and its oracle labels, the budget grid,
    the wanted policies as stored, and the paired bootstrap's resamples."""
    tables = {"static": read_features(backend, run_id, study)}
    probe = study.probe_model is not None
    if probe:
        tables["probe"] = read_features(backend, run_id, study, probe=True)
    tables["adaptive"] = tables["static"]
    actions = run_actions(backend, run_id)
    test = read_test_set(backend, study, run_id, tables, actions)
    grid = run_budget_grid(backend, study, run_id, actions)
    models = tuple(actions.column("model").to_pylist())
    wanted = expand_policies(list(study.policies.compare), models, probe, rule_families(study))
    return _Setup(
        study,
        tables,
        test,
        grid,
        policy_runs(backend, run_id, wanted),
        {menu: read_test_labels(backend, run_id, test, menu) for menu in test.menus},
        PairedBootstrap(test.n, resamples, study.study.seed, test.fold_of),
        tuple(actions.column("name").to_pylist()),
    )


def _oracles(setup: _Setup) -> dict[str, OracleRun]:
    """The oracle of each menu (``oracle``, ``oracle_probe``, ``oracle_adaptive``) solved on
    the test outcomes over the grid."""
    test, grid = setup.test, setup.grid
    oracles = {"oracle": oracle_run(test, grid)}
    if "probe" in setup.tables:
        oracles["oracle_probe"] = oracle_run(test, grid, "probe")
    if "adaptive" in test.menus:
        oracles["oracle_adaptive"] = oracle_run(test, grid, "adaptive")
    return oracles


def _policy_curves(setup: _Setup, steps: Steps) -> dict[RunKey, Curve]:
    """Every policy run over the grid."""
    curves = {(r.name, r.seed): Curve() for r in setup.runs}
    for run in setup.runs:
        for budget in setup.grid:
            weights, _ = run.allocate(setup.test, budget)
            curves[(run.name, run.seed)].add(setup.test, budget, weights)
        steps.advance()
    return curves


def _score_budget(
    writer: Rows,
    setup: _Setup,
    oracles: dict[str, OracleRun],
    curves: dict[RunKey, Curve],
    budget: float,
    steps: Steps,
) -> None:
    """Every policy at one declared budget: the oracle's noise, each menu's oracle, then each
    policy run, against the references of its menu."""
    by_menu = _menu_references(setup, oracles, curves, budget)
    writer.noise(by_menu["static"], setup.bootstrap)
    for name, (_curve, at) in oracles.items():
        _write_oracle(writer, setup, by_menu[menu_of(name)], name, at[budget])
    for run in setup.runs:
        _write_run(writer, setup, by_menu[run.menu], run, curves[(run.name, run.seed)])
        steps.advance()


def _menu_references(
    setup: _Setup, oracles: dict[str, OracleRun], curves: dict[RunKey, Curve], budget: float
) -> dict[str, References]:
    """Per menu, the references at ``budget``: the static menu's with the menu's own oracle
    labels and lambda*."""
    test, labels = setup.test, setup.labels
    oracle_at = oracles["oracle"][1]
    refs = references(
        test, labels["static"], budget, oracle_at[budget], setup.by_name, curves, setup.action_names
    )
    by_menu = {menu: refs.for_menu(labels[menu][budget]) for menu in test.menus}
    if "oracle_adaptive" in oracles:  # adaptive shares are of the adaptive oracle's gain
        own = test.outcomes.weights(oracles["oracle_adaptive"][1][budget].assignment)
        by_menu["adaptive"] = refs.for_menu(
            labels["adaptive"][budget], (own * test.outcomes.acc).sum(axis=1)
        )
    return by_menu


def _write_oracle(
    writer: Rows, setup: _Setup, refs: References, name: str, allocation: solve.Allocation
) -> None:
    """The oracle of a menu at one budget as a policy row (its realised cost is B: matched)."""
    weights = setup.test.outcomes.weights(allocation.assignment)
    writer.allocation(setup.test, refs, setup.bootstrap, name, None, weights, weights)
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


def _write_run(writer: Rows, setup: _Setup, refs: References, run: PolicyRun, curve: Curve) -> None:
    """One policy run at ``refs.budget``: its allocation priced there, its allocation at that
    realised spend (``matched_weights``), and each fold's decision."""
    budget = refs.budget
    weights, decisions = run.allocate(setup.test, budget)
    matched, mix = matched_weights(run, setup.test, curve, budget)
    writer.allocation(setup.test, refs, setup.bootstrap, run.name, run.seed, weights, matched)
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


def _gather_curves(
    writer: Rows, test: TestSet, oracles: dict[str, OracleRun], curves: dict[RunKey, Curve]
) -> None:
    """Every curve, the oracles' first, as ``policy_curves`` rows and summarised."""
    every: list[tuple[str, int | None, Curve]] = [
        (name, None, curve) for name, (curve, _at) in oracles.items()
    ]
    every += [(name, seed, curve) for (name, seed), curve in curves.items()]
    for name, seed, curve in every:
        writer.curves(curve, name, seed)
    writer.summaries(test, every)
