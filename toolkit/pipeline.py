"""The whole study, stage after stage, landing in one transaction.

simulate (or ingest) -> outcomes -> solve -> learn -> evaluate, then the report from the
committed database. A failure anywhere rolls the run back; a database file this run created is
removed again, so nothing half-written is left behind.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import ibis
import pyarrow as pa

from toolkit import bi, db
from toolkit.adaptive import adaptive_outcomes
from toolkit.config import Study
from toolkit.errors import (
    InterruptedAfterLanding,
    StudyError,
    note_landed,
    raise_if_interrupted,
)
from toolkit.evaluate import evaluate
from toolkit.ingest import ImportedDataset
from toolkit.learn import learn
from toolkit.noise import half_outcomes
from toolkit.outcomes import (
    action_table,
    answer_counts,
    answer_profiles,
    estimate_outcomes,
    score_levels,
)
from toolkit.preflight import Checked, check_cells
from toolkit.probe import probe_outcomes, static_action_ids
from toolkit.progress import Step
from toolkit.scores import scored_samples
from toolkit.simulate import simulate
from toolkit.solve import solve_budgets, write_allocations

if TYPE_CHECKING:
    from toolkit.results import RunResults

Progress = Callable[[str], contextlib.AbstractContextManager[Step | None]]
"""``progress(stage)``: a context around the stage, giving the ``Step`` callback inside it (or
None: the stage's steps go unreported)."""


def _no_step(done: int, total: int) -> None:
    return None


@contextlib.contextmanager
def quiet(_: str) -> Iterator[Step]:
    yield _no_step


@dataclass
class RunResult:
    """What a run wrote: its id, where, and the seconds each stage took."""

    run_id: int
    database: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    report: Path | None = None
    replaced: bool = False
    """Whether the run replaced an earlier run of the same study, config and seed."""
    cost_unit: str = "samples"
    headline: list[dict] = field(default_factory=list)
    """Per budget, the policies ranked at matched spend
    (``sql/analyses/best_policy_per_budget.sql``)."""
    cells: list[RunResult] = field(default_factory=list)
    """A study run separately per dataset or model (``study.separately``): each cell's run, in
    order; this result's rows and stage seconds are their sums, its ``run_id`` the first's."""
    name: str = ""
    """The run's study name (a cell's: ``<study>.<dataset>.<model>``)."""

    @property
    def run_ids(self) -> list[int]:
        """Every run this result landed: the cells' or its own."""
        return [cell.run_id for cell in self.cells] or [self.run_id]

    def open(self) -> RunResults:
        """The run's tables and views as Arrow (``toolkit.results``), read-only."""
        from toolkit.results import open_run

        return open_run(self.database, self.run_id)


@contextlib.contextmanager
def _timed(result: RunResult, stage: str, progress: Progress) -> Iterator[Step]:
    start = time.perf_counter()
    with progress(stage) as step:
        yield step or _no_step
    raise_if_interrupted()  # stop at the stage's end if a Ctrl-C's raise was dropped
    result.stage_seconds[stage] = time.perf_counter() - start


def _add_cell(total: RunResult, cell: RunResult) -> None:
    """A cell's run into the study's result: its rows and stage seconds added."""
    total.cells.append(cell)
    for stage, seconds in cell.stage_seconds.items():
        total.stage_seconds[stage] = total.stage_seconds.get(stage, 0.0) + seconds
    for table, rows in cell.rows.items():
        total.rows[table] = total.rows.get(table, 0) + rows
    total.replaced = total.replaced or cell.replaced


def database_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / "study.duckdb"


def staging_path(database: Path, run_id: int) -> Path:
    """Where a separate engine (Spark) keeps a run's tables as Parquet, beside the database."""
    return database.parent / "spark" / f"run-{run_id}"


@dataclass
class _Landing:
    """Whether the run's transaction has committed (set in the commit's own section), and
    what an interrupt after it should say (``errors.note_landed``)."""

    path: Path
    report: bool
    """Whether a report follows the commit."""
    run_ids: list[int] = field(default_factory=list)
    done: bool = False

    def landed(self) -> str:
        runs = ", ".join(map(str, self.run_ids))
        return f"run{'s' if len(self.run_ids) > 1 else ''} {runs} landed in {self.path}"

    def message(self) -> str:
        landed = self.landed()
        if not self.report:
            return landed
        return f"{landed}, its report was not written (`stl report --db {self.path}` writes it)"

    def mark(self) -> None:
        self.done = True
        note_landed(self.message())


@contextlib.contextmanager
def _run_database(
    path: Path, memory_limit: str | None, landing: _Landing
) -> Iterator[ibis.BaseBackend]:
    """Open (or create) the study database; remove it again if this run created it and failed
    before it landed. (``toolkit.preflight.check_output`` has checked the folder first.)"""
    created = not path.exists()
    new_folders = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _remove_created(path, created, new_folders)
        raise StudyError(f"--out {path.parent}: cannot create it: {error.strerror}") from None
    try:
        backend = db.connect(path, memory_limit=memory_limit)
    except duckdb.Error as error:
        _remove_created(path, created, new_folders)
        raise StudyError(f"{path}: cannot open the study database: {error}") from None
    except BaseException:
        _remove_created(path, created, new_folders)
        raise
    try:
        yield backend
    except BaseException:
        backend.disconnect()
        if not landing.done:
            _remove_created(path, created, new_folders)
        raise
    backend.disconnect()


def _remove_created(path: Path, created: bool, new_folders: list[Path]) -> None:
    """What a failed run created: its database file, WAL and spill folder, and the folders made
    for them, innermost first, while they are empty."""
    if created:
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)
        shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
    for folder in new_folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def write_outcomes(
    backend: db.Engine,
    study: Study,
    run_id: int,
    result: RunResult,
    simulated: bool,
    progress: Progress,
    logged: list[pa.Table] | None = None,
) -> None:
    """Estimate acc and cost of every action from the stored samples (and the truth); with
    ``logged`` outcomes (``source = "outcomes"``) as they were logged, for their instances."""
    with _timed(result, "outcomes", progress):
        samples = backend.table("samples").filter(ibis._.run_id == run_id)
        profiles = backend.to_pyarrow(answer_profiles(samples))
        instances = backend.table("instances").filter(ibis._.run_id == run_id)
        prompts = backend.to_pyarrow(instances.select("instance_id", "prompt_tokens"))
        truth = None
        if simulated:
            truth = backend.to_pyarrow(
                backend.table("sim_truth")
                .filter(ibis._.run_id == run_id)
                .select("instance_id", "model", "p_correct", "p_wrong")
            )
        actions = action_table(study)
        levels = scored = None
        if study.actions.aggregation == "best_of":
            levels = backend.to_pyarrow(score_levels(samples))
        if study.actions.aggregation == "weighted":
            scored = backend.to_pyarrow(scored_samples(samples))
        outcomes = estimate_outcomes(study, profiles, prompts, truth, levels, scored)
        if not simulated:  # the oracle's noise, measured on disjoint halves (toolkit.noise)
            outcomes = _with_halves(outcomes, study, backend.to_pyarrow(samples), prompts)
        if logged:
            outcomes = _with_logged(outcomes, actions, logged)
        if study.actions.rules or study.actions.cascades:  # adaptive (toolkit.adaptive)
            answers = None
            if any(spec.rule == "agreement" for spec in study.actions.cascades):
                answers = backend.to_pyarrow(answer_counts(samples))
            outcomes = pa.concat_tables(
                [outcomes, adaptive_outcomes(study, profiles, prompts, truth, answers)],
                promote_options="default",
            ).sort_by([("instance_id", "ascending"), ("action_id", "ascending")])
        if study.probe_model is not None:  # the probe's actions and features (toolkit.probe)
            model = study.probe_model
            probed, probes = probe_outcomes(
                study, backend.to_pyarrow(samples.filter(ibis._.model == model)), prompts, outcomes
            )
            outcomes = pa.concat_tables([outcomes, probed], promote_options="default").sort_by(
                [("instance_id", "ascending"), ("action_id", "ascending")]
            )
            result.rows["probes"] = db.append(backend, "probes", probes, run_id)
        result.rows["actions"] = db.append(backend, "actions", actions, run_id)
        result.rows["outcomes"] = db.append(backend, "outcomes", outcomes, run_id)


