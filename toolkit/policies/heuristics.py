"""Policies: the baselines that vary by instance or draw per instance: ``random`` (the training
oracle's action mix, tilted to meet the budget), ``prompt_length`` (planned cost proportional to
the prompt length) and ``difficulty_bins`` (quantile bins of an observable difficulty signal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from toolkit.policies.interface import Decision, Inputs, Policy, TrainingSet
from toolkit.policies.pricing import LastCurve, PriceCurve, bisect_increasing


# --------------------------------------------------------------------------------------------
# random, prompt_length, difficulty_bins
# --------------------------------------------------------------------------------------------
@dataclass
class RandomMix(Policy):
    """The training oracle's action mix at each budget it was fitted for, tilted to meet B."""

    budgets: list[float] = field(default_factory=list)
    mixes: list[list[float]] = field(default_factory=list)
    name: ClassVar[str] = "random"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> RandomMix:
        if train.oracle_mix is None:
            raise ValueError("random needs the training oracle's mix (TrainingSet.oracle_mix)")
        self.budgets = sorted({float(b) for b in budgets})
        self.mixes = [train.oracle_mix(b).tolist() for b in self.budgets]
        return self

    def mix_at(self, budget: float) -> np.ndarray:
        """The stored mix of the budget nearest to ``budget`` (log scale)."""
        index = int(np.argmin(np.abs(np.log(self.budgets) - np.log(budget))))
        return np.asarray(self.mixes[index], dtype=np.float64)

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        mix = self.mix_at(budget)
        planned = inputs.planned_cost.mean(axis=0)
        scale = max(float(np.ptp(planned)), 1e-300)

        def tilted(t: float) -> np.ndarray:
            logits = np.where(
                mix > 0, np.log(np.where(mix > 0, mix, 1.0)) - t * planned / scale, -np.inf
            )
            weights = np.exp(logits - logits.max())
            return weights / weights.sum()

        # mean planned cost falls as t rises: bisect -cost, which rises
        t = bisect_increasing(lambda t: -float(tilted(t) @ planned), -budget, -50.0, 50.0)
        shares = tilted(t)
        return Decision(
            np.tile(shares, (len(inputs), 1)),
            "test_features",
            "tilt",
            t,
            None,
            "the training oracle's action mix at B, tilted to meet B, in expectation",
        )

    def state(self) -> dict[str, Any]:
        return {"budgets": self.budgets, "mixes": self.mixes}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RandomMix:
        return cls(budgets=list(state["budgets"]), mixes=[list(m) for m in state["mixes"]])


def ladder_weights(planned: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per instance, the two actions whose planned costs bracket its target cost (clipped to
    its range), mixed so that its planned cost is the target."""
    n, k = planned.shape
    order = np.argsort(planned, axis=1, kind="stable")
    steps = np.take_along_axis(planned, order, axis=1)
    target = np.clip(target, steps[:, 0], steps[:, -1])
    upper = np.clip((steps < target[:, None]).sum(axis=1), 0, k - 1)
    lower = np.maximum(upper - 1, 0)
    rows = np.arange(n)
    low_cost, high_cost = steps[rows, lower], steps[rows, upper]
    span = high_cost - low_cost
    share = np.where(span > 0, (target - low_cost) / np.where(span > 0, span, 1.0), 1.0)
    weights = np.zeros((n, k))
    weights[rows, order[rows, lower]] += 1.0 - share
    weights[rows, order[rows, upper]] += share
    return weights


@dataclass
class PromptLength(Policy):
    """More compute to longer prompts: planned cost ``clip(kappa * len_i)``."""

    name: ClassVar[str] = "prompt_length"

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> PromptLength:
        return self

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        length = inputs.frame["prompt_tokens"].to_numpy(dtype=np.float64, na_value=np.nan)
        fill = np.nanmedian(length) if np.isfinite(length).any() else 1.0
        length = np.maximum(np.where(np.isfinite(length), length, fill), 1.0)
        planned = inputs.planned_cost
        low_cost, high_cost = planned.min(axis=1), planned.max(axis=1)

        def mean_cost(kappa: float) -> float:
            return float(np.clip(kappa * length, low_cost, high_cost).mean())

        kappa = bisect_increasing(mean_cost, budget, 0.0, float((high_cost / length).max()) + 1.0)
        target = np.clip(kappa * length, low_cost, high_cost)
        return Decision(
            ladder_weights(planned, target),
            "test_features",
            "kappa",
            kappa,
            None,
            "planned cost = clip(kappa * prompt_tokens), neighbours mixed",
        )

    def state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PromptLength:
        return cls()


BIN_SIGNALS = ("signal_1", "probe_entropy", "level", "prompt_tokens")
"""Difficulty-bin signals in order of preference: the first one the training split has."""
N_BINS = 5


@dataclass
class DifficultyBins(Policy):
    """Quantile bins of an observable signal and each bin's training accuracy curve."""

    signal: str = ""
    edges: list[float] = field(default_factory=list)
    """Inner bin edges (n_bins - 1), from the training split's quantiles."""
    bin_acc: list[list[float]] = field(default_factory=list)
    """(n_bins, K) mean training accuracy per bin and action."""
    n_bins: int = N_BINS
    name: ClassVar[str] = "difficulty_bins"
    _last: LastCurve = field(default_factory=LastCurve, repr=False, compare=False)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value; a missing value goes to the middle bin."""
        values = np.asarray(values, dtype=np.float64)
        bins = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.where(np.isfinite(values), bins, len(self.edges) // 2)

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> DifficultyBins:
        frame = train.inputs.frame
        self.signal = next(
            (
                name
                for name in BIN_SIGNALS
                if name in frame.columns and _distinct_count(frame[name]) >= 2
            ),
            "prompt_tokens",
        )
        values = _numbers(frame, self.signal)
        known = values[np.isfinite(values)]
        distinct = np.unique(known)
        if distinct.size <= self.n_bins:
            edges = 0.5 * (distinct[1:] + distinct[:-1])
        else:
            edges = np.unique(np.quantile(known, np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]))
        self.edges = edges.tolist()
        bins = self.bin_of(values)
        overall = train.acc.mean(axis=0)
        self.bin_acc = [
            (train.acc[bins == b].mean(axis=0) if (bins == b).any() else overall).tolist()
            for b in range(len(edges) + 1)
        ]
        return self

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        curve = self._last.get(
            (inputs.frame, inputs.planned_cost),
            None,
            lambda: PriceCurve(
                np.asarray(self.bin_acc)[self.bin_of(_numbers(inputs.frame, self.signal))],
                inputs.planned_cost,
                min_price=0.0,
            ),
        )
        return curve.decision(
            budget, "test_features", f"{len(self.edges) + 1} quantile bins of {self.signal} (train)"
        )

    def state(self) -> dict[str, Any]:
        return {"signal": self.signal, "edges": self.edges, "bin_acc": self.bin_acc}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DifficultyBins:
        return cls(signal=state["signal"], edges=list(state["edges"]), bin_acc=state["bin_acc"])


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _distinct_count(column: pd.Series) -> int:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return int(np.unique(values[np.isfinite(values)]).size)
