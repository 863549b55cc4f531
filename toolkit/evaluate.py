"""Evaluate: every policy on the test split at every budget, with paired bootstrap intervals and
the regret bound of the learned policy.

Policies (``POLICIES``), each a weight matrix over the test instances (``toolkit.policies``):

=====================  ====================================================  ================
policy                 what it is                                            budget met on
=====================  ====================================================  ================
``oracle``             the Lagrangian oracle solved on the test split: the   test outcomes
                       upper bound
``uniform``            the same action for all, two neighbouring b mixed     exactly
``random``             the training oracle's action mix, shuffled            exactly
``prompt_length``      planned cost proportional to prompt length            test features
``difficulty_bins``    best action per bin of a difficulty signal            test features
``learned_argmax``     the classifier's most probable action                 (not calibrated)
``learned_calibrated`` priced decoder, mu bisected on the validation split   validation
``learned_batch``      the same decoder, mu bisected on the test batch       test features
=====================  ====================================================  ================

"Test features" means the policy sets its price on the batch it serves using the inputs only
(with cost in samples the cost of an action is known before running it), never the outcomes.
``learned_calibrated`` is the held-out deployment: its realised test cost differs from B by
the sampling noise between the validation and test instances, which ``learned_batch`` removes.
Over 9 study seeds of the default study that error ranged from -7% to +8% of B (mean +0.7%,
RMS 4.4%; the default seed happens to give +4% to +8%), shared by every budget of a run since
they share one split; the test split alone contributes an SD of about 2% (``toolkit.learn``).
Every number is reported with the realised cost, and ``gain_at_cost`` compares a policy with
uniform at the cost it actually spent.

With cost in tokens or usd an action's cost varies by instance; the priced policies plan with
each action's mean training cost, so they meet B only approximately there.

Metrics per policy, budget and CatBoost seed (``evaluations``, long form; seedless policies have
a null seed), each with a paired bootstrap 95% interval over the test instances (the same
resamples for every policy, so differences are paired):

- ``accuracy``: mean expected accuracy ``mean_i sum_a W_ia acc_i(a)``; ``cost``: realised mean
  cost; ``budget_error``: cost / B - 1;
- ``gain``: accuracy - uniform's accuracy at B; ``relative_gain``: gain / uniform's accuracy;
  ``gain_at_cost``: accuracy - uniform's accuracy at the policy's realised cost;
  ``oracle_share``: gain / the oracle's gain (the share of the oracle's gain captured);
- ``imitation_accuracy``: mean weight on the oracle label at lambda*(B) (top-1 agreement for a
  hard policy); ``balanced_accuracy``: the mean of the per-class recalls;
- ``lagrangian_regret``: ``mean_i max_a L_i(a) - sum_a W_ia L_i(a)`` with
  ``L_i(a) = acc_i(a) - lambda* cost_i(a)``; ``regret_bound``: ``eps * Delta_max`` with eps the
  imitation error and ``Delta_max = max_i max_a L_i(a) - min_a L_i(a)``. Each mistaken instance
  loses at most its own gap, so regret <= eps * Delta_max for every policy; ``regret_bounds``
  records the check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import ibis
import numpy as np
import pyarrow as pa

from toolkit import db, features, solve
from toolkit.config import Study
from toolkit.errors import StudyError
from toolkit.learn import (
    LearnedPolicy,
    OutcomeMatrix,
    feature_rows,
    read_features,
    read_outcomes,
    read_policies,
    run_outcomes,
    run_splits,
    split_outcomes,
)
from toolkit.policies import (
    DifficultyBins,
    difficulty_bin_weights,
    fit_difficulty_bins,
    priced_weights,
    prompt_length_weights,
    random_weights,
    uniform_weights,
)

POLICIES = (
    "oracle",
    "uniform",
    "random",
    "prompt_length",
    "difficulty_bins",
    "learned_argmax",
    "learned_calibrated",
    "learned_batch",
)
LEARNED = ("learned_argmax", "learned_calibrated", "learned_batch")
RESAMPLES = 1000
CONFIDENCE = 0.95
_BOOTSTRAP_STREAM = 1_000_002
BIN_SIGNALS = ("signal_1", "probe_entropy", "level", "prompt_tokens")
"""Difficulty-bin signals in order of preference: the first one the training split has."""
N_BINS = 5


@dataclass(frozen=True)
class PolicyAllocation:
    """One policy's allocation of the test instances at one budget (and CatBoost seed)."""

    policy: str
    budget: float
    seed: int | None
    weights: np.ndarray
    calibrated_on: str
    parameter_name: str | None = None
    parameter: float | None = None
    mix: float | None = None
    description: str = ""


