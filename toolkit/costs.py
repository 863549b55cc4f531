"""Planned cost: what each action will cost on an instance, as far as a policy can know it
before spending anything.

An action's realised cost on instance i (``outcomes.cost``) is its *known* part (``known_cost``:
the prompt's tokens or dollars, fixed costs; all of it when cost is counted in samples) plus a
*variable* part that only the samples reveal (their output tokens). A policy plans with::

    planned_i(a) = known_i(a) + v_a(x_i)

where ``v_a`` predicts the variable cost of action a from the instance's features x, fitted on
the training split (``CostPlanner``):

- ``constant``: the variable part does not vary (cost in samples: it is zero), v_a = its mean;
- ``mean``: v_a = the training mean of the variable cost of a;
- ``catboost`` (the default where the variable cost varies): one CatBoost regressor with a
  MultiRMSE loss over the K actions' variable costs, each scaled by its training mean, then
  shifted so that its mean prediction on the training split equals the training mean. Output
  length depends on the question (a longer, harder problem gets longer answers), and a policy
  that spends more on some questions spends it where outputs are longer: the training mean
  would then under-predict what it spends, the model does not (``tests/test_costs.py``).

Every priced policy meets the budget exactly in planned cost on the batch it serves; its
realised cost differs by the prediction error of the variable part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toolkit.features import categorical_columns, text_columns
from toolkit.model_bytes import from_bytes, to_bytes

PLANNERS = ("auto", "mean", "catboost")
_RELATIVE_VARIATION = 1e-9
"""A variable cost whose spread is below this share of its mean is treated as constant."""


@dataclass
class CostPlanner:
    """Planned cost of every action from an instance's features and known cost."""

    method: str
    mean_variable: np.ndarray
    """(K,) training mean of the variable cost per action."""
    shift: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """(K,) added to the model's (rescaled) predictions: their training mean becomes exact."""
    model: Any = None
    """The CatBoostRegressor (method catboost), or None."""
    modelled: np.ndarray | None = None
    """(K,) bool: the actions the model predicts (those whose variable cost varies in
    training); the others are planned at their constant mean. None: all of them."""

    def variable(self, frame: pd.DataFrame) -> np.ndarray:
        """(n, K) predicted variable cost, never below zero."""
        n = len(frame)
        if self.model is None:
            return np.tile(self.mean_variable, (n, 1))
        modelled = self._modelled()
        scale = np.where(self.mean_variable > 0, self.mean_variable, 1.0)
        frame = frame.drop(columns=text_columns(frame))
        predicted = np.tile(self.mean_variable, (n, 1))
        model_out = np.asarray(self.model.predict(frame), dtype=np.float64).reshape(n, -1)
        predicted[:, modelled] = model_out * scale[modelled] + self.shift[modelled]
        return np.maximum(predicted, 0.0)

    def _modelled(self) -> np.ndarray:
        if self.modelled is None:
            return np.ones(len(self.mean_variable), dtype=bool)
        return np.asarray(self.modelled, dtype=bool)

    def planned(
        self, frame: pd.DataFrame, known_cost: np.ndarray, columns: np.ndarray | None = None
    ) -> np.ndarray:
        """(n, K) planned cost: the known part plus the predicted variable part; ``columns``:
        only those actions (positions among the planner's), ``known_cost`` theirs alone."""
        variable = self.variable(frame)
        return known_cost + (variable if columns is None else variable[:, columns])

    def model_bytes(self) -> bytes | None:
        return None if self.model is None else to_bytes(self.model)

    @classmethod
    def from_stored(
        cls,
        method: str,
        mean_variable: np.ndarray,
        shift: np.ndarray,
        data: bytes | None,
        modelled: np.ndarray | None = None,
    ) -> CostPlanner:
        model = None
        if data is not None:
            from catboost import CatBoostRegressor

            model = from_bytes(CatBoostRegressor, data)
        return cls(method, np.asarray(mean_variable), np.asarray(shift), model, modelled)


def fit_cost_planner(
    frame: pd.DataFrame,
    known_cost: np.ndarray,
    cost: np.ndarray,
    *,
    method: str = "auto",
    seed: int = 0,
    thread_count: int = 2,
) -> CostPlanner:
    """Fit the planner on the training split: features, known and realised costs (n, K)."""
    if method not in PLANNERS:
        raise ValueError(f"unknown cost planner {method!r}; known: {', '.join(PLANNERS)}")
    variable = np.asarray(cost, dtype=np.float64) - np.asarray(known_cost, dtype=np.float64)
    mean = variable.mean(axis=0)
    spread = variable.std(axis=0)
    if np.all(spread <= _RELATIVE_VARIATION * np.maximum(np.abs(mean), 1e-300)):
        return CostPlanner("constant", mean)
    if method == "mean" or len(frame) < 20:
        return CostPlanner("mean", mean)
    from catboost import CatBoostRegressor, Pool

    # CatBoost refuses a target that never varies: model only the actions whose cost does
    modelled = spread > _RELATIVE_VARIATION * np.maximum(np.abs(mean), 1e-300)
    scale = np.where(mean > 0, mean, 1.0)
    targets = (variable / scale)[:, modelled]
    model = CatBoostRegressor(
        loss_function="MultiRMSE" if targets.shape[1] > 1 else "RMSE",
        iterations=200,
        depth=4,
        learning_rate=0.1,
        random_seed=seed,
        thread_count=thread_count,
        one_hot_max_size=16,
        border_count=64,
        verbose=0,
        allow_writing_files=False,
    )
    frame = frame.drop(columns=text_columns(frame))  # numbers and categories only
    cat = categorical_columns(frame)
    model.fit(Pool(frame, targets if targets.shape[1] > 1 else targets[:, 0], cat_features=cat))
    planner = CostPlanner("catboost", mean, np.zeros(len(mean)), model, modelled)
    fitted = planner.variable(frame)
    planner.shift = mean - fitted.mean(axis=0)
    return planner


__all__ = ["PLANNERS", "CostPlanner", "fit_cost_planner"]
