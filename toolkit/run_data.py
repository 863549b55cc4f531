"""A run's stored data read back for the learn and evaluate stages: its outcomes as n x K
matrices (``OutcomeMatrix``), its features as CatBoost frames (``FeatureTable``), its actions,
their menus, and the budget grid over its outcomes' cost range."""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from toolkit import db, features
from toolkit.budgets import budget_grid
from toolkit.config import Study
from toolkit.errors import StudyError


@dataclass(frozen=True)
class OutcomeMatrix:
    """Outcomes of n instances x K actions, rows in instance_id order."""

    instance_ids: np.ndarray
    action_ids: np.ndarray
    acc: np.ndarray
    cost: np.ndarray
    known: np.ndarray
    """(n, K) the part of the cost known before spending (``outcomes.known_cost``)."""
    acc_true: np.ndarray | None = None
    acc_half_a: np.ndarray | None = None
    """(n, K) real data: acc on half A of the samples (NaN where not estimable), and B."""
    acc_half_b: np.ndarray | None = None

    def rows(self, instance_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.instance_ids, instance_ids)

    def subset(self, instance_ids: np.ndarray) -> OutcomeMatrix:
        index = self.rows(np.sort(instance_ids))

        def rows(matrix: np.ndarray | None) -> np.ndarray | None:
            return None if matrix is None else matrix[index]

        return OutcomeMatrix(
            self.instance_ids[index],
            self.action_ids,
            self.acc[index],
            self.cost[index],
            self.known[index],
            rows(self.acc_true),
            rows(self.acc_half_a),
            rows(self.acc_half_b),
        )

    def weights(self, assignment: pa.Table) -> np.ndarray:
        """An assignment (instance_id, action_id, weight) as an n x K weight matrix."""
        out = np.zeros(self.acc.shape)
        rows = self.rows(assignment.column("instance_id").to_numpy())
        cols = np.searchsorted(self.action_ids, assignment.column("action_id").to_numpy())
        np.add.at(out, (rows, cols), assignment.column("weight").to_numpy())
        return out

    def columns_subset(self, columns: np.ndarray) -> OutcomeMatrix:
        """The outcomes of some of the actions (column positions)."""

        def cols(matrix: np.ndarray | None) -> np.ndarray | None:
            return None if matrix is None else matrix[:, columns]

        return OutcomeMatrix(
            self.instance_ids,
            self.action_ids[columns],
            self.acc[:, columns],
            self.cost[:, columns],
            self.known[:, columns],
            cols(self.acc_true),
            cols(self.acc_half_a),
            cols(self.acc_half_b),
        )

    def columns(self) -> dict[str, np.ndarray]:
        """The long form (instance_id, action_id, acc, cost) the solver takes."""
        n, k = self.acc.shape
        return {
            "instance_id": np.repeat(self.instance_ids, k),
            "action_id": np.tile(self.action_ids, n),
            "acc": self.acc.ravel(),
            "cost": self.cost.ravel(),
        }


_OUTCOME_COLUMNS = (
    "instance_id",
    "action_id",
    "acc",
    "cost",
    "known_cost",
    "acc_true",
    "acc_half_a",
    "acc_half_b",
)


def read_outcomes(backend: ibis.BaseBackend, outcomes: ir.Table) -> OutcomeMatrix:
    """Execute outcomes into n x K matrices; every instance needs every action."""
    table = backend.to_pyarrow(
        outcomes.select(*_OUTCOME_COLUMNS).order_by(["instance_id", "action_id"])
    )
    ids = table.column("instance_id").to_numpy()
    actions = table.column("action_id").to_numpy()
    instance_ids = np.unique(ids)
    action_ids = np.unique(actions)
    n, k = len(instance_ids), len(action_ids)
    if n * k != table.num_rows:
        raise StudyError(
            f"outcomes: {table.num_rows} rows for {n} instances x {k} actions; learning needs "
            "an outcome for every instance and action"
        )

    def matrix(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False).astype(float).reshape(n, k)

    def optional(name: str) -> np.ndarray | None:
        column = table.column(name)
        return None if column.null_count == len(column) else matrix(name)

    return OutcomeMatrix(
        instance_ids,
        action_ids.astype(np.int32),
        matrix("acc"),
        matrix("cost"),
        matrix("known_cost"),
        optional("acc_true"),
        optional("acc_half_a"),
        optional("acc_half_b"),
    )


def run_instances(backend: ibis.BaseBackend, run_id: int) -> ir.Table:
    return backend.table("instances").filter(ibis._.run_id == run_id)


def run_outcomes(backend: ibis.BaseBackend, run_id: int) -> ir.Table:
    return backend.table("outcomes").filter(ibis._.run_id == run_id)


def run_splits(backend: ibis.BaseBackend, run_id: int) -> ir.Table:
    return backend.table("splits").filter(ibis._.run_id == run_id)