@dataclass
class EvaluationSummary:
    """What the evaluate stage wrote, and its rows in memory for callers."""

    rows: dict[str, int] = field(default_factory=dict)
    evaluations: list[dict] = field(default_factory=list)
    regret: list[dict] = field(default_factory=list)
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


def expand_policies(compare: list[str]) -> list[str]:
    """The study's ``policies.compare`` names as evaluated policies: ``learned`` is its three
    deployments; uniform and the oracle are always evaluated (every gain is measured against
    them)."""
    wanted = set(compare) | {"uniform", "oracle"}
    if "learned" in wanted:
        wanted |= set(LEARNED)
    return [p for p in POLICIES if p in wanted]


# --------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------
def bootstrap_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) multiplicities of each test instance in each paired resample."""
    rng = _bootstrap_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    counts = np.zeros((resamples, n), dtype=np.float64)
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    return counts


def _bootstrap_rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _BOOTSTRAP_STREAM])))


DENSE_BOOTSTRAP_CELLS = 2**25
"""Up to this many resamples x test instances (256 MiB as float64) the counts are one dense
float64 matrix and each resample's means one matrix product, as ``bootstrap_counts``; beyond
it, small integer counts and products in blocks of instances (``PairedBootstrap``)."""
_BLOCK_CELLS = 2**21  # resamples x instances converted to float64 at a time (16 MiB: in cache)


class PairedBootstrap:
    """The paired bootstrap's resamples of the n test instances, shared by every policy.

    ``means(values)`` is, for each resample, the mean of each column of ``values`` (n, q) over
    the resampled instances: ``counts @ values / n``. Small (resamples x n at most
    ``DENSE_BOOTSTRAP_CELLS``): exactly ``bootstrap_counts(n, resamples, seed) @ values / n``.
    Larger: the same draws (the same random stream, drawn one resample at a time) kept as
    uint8 counts (wider if an instance is ever drawn 256 times), 1/8 of the float matrix, and
    the product summed over blocks of instances, so memory stays near resamples x n bytes
    (2 GB at 2e6 test instances, against 16 GB). The blocked sums may differ from the single
    product in the last bits."""

    def __init__(self, n: int, resamples: int, seed: int) -> None:
        self.n, self.resamples = n, resamples
        self.dense = resamples * n <= DENSE_BOOTSTRAP_CELLS
        if self.dense:
            self.counts = bootstrap_counts(n, resamples, seed)
            return
        rng = _bootstrap_rng(seed)
        counts = np.zeros((resamples, n), dtype=np.uint8)
        for row in range(resamples):  # row by row: the same stream as one (resamples, n) draw
            tally = np.bincount(rng.integers(0, n, size=n), minlength=n)
            if tally.max() > np.iinfo(counts.dtype).max:
                counts = counts.astype(np.min_scalar_type(tally.max()))
            counts[row] = tally
        self.counts = counts

    def means(self, values: np.ndarray) -> np.ndarray:
        """(resamples, q): each column's mean over each resample's instances."""
        if self.dense:
            return self.counts @ values / self.n
        total = np.zeros((self.resamples, values.shape[1]))
        step = max(1, _BLOCK_CELLS // self.resamples)
        for start in range(0, self.n, step):
            block = self.counts[:, start : start + step].astype(np.float64)
            total += block @ values[start : start + step]
        return total / self.n


def interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (NaNs, from empty classes, ignored)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


# --------------------------------------------------------------------------------------------
# Metrics of one allocation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetContext:
    """Everything shared by the policies at one budget."""

    budget: float
    lambda_: float
    test: OutcomeMatrix
    labels: np.ndarray
    """(n,) column index of each test instance's oracle label at lambda*(B)."""
    uniform_acc: np.ndarray
    oracle_acc: np.ndarray
    bootstrap: PairedBootstrap
    action_cost: np.ndarray
    action_acc: np.ndarray


