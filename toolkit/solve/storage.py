"""Solve: an allocation's hard labels, and its rows in the ``solutions`` and ``allocations``
tables."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit import db
from toolkit.solve.mixing import Allocation


# --------------------------------------------------------------------------------------------
# Labels and storage
# --------------------------------------------------------------------------------------------
def oracle_labels(allocation: Allocation) -> pa.Table:
    """instance_id, action_id: the hard label per instance, its largest-weight action (on a
    tie, theta = 1/2, the cheaper ``A_lo`` action, listed first in the assignment)."""
    assignment = allocation.assignment
    instance_id = assignment.column("instance_id").to_numpy()
    action = assignment.column("action_id").to_numpy()
    weight = assignment.column("weight").to_numpy()
    order = np.lexsort((np.arange(len(weight)), -weight, instance_id))
    first = order[np.r_[True, instance_id[order][1:] != instance_id[order][:-1]]]
    return pa.table(
        {
            "instance_id": pa.array(instance_id[first], pa.int64()),
            "action_id": pa.array(action[first], pa.int32()),
        }
    )


def write_allocations(
    backend: ibis.BaseBackend,
    run_id: int,
    allocations: Sequence[Allocation],
    *,
    scope: str = "all",
) -> None:
    """Append one ``solutions`` row per allocation and its assignment to ``allocations``.

    ``scope`` names the instances solved (``all``, ``train``, ``test``, ...).
    """
    for allocation in allocations:
        assignment = allocation.assignment
        n_rows = assignment.num_rows
        n_instances = pc.count_distinct(assignment.column("instance_id")).as_py()
        db.append(
            backend,
            "solutions",
            pa.table(
                {
                    "scope": [scope],
                    "budget": [allocation.budget],
                    "solver": [allocation.solver],
                    "lambda_star": [allocation.lambda_],
                    "mean_cost": [allocation.mean_cost],
                    "mean_acc": [allocation.mean_acc],
                    "lagrangian": [allocation.lagrangian],
                    "binding": [allocation.binding],
                    "n_instances": pa.array([n_instances], pa.int64()),
                    "n_mixed": pa.array([n_rows - n_instances], pa.int64()),
                }
            ),
            run_id,
        )
        constant = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n_rows, dtype=np.int32)), pa.array([scope])
        )
        db.append(
            backend,
            "allocations",
            assignment.append_column("scope", constant)
            .append_column(
                "solver",
                pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n_rows, dtype=np.int32)), pa.array([allocation.solver])
                ),
            )
            .append_column("budget", pa.array(np.full(n_rows, allocation.budget))),
            run_id,
        )
