"""Policies: the interface every policy has (``Policy``), what it sees (``Inputs``, and the
training split it fits on, ``TrainingSet``) and what it returns (``Decision``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd


# --------------------------------------------------------------------------------------------
# What a policy sees and what it returns
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """A batch of instances as a policy sees them before spending anything."""

    instance_ids: np.ndarray
    frame: pd.DataFrame
    """The features (``toolkit.features``), one row per instance."""
    planned_cost: np.ndarray
    """(n, K) planned cost of every action (``toolkit.costs``)."""

    def __len__(self) -> int:
        return len(self.instance_ids)

    def take(self, rows: np.ndarray) -> Inputs:
        """The inputs of some of the instances (row positions)."""
        return Inputs(
            self.instance_ids[rows],
            self.frame.iloc[rows].reset_index(drop=True),
            self.planned_cost[rows],
        )


@dataclass(frozen=True)
class TrainingSet:
    """The training split as policies fit on it: features, planned and realised costs, and the
    estimated accuracy of every action."""

    inputs: Inputs
    acc: np.ndarray
    """(n, K) estimated accuracy."""
    cost: np.ndarray
    """(n, K) realised cost (what the samples cost)."""
    action_ids: np.ndarray
    action_models: tuple[str, ...]
    """The model of each action (column)."""
    oracle_mix: Callable[[float], np.ndarray] | None = None
    """The training oracle's action shares at a budget (``toolkit.solve``), for ``random``."""
    action_rules: tuple[str | None, ...] = ()
    """The stopping rule of each action (``actions.rule``; None for a static action)."""


@dataclass(frozen=True)
class Decision:
    """A policy's allocation of a batch at a budget, and how it met the budget."""

    weights: np.ndarray
    calibrated_on: str
    """test_features (priced on the batch's inputs), validation, train, none, test_outcomes."""
    parameter_name: str | None = None
    parameter: float | None = None
    mix: float | None = None
    description: str = ""


class Policy:
    """The interface every policy has: ``fit`` (on a ``TrainingSet``) then ``allocate``.

    ``state()`` is what ``fit`` learned as plain JSON values; ``from_state`` rebuilds the fitted
    policy from it, so a run stores its policies and evaluation reuses them as they are."""

    name: ClassVar[str] = ""

    def fit(self, train: TrainingSet, budgets: Sequence[float] = ()) -> Policy:
        raise NotImplementedError

    def allocate(self, inputs: Inputs, budget: float) -> Decision:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Policy:
        raise NotImplementedError