def _per_instance(context: BudgetContext, allocation: PolicyAllocation) -> dict[str, np.ndarray]:
    """The per-instance quantities whose means (over the test split or a bootstrap resample)
    make every metric: each metric is a mean or a ratio of two means."""
    test, weights = context.test, allocation.weights
    n, k = weights.shape
    acc = (weights * test.acc).sum(axis=1)
    cost = (weights * test.cost).sum(axis=1)
    uniform_at_cost = (
        uniform_weights(n, float(cost.mean()), context.action_cost, context.action_acc) * test.acc
    ).sum(axis=1)
    agree = weights[np.arange(n), context.labels]
    lagrangian = test.acc - context.lambda_ * test.cost
    labelled = np.zeros((n, k))
    labelled[np.arange(n), context.labels] = 1.0
    return {
        "acc": acc,
        "cost": cost,
        "gain": acc - context.uniform_acc,
        "gain_at_cost": acc - uniform_at_cost,
        "uniform": context.uniform_acc,
        "oracle_gain": context.oracle_acc - context.uniform_acc,
        "agree": agree,
        "regret": lagrangian.max(axis=1) - (weights * lagrangian).sum(axis=1),
        # per action: agreement on the instances labelled with it, and how many those are
        "hits": labelled * agree[:, None],
        "support": labelled,
    }


