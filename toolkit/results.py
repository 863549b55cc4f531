"""A run's results for a notebook, without SQL: every table and view of one run as Arrow.

    run = toolkit.open_run("out/study.duckdb")            # the latest run; or run_id=N
    run.frontier().to_pandas()                             # policies at matched spend
    run.allocations(policy="learned_batch", budget=4.0)    # who got which action
    run.table("oracle_labels")                             # any table or view, this run's rows

The database is opened read-only (``toolkit.bi.open_read_only``, with the views of
``sql/views``), so a notebook can read while nothing writes; ``close()`` (or ``with``) lets it
go. Each method returns a ``pyarrow.Table`` of the run's rows, in a stable order: the key
columns first, as ``sql/tables/`` and ``sql/views/`` document them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from toolkit import bi, db
from toolkit.errors import StudyError


class RunResults:
    """One run of a study database, read-only (see the module docstring)."""

    def __init__(self, database: str | Path, run_id: int | None = None) -> None:
        self.database = Path(database)
        self._backend = bi.open_read_only(self.database)
        try:
            row = bi.run_row(self._backend, self.database, run_id)
        except BaseException:
            self._backend.disconnect()
            raise
        self.run_id: int = row["run_id"]
        self.study: str = row["study"]
        self.seed: int = row["seed"]
        self.cost_unit: str = row["cost_unit"]
        self.config: dict[str, Any] = json.loads(row["config_json"])
        """The study as it ran (its resolved settings)."""

    # ----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The tables and views that hold per-run rows (a ``run_id`` column)."""
        con = db.raw(self._backend)
        rows = con.execute(
            "select distinct table_name from duckdb_columns() where column_name = 'run_id' "
            "order by table_name"
        ).fetchall()
        return [name for (name,) in rows]

    def table(self, name: str, **where: Any) -> pa.Table:
        """This run's rows of the table or view ``name``; ``where``: column = value filters
        (``policy="uniform"``). A value of None matches nothing but null."""
        known = self.names()
        if name not in known:
            raise StudyError(
                f"{self.database}: no table or view {name!r} with run rows (known: "
                f"{', '.join(known)})"
            )
        expr = self._backend.table(name)
        expr = expr.filter(expr.run_id == self.run_id)
        for column, value in where.items():
            if column not in expr.columns:
                raise StudyError(
                    f"{name}: no column {column!r} (columns: {', '.join(expr.columns)})"
                )
            expr = expr.filter(expr[column].isnull() if value is None else expr[column] == value)
        return self._backend.to_pyarrow(expr.order_by([ibis.asc(c) for c in expr.columns]))

    def overview(self) -> dict[str, Any]:
        """The run's one row of ``run_overview``: sizes, engine, when it ran."""
        return self.table("run_overview").to_pylist()[0]

    def frontier(self, **where: Any) -> pa.Table:
        """``policy_frontier``: every policy at every budget, at matched realised spend, with
        its 95% intervals (the oracle is scored on the outcomes it was solved on)."""
        return self.table("policy_frontier", **where)

    def evaluations(self, **where: Any) -> pa.Table:
        """``evaluations``: one row per policy, budget and seed."""
        return self.table("evaluations", **where)

    def allocations(self, **where: Any) -> pa.Table:
        """``policy_allocations``: each policy's weights on the test instances' actions."""
        return self.table("policy_allocations", **where)

    def outcomes(self, **where: Any) -> pa.Table:
        """``outcomes``: estimated accuracy and cost of every (instance, action)."""
        return self.table("outcomes", **where)

    # ----------------------------------------------------------------------------------------
    def close(self) -> None:
        self._backend.disconnect()

    def __enter__(self) -> RunResults:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunResults({str(self.database)!r}, run_id={self.run_id}, study={self.study!r})"


def open_run(database: str | Path, run_id: int | None = None) -> RunResults:
    """One run of a study database (the latest when ``run_id`` is None), read-only."""
    return RunResults(database, run_id)


__all__ = ["RunResults", "open_run"]