def _with_halves(
    outcomes: pa.Table, study: Study, samples: pa.Table, prompts: pa.Table
) -> pa.Table:
    """The outcomes with each action's accuracy on either half of the samples."""
    halves = half_outcomes(study, samples.drop_columns(["run_id"]), prompts)
    if halves is None or outcomes.num_rows == 0:
        return outcomes
    joined = outcomes.join(halves, ["instance_id", "action_id"], join_type="left outer")
    return joined.sort_by([("instance_id", "ascending"), ("action_id", "ascending")])


def _with_logged(estimated: pa.Table, actions: pa.Table, logged: list[pa.Table]) -> pa.Table:
    """The estimated outcomes and the logged ones (their (model, b) as action ids), in
    (instance_id, action_id) order."""
    ids = static_action_ids(actions)
    parts = [estimated] if estimated.num_rows else []
    for table in logged:
        action = [
            ids[key]
            for key in zip(
                table.column("model").to_pylist(), table.column("b").to_pylist(), strict=True
            )
        ]
        parts.append(
            pa.table(
                {
                    "instance_id": table.column("instance_id"),
                    "action_id": pa.array(action, pa.int32()),
                    "acc": table.column("acc"),
                    "cost": table.column("cost"),
                    "known_cost": table.column("known_cost"),
                    "acc_true": pa.nulls(table.num_rows, pa.float64()),
                }
            )
        )
    return pa.concat_tables(parts, promote_options="default").sort_by(
        [("instance_id", "ascending"), ("action_id", "ascending")]
    )