def _metrics(means: dict[str, np.ndarray], budget: float) -> dict[str, np.ndarray]:
    """Metrics from the means of ``_per_instance`` (scalars, or one value per resample)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        support = means["support"]
        recall = np.where(support > 0, means["hits"] / np.where(support > 0, support, 1.0), np.nan)
        return {
            "accuracy": means["acc"],
            "cost": means["cost"],
            "budget_error": means["cost"] / budget - 1.0,
            "gain": means["gain"],
            "relative_gain": means["gain"] / means["uniform"],
            "gain_at_cost": means["gain_at_cost"],
            "oracle_share": means["gain"] / means["oracle_gain"],
            "imitation_accuracy": means["agree"],
            "balanced_accuracy": np.nanmean(recall, axis=-1),
            "lagrangian_regret": means["regret"],
        }


def metric_rows(context: BudgetContext, allocation: PolicyAllocation, regret: dict) -> list[dict]:
    """Every metric of one allocation with its paired bootstrap interval, and the regret
    bound (from ``regret_row``) without one."""
    quantities = _per_instance(context, allocation)
    names = list(quantities)
    widths = [1 if quantities[q].ndim == 1 else quantities[q].shape[1] for q in names]
    stacked = np.column_stack([quantities[q] for q in names])
    offsets = np.cumsum([0, *widths])

    def unstack(values: np.ndarray) -> dict[str, np.ndarray]:
        return {
            q: values[..., a] if w == 1 else values[..., a : a + w]
            for q, a, w in zip(names, offsets[:-1], widths, strict=True)
        }

    point = _metrics(unstack(stacked.mean(axis=0)), context.budget)
    sampled = _metrics(unstack(context.bootstrap.means(stacked)), context.budget)
    key = {"policy": allocation.policy, "budget": context.budget, "seed": allocation.seed}
    rows = []
    for name, value in point.items():
        low, high = interval(np.asarray(sampled[name], dtype=np.float64))
        rows.append({**key, "metric": name, "value": float(value), "ci_low": low, "ci_high": high})
    rows.append(
        {**key, "metric": "regret_bound", "value": regret["bound"], "ci_low": None, "ci_high": None}
    )
    return rows


def regret_row(context: BudgetContext, allocation: PolicyAllocation) -> dict:
    """The regret bound check: Lagrangian regret <= imitation error * Delta_max."""
    test, weights = context.test, allocation.weights
    n = weights.shape[0]
    lagrangian = test.acc - context.lambda_ * test.cost
    gaps = lagrangian.max(axis=1) - lagrangian.min(axis=1)
    regret = float((lagrangian.max(axis=1) - (weights * lagrangian).sum(axis=1)).mean())
    eps = 1.0 - float(weights[np.arange(n), context.labels].mean())
    delta_max = float(gaps.max())
    bound = eps * delta_max
    return {
        "policy": allocation.policy,
        "budget": context.budget,
        "seed": allocation.seed,
        "lambda_star": context.lambda_,
        "imitation_error": eps,
        "delta_max": delta_max,
        "mean_gap": float(gaps.mean()),
        "regret": regret,
        "bound": bound,
        "holds": bool(regret <= bound + 1e-12),
    }


def confusion_rows(context: BudgetContext, allocation: PolicyAllocation) -> list[dict]:
    """Weighted confusion counts: oracle label (true) x chosen action (predicted)."""
    k = allocation.weights.shape[1]
    label_onehot = np.zeros((len(context.labels), k))
    label_onehot[np.arange(len(context.labels)), context.labels] = 1.0
    matrix = label_onehot.T @ allocation.weights
    actions = context.test.action_ids
    return [
        {
            "policy": allocation.policy,
            "budget": context.budget,
            "seed": allocation.seed,
            "true_action_id": int(actions[t]),
            "predicted_action_id": int(actions[p]),
            "n": float(matrix[t, p]),
        }
        for t in range(k)
        for p in range(k)
    ]


def class_rows(context: BudgetContext, allocation: PolicyAllocation) -> list[dict]:
    """Per action: support (oracle labels), predicted mass, correct mass, recall, precision."""
    weights = allocation.weights
    n, k = weights.shape
    rows = []
    for t in range(k):
        labelled = context.labels == t
        support = float(labelled.sum())
        predicted = float(weights[:, t].sum())
        correct = float(weights[labelled, t].sum())
        rows.append(
            {
                "policy": allocation.policy,
                "budget": context.budget,
                "seed": allocation.seed,
                "action_id": int(context.test.action_ids[t]),
                "support": support,
                "predicted": predicted,
                "correct": correct,
                "recall": correct / support if support else None,
                "precision": correct / predicted if predicted else None,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------
def _bin_signal(wide_train: pa.Table, names: list[str]) -> str:
    for name in BIN_SIGNALS:
        if name in names:
            values = features.numeric_column(wide_train, name)
            if np.unique(values[np.isfinite(values)]).size >= 2:
                return name
    return "prompt_tokens"


@dataclass(frozen=True)
class BaselineInputs:
    """What the baselines know: training statistics and the test instances' inputs."""

    action_cost: np.ndarray
    """(K,) mean training cost per action: the planned cost."""
    action_acc: np.ndarray
    """(K,) mean training accuracy per action."""
    prompt_tokens: np.ndarray
    bins: DifficultyBins
    bin_values: np.ndarray
    """The test instances' values of the bins' signal."""

    def baselines(
        self, budget: float, train_oracle: np.ndarray, wanted: list[str]
    ) -> list[PolicyAllocation]:
        """random, prompt_length and difficulty_bins at ``budget`` (those ``wanted``);
        ``train_oracle``: the training split's oracle weights at the budget."""
        n = len(self.prompt_tokens)
        out = []
        if "random" in wanted:
            out.append(
                PolicyAllocation(
                    "random",
                    budget,
                    None,
                    random_weights(n, train_oracle.mean(axis=0)),
                    "train",
                    description="the training oracle's action mix, in expectation",
                )
            )
        if "prompt_length" in wanted:
            weights, kappa = prompt_length_weights(
                self.prompt_tokens, budget, self.action_cost, self.action_acc
            )
            out.append(
                PolicyAllocation(
                    "prompt_length",
                    budget,
                    None,
                    weights,
                    "test_features",
                    "kappa",
                    kappa,
                    None,
                    "planned cost = clip(kappa * prompt_tokens), neighbours mixed",
                )
            )
        if "difficulty_bins" in wanted:
            weights, cal = difficulty_bin_weights(
                self.bins, self.bin_values, budget, self.action_cost
            )
            out.append(
                PolicyAllocation(
                    "difficulty_bins",
                    budget,
                    None,
                    weights,
                    "test_features",
                    "mu",
                    cal.price,
                    cal.mix,
                    f"{len(self.bins.edges) + 1} quantile bins of {self.bins.signal} (train)",
                )
            )
        return out


