"""The evaluate stage's output: every table's rows, gathered policy by policy and budget by
budget and then written (``Rows``); their columns are declared in ``sql/tables``."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pyarrow as pa

from toolkit import db
from toolkit.evaluate.compare import Curve, References
from toolkit.evaluate.measures import class_rows, confusion_rows, metric_rows, regret_row
from toolkit.evaluate.runs import TestSet
from toolkit.metrics import MatchedMix, PairedBootstrap, defined, interval, ratio, summarise_curve


class Rows:
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

    def allocation(
        self,
        test: TestSet,
        refs: References,
        bootstrap: PairedBootstrap,
        policy: str,
        seed: int | None,
        weights: np.ndarray,
        matched_weights_: np.ndarray | None,
    ) -> None:
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

    def setting(
        self,
        policy: str,
        budget: float,
        seed: int | None,
        fold: int | None,
        on: str,
        name: str | None,
        value: float | None,
        mix: float | None,
        text: str,
        matched: MatchedMix | None,
    ) -> None:
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

    def summaries(self, test: TestSet, curves: Sequence[tuple[str, int | None, Curve]]) -> None:
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

    def write(self, backend: ibis.BaseBackend, run_id: int) -> dict[str, int]:
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