def simulate_into(
    backend: db.Engine, study: Study, run_id: int, result: RunResult, progress: Progress
) -> None:
    """Simulate every dataset and append instances, truth and samples in bulk."""
    with _timed(result, "simulate", progress):
        rows = {"instances": 0, "sim_truth": 0, "samples": 0}
        for data in simulate(study):
            rows["instances"] += db.append(backend, "instances", data.instances, run_id)
            rows["sim_truth"] += db.append(backend, "sim_truth", data.truth, run_id)
            rows["samples"] += db.append(backend, "samples", data.sample_batches(), run_id)
        result.rows.update(rows)


def ingest_into(
    backend: db.Engine,
    imported: list[ImportedDataset],
    run_id: int,
    result: RunResult,
    progress: Progress,
) -> list[pa.Table]:
    """Append every imported dataset's instances and samples (read and checked by
    ``toolkit.preflight.check`` before the run began) in bulk; the logged outcomes
    (``source = "outcomes"``), which the outcomes stage appends."""
    with _timed(result, "ingest", progress):
        rows = {"instances": 0, "samples": 0}
        logged = []
        for data in imported:
            rows["instances"] += db.append(backend, "instances", data.instances, run_id)
            rows["samples"] += db.append(backend, "samples", data.samples, run_id)
            if data.outcomes is not None:
                logged.append(data.outcomes)
        result.rows.update(rows)
    return logged


STAGES = ("simulate", "outcomes", "solve", "learn", "evaluate", "report")
"""Every stage, in order (``simulate`` stands for ``ingest`` when the datasets are files)."""


def solve_into(
    backend: db.Engine, study: Study, run_id: int, result: RunResult, progress: Progress
) -> None:
    """The oracle allocation of every budget on all instances over the static actions
    (``solutions``, ``allocations``; the train and test scopes are over them too)."""
    with _timed(result, "solve", progress):
        static = backend.to_pyarrow(
            backend.table("actions")
            .filter((ibis._.run_id == run_id) & (ibis._.menu == "static"))
            .select("action_id")
        )
        ids = static.column("action_id").to_pylist()
        outcomes = backend.table("outcomes").filter(
            (ibis._.run_id == run_id) & ibis._.action_id.isin(ids)
        )
        allocations = solve_budgets(backend, outcomes, list(study.budgets.values))
        write_allocations(backend, run_id, allocations, scope="all")


def learn_into(
    backend: db.Engine, study: Study, run_id: int, result: RunResult, progress: Progress
) -> None:
    """Features, splits, oracle labels and the CatBoost policies (``toolkit.learn``)."""
    with _timed(result, "learn", progress) as step:
        result.rows.update(learn(backend, study, run_id, step=step).rows)


def evaluate_into(
    backend: db.Engine, study: Study, run_id: int, result: RunResult, progress: Progress
) -> None:
    """Every policy on the test split at every budget (``toolkit.evaluate``)."""
    with _timed(result, "evaluate", progress) as step:
        result.rows.update(evaluate(backend, study, run_id, step=step).rows)


def _run_stages(
    backend: db.Engine,
    checked: Checked,
    run_id: int,
    result: RunResult,
    stages: tuple[str, ...],
    progress: Progress,
) -> None:
    study = checked.study
    simulated = checked.imported is None
    logged: list[pa.Table] = []
    # "simulate" and "ingest" name the same stage: the data, by the datasets' sources
    if {"simulate", "ingest"} & set(stages):
        if checked.imported is None:
            simulate_into(backend, study, run_id, result, progress)
        else:
            logged = ingest_into(backend, checked.imported, run_id, result, progress)
        if checked.references is not None:
            result.rows["reference_curves"] = db.append(
                backend, "reference_curves", checked.references, run_id
            )
    if "outcomes" in stages:
        write_outcomes(
            backend, study, run_id, result, simulated=simulated, progress=progress, logged=logged
        )
    if "solve" in stages:
        solve_into(backend, study, run_id, result, progress)
    if "learn" in stages:
        learn_into(backend, study, run_id, result, progress)
    if "evaluate" in stages:
        evaluate_into(backend, study, run_id, result, progress)