def learned_allocations(
    policy: LearnedPolicy, frame, budget: float, wanted: list[str]
) -> list[PolicyAllocation]:
    """The three deployments of one fitted classifier on the test instances."""
    probabilities = policy.probabilities(frame)
    out = []
    if "learned_argmax" in wanted:
        out.append(
            PolicyAllocation(
                "learned_argmax",
                budget,
                policy.seed,
                policy.argmax_weights(probabilities),
                "none",
                description="argmax_a p(a | x)",
            )
        )
    if "learned_calibrated" in wanted:
        cal = policy.calibration
        out.append(
            PolicyAllocation(
                "learned_calibrated",
                budget,
                policy.seed,
                policy.calibrated_weights(probabilities),
                "validation",
                "mu",
                cal.price,
                cal.mix,
                f"argmax_a {policy.decoder} score - mu cost(a), mu from the validation split",
            )
        )
    if "learned_batch" in wanted:
        cal = policy.calibrate(probabilities, budget)
        out.append(
            PolicyAllocation(
                "learned_batch",
                budget,
                policy.seed,
                priced_weights(policy.scores(probabilities), policy.action_cost, cal),
                "test_features",
                "mu",
                cal.price,
                cal.mix,
                f"argmax_a {policy.decoder} score - mu cost(a), mu from the test batch's inputs",
            )
        )
    return out