def run_actions(backend: ibis.BaseBackend, run_id: int) -> pa.Table:
    """The run's actions, executed, in action_id order (the outcome matrices' column order)."""
    return backend.to_pyarrow(
        backend.table("actions").filter(ibis._.run_id == run_id).order_by("action_id")
    )


def split_outcomes(outcomes: ir.Table, splits: ir.Table, fold: int, split: str) -> ir.Table:
    """The outcomes (instance_id, action_id, acc, cost) of one split of one fold."""
    members = splits.filter((splits.fold == fold) & (splits.split == split)).select("instance_id")
    return outcomes.semi_join(members, "instance_id").select(
        "instance_id", "action_id", "acc", "cost"
    )


@dataclass(frozen=True)
class FeatureTable:
    """Every instance's features (``instance_features`` executed), in instance_id order."""

    wide: pa.Table
    names: list[str]
    spec: features.FeatureSpec

    def frame(self, instance_ids: np.ndarray) -> pd.DataFrame:
        """The CatBoost frame of the given instances, in that order."""
        index = np.searchsorted(self.wide.column("instance_id").to_numpy(), instance_ids)
        return features.to_frame(self.wide.take(pa.array(index)), self.names)


def feature_spec(
    backend: ibis.BaseBackend, run_id: int, study: Study | None, probe: bool = False
) -> features.FeatureSpec:
    """The run's features: its signals and text (from the data), its declared feature columns
    and the groups ``[learn] features`` lets the policy see (from the study)."""
    from toolkit.ingest import DeclaredFeatures

    instances = run_instances(backend, run_id)
    n_signals = int(backend.to_pyarrow(features.signal_count(instances)).as_py())
    text = bool(backend.to_pyarrow(features.has_text(instances)).as_py())
    if study is None:
        return features.FeatureSpec(n_signals, text=text)
    declared = DeclaredFeatures.of(study)
    return features.FeatureSpec(
        n_signals,
        declared.numeric,
        declared.categorical,
        text,
        tuple(study.learn.features),
        probe=probe and study.probe_model is not None,
    )


def read_features(
    backend: ibis.BaseBackend, run_id: int, study: Study | None = None, probe: bool = False
) -> FeatureTable:
    """Every instance's features (instance_id order) and the feature names; with ``probe``,
    the probe's too (``probes``)."""
    spec = feature_spec(backend, run_id, study, probe)
    instances = run_instances(backend, run_id)
    probes = backend.table("probes").filter(ibis._.run_id == run_id) if spec.probe else None
    query = features.instance_features(
        instances, n_signals=spec.n_signals, spec=spec, probes=probes
    )
    wide = backend.to_pyarrow(query.order_by("instance_id"))
    return FeatureTable(wide, spec.names(), spec)


def action_menus(actions: pa.Table) -> dict[str, np.ndarray]:
    """Per menu, the column positions of the actions its policies choose among (actions in
    action_id order): the adaptive menu's policies choose among the static actions too."""
    menus = np.asarray(actions.column("menu").to_pylist(), dtype=object)
    out = {menu: np.flatnonzero(menus == menu) for menu in dict.fromkeys(menus.tolist())}
    if "adaptive" in out:
        out["adaptive"] = np.flatnonzero((menus == "static") | (menus == "adaptive"))
    return out


def run_budget_grid(
    backend: ibis.BaseBackend, study: Study, run_id: int, actions: pa.Table
) -> tuple[float, ...]:
    """The run's budgets (``toolkit.budgets``) over the mean-cost range of its static
    outcomes: each instance's cheapest and dearest static action found in the engine, only
    those two numbers per instance read (in instance_id order) and averaged here."""
    static = actions.column("action_id").to_numpy()[action_menus(actions)["static"]]
    outcomes = run_outcomes(backend, run_id)
    ranges = backend.to_pyarrow(
        outcomes.filter(outcomes.action_id.isin([int(a) for a in static]))
        .group_by("instance_id")
        .agg(low=ibis._.cost.min(), high=ibis._.cost.max())
        .order_by("instance_id")
    )
    low = float(ranges.column("low").to_numpy().mean())
    high = float(ranges.column("high").to_numpy().mean())
    return budget_grid(study.budgets.values, study.budgets.grid, low, high)


def read_outcomes_of(
    backend: ibis.BaseBackend, run_id: int, instance_ids: np.ndarray
) -> OutcomeMatrix:
    """``read_outcomes`` of the run's outcomes of some instances only, chosen in the engine
    (the rest are never read)."""
    members = pa.table({"instance_id": pa.array(np.sort(instance_ids), pa.int64())})
    with db.temporary_table(backend, members) as chosen:
        return read_outcomes(
            backend, run_outcomes(backend, run_id).semi_join(chosen, "instance_id")
        )