def run_study(
    study: Study,
    out_dir: str | Path,
    *,
    stages: tuple[str, ...] = STAGES,
    progress: Progress = quiet,
) -> RunResult:
    """Run a study into ``<out_dir>/study.duckdb``, all of it in one transaction: one run, or
    one per cell of a study allocated separately per dataset or model (``Study.cells``), whose
    report compares the cells' runs side by side.

    The core queries run on ``study.engine`` (``toolkit.db``); whatever the engine, the run
    lands in the DuckDB file whole or not at all."""
    path = database_path(out_dir)
    result = RunResult(run_id=-1, database=path, name=study.study.name)
    learns = bool({"learn", "evaluate"} & set(stages))
    with _timed(result, "check", progress):  # everything `stl validate` checks, before any write
        checked = check_cells(study, out_dir, learns=learns)
    landing = _Landing(path, report="report" in stages)
    try:
        _land(checked, path, result, stages, progress, landing)
        result.cost_unit = study.actions.cost
        if "evaluate" in stages:
            for cell in result.cells or [result]:
                cell.headline = bi.read_headline(path, cell.run_id)
        if "report" in stages:
            # from the committed, closed database, opened read-only like any reader
            with _timed(result, "report", progress):
                from toolkit.report import write_comparison, write_report  # matplotlib loads here

                out = path.with_name("report.html")
                result.report = (
                    write_comparison([path], out, result.run_ids)
                    if result.cells
                    else write_report(path, out, result.run_id)
                )
            note_landed(f"{landing.landed()}, its report in {result.report}")
    except KeyboardInterrupt:
        if not landing.done:
            raise
        raise InterruptedAfterLanding(landing.message()) from None
    except StudyError as error:
        if not landing.done:
            raise
        runs = "".join(f" --run {run_id}" for run_id in result.run_ids) if result.cells else ""
        raise StudyError(
            f"{landing.landed()}, but {'their' if result.cells else 'its'} report did not: {error} "
            f"(`stl report --db {path}{runs}` writes it)"
        ) from None
    return result


def _land(
    checked: list[Checked],
    path: Path,
    result: RunResult,
    stages: tuple[str, ...],
    progress: Progress,
    landing: _Landing,
) -> None:
    """Every stage but the report of every cell, in one transaction into the database at
    ``path``."""
    first = checked[0].study
    with _run_database(path, first.engine.memory_limit, landing) as store:
        with db.transaction(store, on_commit=landing.mark):
            db.create_schema(store)
            try:
                for cell in checked:
                    name = cell.study.study.name
                    labelled = progress if len(checked) == 1 else _labelled(progress, name)
                    ran = _land_run(store, cell, path, stages, labelled)
                    landing.run_ids.append(ran.run_id)
                    _add_cell(result, ran)
            except BaseException:  # the transaction rolls back: so do the cells staged before
                if db.parse_engine_url(first.engine.url).separate:
                    for run_id in landing.run_ids:
                        db.remove_staging(staging_path(path, run_id))
                raise
            result.run_id = landing.run_ids[0]
            if len(checked) == 1:  # a study run as one: its result is the run's own
                result.cells.clear()


def _labelled(progress: Progress, name: str) -> Progress:
    """``progress`` with each stage named after the cell's run (``<run name>: <stage>``)."""
    return lambda stage: progress(f"{name}: {stage}")


def _land_run(
    store: ibis.BaseBackend,
    checked: Checked,
    path: Path,
    stages: tuple[str, ...],
    progress: Progress,
) -> RunResult:
    """One run's stages, registered as a run, inside the caller's transaction."""
    study = checked.study
    engine_url = db.parse_engine_url(study.engine.url)
    result = RunResult(run_id=-1, database=path, name=study.study.name)
    result.replaced = (
        db.existing_run(store, study.study.name, study.config_hash(), study.study.seed) is not None
    )
    run_id = db.register_run(
        store,
        study=study.study.name,
        config_hash=study.config_hash(),
        seed=study.study.seed,
        config_json=json.dumps(study.model_dump(mode="json"), sort_keys=True),
        cost_unit=study.actions.cost,
        aggregation=study.actions.aggregation,
        samples_per_instance=study.estimation.samples_per_instance,
        engine=engine_url.kind,
    )
    result.run_id = run_id
    staging = staging_path(path, run_id) if engine_url.separate else None
    db.remove_staging(staging)  # a replaced run's staged tables
    try:
        backend = db.open_engine(
            store, study.engine.url, staging=staging, spark_config=study.engine.spark_config
        )
        try:
            _run_stages(backend, checked, run_id, result, stages, progress)
        finally:
            backend.release()
    except BaseException:
        db.remove_staging(staging)
        raise
    return result


__all__ = ["STAGES", "RunResult", "StudyError", "database_path", "run_study"]