def evaluate(
    backend: ibis.BaseBackend, study: Study, run_id: int, *, resamples: int = RESAMPLES
) -> EvaluationSummary:
    """Evaluate every policy of ``study.policies.compare`` on the run's test split at every
    budget and write the tables (see the module docstring)."""
    summary = EvaluationSummary()
    start = time.perf_counter()
    wanted = expand_policies(list(study.policies.compare))
    budgets = list(study.budgets.values)
    wide, names = read_features(backend, run_id)
    outcomes = run_outcomes(backend, run_id)
    splits = run_splits(backend, run_id)
    everything = read_outcomes(backend, outcomes)
    split_table = backend.to_pyarrow(splits.select("instance_id", "split"))
    split_ids = {
        name: np.sort(
            split_table.filter(pa.compute.equal(split_table.column("split"), name))
            .column("instance_id")
            .to_numpy()
        )
        for name in ("train", "test")
    }
    if len(split_ids["train"]) == 0 or len(split_ids["test"]) == 0:
        raise StudyError(
            f"run {run_id} has no train or test split: evaluate needs the learn stage first"
        )
    train = everything.subset(split_ids["train"])
    test = everything.subset(split_ids["test"])
    action_cost = train.cost.mean(axis=0)
    action_acc = train.acc.mean(axis=0)
    test_wide = feature_rows(wide, test.instance_ids)
    train_wide = feature_rows(wide, train.instance_ids)
    test_frame = features.to_frame(test_wide, names)
    bootstrap = PairedBootstrap(len(test.instance_ids), resamples, study.study.seed)

    labels = backend.to_pyarrow(
        backend.table("oracle_labels")
        .filter((ibis._.run_id == run_id) & (ibis._.split == "test"))
        .select("budget", "instance_id", "action_id", "lambda_star")
        .order_by(["budget", "instance_id"])
    )
    policies = read_policies(backend, run_id) if any(p in wanted for p in LEARNED) else []
    summary.seconds["read"] = time.perf_counter() - start

    start = time.perf_counter()
    test_outcomes = split_outcomes(outcomes, splits, "test")
    oracle = solve.solve_budgets(backend, test_outcomes, budgets)
    solve.write_allocations(backend, run_id, oracle, scope="test")
    train_allocations = solve.solve_budgets(
        backend, split_outcomes(outcomes, splits, "train"), budgets
    )
    summary.seconds["solve"] = time.perf_counter() - start

    start = time.perf_counter()
    bin_signal = _bin_signal(train_wide, names)
    inputs = BaselineInputs(
        action_cost=action_cost,
        action_acc=action_acc,
        prompt_tokens=features.numeric_column(test_wide, "prompt_tokens"),
        bins=fit_difficulty_bins(
            bin_signal, features.numeric_column(train_wide, bin_signal), train.acc, N_BINS
        ),
        bin_values=features.numeric_column(test_wide, bin_signal),
    )
    n = len(test.instance_ids)

    evaluation_rows, regret_rows, confusion, classes, allocation_parts, settings = (
        [] for _ in range(6)
    )
    for budget, oracle_allocation, train_allocation in zip(
        budgets, oracle, train_allocations, strict=True
    ):
        mine = labels.filter(pa.compute.equal(labels.column("budget"), budget))
        if not np.array_equal(mine.column("instance_id").to_numpy(), test.instance_ids):
            raise RuntimeError(f"oracle_labels of budget {budget} do not cover the test split")
        lambda_ = float(train_allocation.lambda_)
        label_index = np.searchsorted(test.action_ids, mine.column("action_id").to_numpy())
        oracle_weights = test.weights(oracle_allocation.assignment)
        uniform = uniform_weights(n, budget, action_cost, action_acc)
        allocations = [
            PolicyAllocation(
                "oracle",
                budget,
                None,
                oracle_weights,
                "test_outcomes",
                "lambda",
                float(oracle_allocation.lambda_),
                None,
                "argmax_a acc - lambda cost, solved on the test split (upper bound)",
            ),
            PolicyAllocation(
                "uniform",
                budget,
                None,
                uniform,
                "exact",
                description="the same action for all, the two around B mixed",
            ),
            *inputs.baselines(budget, train.weights(train_allocation.assignment), wanted),
        ]
        for policy in policies:
            if policy.budget == budget:
                allocations.extend(learned_allocations(policy, test_frame, budget, wanted))

        context = BudgetContext(
            budget=budget,
            lambda_=lambda_,
            test=test,
            labels=label_index,
            uniform_acc=(uniform * test.acc).sum(axis=1),
            oracle_acc=(oracle_weights * test.acc).sum(axis=1),
            bootstrap=bootstrap,
            action_cost=action_cost,
            action_acc=action_acc,
        )
        for allocation in allocations:
            regret = regret_row(context, allocation)
            regret_rows.append(regret)
            evaluation_rows.extend(metric_rows(context, allocation, regret))
            confusion.extend(confusion_rows(context, allocation))
            classes.extend(class_rows(context, allocation))
            allocation_parts.append(_allocation_table(test, allocation))
            settings.append(
                {
                    "policy": allocation.policy,
                    "budget": budget,
                    "seed": allocation.seed,
                    "calibrated_on": allocation.calibrated_on,
                    "parameter_name": allocation.parameter_name,
                    "parameter": allocation.parameter,
                    "mix": allocation.mix,
                    "description": allocation.description,
                }
            )
    summary.seconds["policies_and_metrics"] = time.perf_counter() - start

    start = time.perf_counter()
    summary.evaluations = evaluation_rows
    summary.regret = regret_rows
    summary.rows["evaluations"] = db.append(
        backend, "evaluations", pa.Table.from_pylist(evaluation_rows, _EVALUATION_SCHEMA), run_id
    )
    summary.rows["regret_bounds"] = db.append(
        backend, "regret_bounds", pa.Table.from_pylist(regret_rows, _REGRET_SCHEMA), run_id
    )
    summary.rows["confusion"] = db.append(
        backend, "confusion", pa.Table.from_pylist(confusion, _CONFUSION_SCHEMA), run_id
    )
    summary.rows["imitation_classes"] = db.append(
        backend, "imitation_classes", pa.Table.from_pylist(classes, _CLASS_SCHEMA), run_id
    )
    summary.rows["policy_allocations"] = db.append(
        backend, "policy_allocations", pa.concat_tables(allocation_parts), run_id
    )
    summary.rows["policy_settings"] = db.append(
        backend, "policy_settings", pa.Table.from_pylist(settings, _SETTINGS_SCHEMA), run_id
    )
    summary.rows["budget_sweep"] = db.append(
        backend, "budget_sweep", budget_sweep_table(evaluation_rows), run_id
    )
    summary.seconds["write"] = time.perf_counter() - start
    return summary


def _allocation_table(test: OutcomeMatrix, allocation: PolicyAllocation) -> pa.Table:
    rows, cols = np.nonzero(allocation.weights > 0)
    count = len(rows)
    return pa.table(
        {
            "policy": pa.array([allocation.policy] * count, pa.string()),
            "budget": pa.array(np.full(count, allocation.budget), pa.float64()),
            "seed": pa.array([allocation.seed] * count, pa.int64()),
            "instance_id": pa.array(test.instance_ids[rows], pa.int64()),
            "action_id": pa.array(test.action_ids[cols], pa.int32()),
            "weight": pa.array(allocation.weights[rows, cols], pa.float64()),
        }
    )


SWEEP_METRICS = ("accuracy", "cost", "gain", "relative_gain", "oracle_share", "imitation_accuracy")


def budget_sweep_table(evaluation_rows: list[dict]) -> pa.Table:
    """One row per policy, budget and seed: the curve points a plot needs, with intervals."""
    points: dict[tuple, dict] = {}
    for row in evaluation_rows:
        if row["metric"] not in SWEEP_METRICS:
            continue
        key = (row["policy"], row["budget"], row["seed"])
        point = points.setdefault(key, {"policy": key[0], "budget": key[1], "seed": key[2]})
        point[row["metric"]] = row["value"]
        if row["metric"] in ("accuracy", "gain", "relative_gain", "oracle_share"):
            point[f"{row['metric']}_ci_low"] = row["ci_low"]
            point[f"{row['metric']}_ci_high"] = row["ci_high"]
    return pa.Table.from_pylist(list(points.values()), _SWEEP_SCHEMA)


_EVALUATION_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
    ]
)
_REGRET_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("lambda_star", pa.float64()),
        ("imitation_error", pa.float64()),
        ("delta_max", pa.float64()),
        ("mean_gap", pa.float64()),
        ("regret", pa.float64()),
        ("bound", pa.float64()),
        ("holds", pa.bool_()),
    ]
)
_CONFUSION_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("true_action_id", pa.int32()),
        ("predicted_action_id", pa.int32()),
        ("n", pa.float64()),
    ]
)
_CLASS_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("action_id", pa.int32()),
        ("support", pa.float64()),
        ("predicted", pa.float64()),
        ("correct", pa.float64()),
        ("recall", pa.float64()),
        ("precision", pa.float64()),
    ]
)
_SETTINGS_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("calibrated_on", pa.string()),
        ("parameter_name", pa.string()),
        ("parameter", pa.float64()),
        ("mix", pa.float64()),
        ("description", pa.string()),
    ]
)
_SWEEP_SCHEMA = pa.schema(
    [
        ("policy", pa.string()),
        ("budget", pa.float64()),
        ("seed", pa.int64()),
        ("accuracy", pa.float64()),
        ("accuracy_ci_low", pa.float64()),
        ("accuracy_ci_high", pa.float64()),
        ("cost", pa.float64()),
        ("gain", pa.float64()),
        ("gain_ci_low", pa.float64()),
        ("gain_ci_high", pa.float64()),
        ("relative_gain", pa.float64()),
        ("relative_gain_ci_low", pa.float64()),
        ("relative_gain_ci_high", pa.float64()),
        ("oracle_share", pa.float64()),
        ("oracle_share_ci_low", pa.float64()),
        ("oracle_share_ci_high", pa.float64()),
        ("imitation_accuracy", pa.float64()),
    ]
)

__all__ = [
    "LEARNED",
    "POLICIES",
    "EvaluationSummary",
    "PairedBootstrap",
    "PolicyAllocation",
    "bootstrap_counts",
    "budget_sweep_table",
    "evaluate",
    "expand_policies",
    "interval",
]
