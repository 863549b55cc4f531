"""Deploy a trained policy: a study's learned policy allocates new requests at a budget.

    policy = BudgetPolicy(load_study("study.toml")).fit("out/")  # solve and learn its data
    policy = BudgetPolicy.from_run("out/study.duckdb")           # or: a run's (the latest)
    policy = BudgetPolicy.load("policy/")                        # or: a saved folder
    decisions = policy.allocate("new.jsonl", budget=16.0, seed=0)  # one row per request

``fit`` is the pipeline's own: the study's data (simulated, or its logs) through the stages up
to learn into a study database, then that run's policy as ``from_run`` reads it, so a fitted
policy and a run's are one thing. The policy is the one ``evaluate`` scores as
``learned_batch``: the CatBoost classifiers of one seed (one per declared budget; at another
budget the nearest in log scale decides) and the run's cost planner, both as ``learn`` stored
them (fold 0's: with ``[split] folds = k`` they were trained on (k-1)/k of the instances). The
requests (a file, a list of records, or ``toolkit.ingest.read_requests`` rows) are read and
checked as a metadata file is; their features are computed by the same SQL and Ibis query as
the pipeline's (``sql/features/text_features.sql``, ``toolkit.features.instance_features``),
their planned cost by the same planner, and the allocation by the same ``allocate`` evaluate
calls, so offline numbers and deployed decisions come from one code path. It is priced on the
batch: the mean planned cost of the allocation (its expectation over the mix of the two
actions at the price that meets B) is B exactly; each request then draws its action from its
weights with ``seed``.

A probe policy (``learned_probe``) needs each request's probe samples, which a request does not
carry; a policy over declared feature columns needs them too: both are refused here.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from toolkit import bi, features
from toolkit.config import Study, load_study, parse_study, resolve_model
from toolkit.costs import CostPlanner
from toolkit.db import table_schema, versions
from toolkit.errors import StudyError
from toolkit.files import written_whole
from toolkit.learn import read_planners, read_policies
from toolkit.learned import LearnedDeployment, LearnedPolicy, load_model
from toolkit.outcomes import Usage, action_cost
from toolkit.policies import Inputs
from toolkit.progress import Step
from toolkit.run_data import action_menus, feature_spec

DEPLOYMENT = "learned_batch"
ARTIFACT_FORMAT = "stl-policy/1"
"""The saved policy folder's format (``manifest.json`` ``format``)."""
_DRAW_STREAM = 20_260_414
"""SeedSequence key of the draws between two actions (with the ``seed`` of ``allocate``)."""
CHUNK = 50_000
"""Requests whose features and scores are computed at once (the price is set on all of them)."""
_SAVED_ACTION_COLUMNS = ("action_id", "name", "model", "b")
"""The columns of table ``actions`` a saved policy keeps (the static menu it decides among)."""
FIT_STAGES = ("simulate", "outcomes", "solve", "learn")
"""The pipeline stages ``fit`` runs ("simulate" is the data stage, whatever the source)."""


@dataclass(frozen=True)
class _Fitted:
    """What a fitted policy decides with, as ``learn`` stored it."""

    deployment: LearnedDeployment
    planner: CostPlanner
    spec: features.FeatureSpec
    actions: pa.Table
    """The static actions (action_id, name, model, b), in the order of the policy's columns."""
    planned_columns: np.ndarray
    """Their positions among the planner's columns (every action of the run, both menus)."""
    database: Path | None
    """The study database it came from (None: ``fit`` into a temporary folder)."""
    run_id: int


class BudgetPolicy:
    """A study's learned policy, for new requests (see the module docstring): scikit-learn
    style, ``BudgetPolicy(study).fit()`` then ``allocate``; ``from_run`` and ``load`` give a
    fitted one."""

    def __init__(self, study: Study | str | Path, *, seed: int | None = None) -> None:
        """``study``: a ``Study`` or a study file; ``seed``: the CatBoost seed whose
        classifiers decide (the first of ``[learn] seeds`` by default)."""
        self.study = study if isinstance(study, Study) else load_study(study)
        if self.study.study.separately:
            names = ", ".join(cell.study.name for cell in self.study.cells())
            raise StudyError(
                f"study.separately: the study makes one policy per run ({names}); fit one of "
                "them (BudgetPolicy.from_run on its run, or a study without separately)"
            )
        self.policy_seed = seed
        self.feature_threads: int | None = None
        """DuckDB threads of the feature query (default: every core); ``stl serve`` uses 1,
        as small batches are quicker on one thread."""
        self._fitted: _Fitted | None = None
        self._compiled: tuple | None = None

    def __repr__(self) -> str:
        state = "unfitted" if self._fitted is None else f"run {self.run_id}, seed {self.seed}"
        return f"BudgetPolicy({self.study.study.name!r}, {state})"

    # ----------------------------------------------------------------------------------------
    def fit(self, out: str | Path | None = None, *, progress=None) -> BudgetPolicy:
        """Solve and learn on the study's data: its stages up to learn, run into
        ``out/study.duckdb`` (as ``stl run --out`` would, without evaluate and the report;
        by default a temporary folder, removed after), and that run's policy. Returns self."""
        from toolkit.pipeline import run_study

        kwargs = {} if progress is None else {"progress": progress}
        if out is not None:
            result = run_study(self.study, out, stages=FIT_STAGES, **kwargs)
            self._fitted = _read_fitted(result.database, result.run_id, self.policy_seed)[1]
        else:
            with tempfile.TemporaryDirectory(prefix="stl-fit-") as folder:
                result = run_study(self.study, folder, stages=FIT_STAGES, **kwargs)
                fitted = _read_fitted(result.database, result.run_id, self.policy_seed)[1]
            self._fitted = dataclasses.replace(fitted, database=None)
        self._compiled = None
        return self

    @classmethod
    def from_run(
        cls, database: str | Path, run_id: int | None = None, seed: int | None = None
    ) -> BudgetPolicy:
        """The learned policy of a run (the latest by default) and CatBoost seed (the first
        of ``[learn] seeds`` by default)."""
        study, fitted = _read_fitted(Path(database), run_id, seed)
        policy = cls(study, seed=seed)
        policy._fitted = fitted
        return policy

    # ----------------------------------------------------------------------------------------
    @property
    def fitted(self) -> _Fitted:
        if self._fitted is None:
            raise StudyError(
                "BudgetPolicy: not fitted; call .fit(), or use BudgetPolicy.from_run(db) or "
                "BudgetPolicy.load(folder)"
            )
        return self._fitted

    @property
    def deployment(self) -> LearnedDeployment:
        return self.fitted.deployment

    @property
    def planner(self) -> CostPlanner:
        return self.fitted.planner

    @property
    def spec(self) -> features.FeatureSpec:
        return self.fitted.spec

    @property
    def actions(self) -> pa.Table:
        """The static actions (action_id, name, model, b), in the order of the policy's
        columns."""
        return self.fitted.actions

    @property
    def planned_columns(self) -> np.ndarray:
        return self.fitted.planned_columns

    @property
    def database(self) -> Path | None:
        return self.fitted.database

    @property
    def run_id(self) -> int:
        return self.fitted.run_id

    @property
    def seed(self) -> int:
        """The CatBoost seed whose classifiers decide."""
        return self.deployment.seed

    @property
    def budgets(self) -> list[float]:
        """The declared budgets its classifiers were trained at."""
        return sorted(self.deployment.classifiers)

    @property
    def columns(self) -> dict[str, str]:
        """The request columns read by default (role -> column): the study's metadata
        columns."""
        metadata = self.study.datasets[0].metadata
        if metadata is None:
            raise StudyError(
                "--columns: the study has no metadata columns to default to; name them"
            )
        return {role: column for role, column in metadata.columns if column is not None}

    # ----------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """The policy as a folder that loads without the study database: ``manifest.json``
        (the study as it ran, the run and config hash it came from, the features, actions,
        prices per budget, decoder and versions) and the CatBoost models (``.cbm``). Written
        whole: into a folder beside it, then renamed into place (an existing one is
        replaced)."""
        folder = Path(folder)
        if folder.exists() and not (folder / "manifest.json").is_file():
            raise StudyError(f"--policy {folder}: exists and is not a policy folder")
        part = folder.with_name(f".{folder.name}.part")
        shutil.rmtree(part, ignore_errors=True)
        try:
            part.mkdir(parents=True)
            classifiers = []
            for index, (budget, policy) in enumerate(sorted(self.deployment.classifiers.items())):
                model_file = None
                data = policy.model_bytes()
                if data is not None:
                    model_file = f"classifier-{index}.cbm"
                    (part / model_file).write_bytes(data)
                classifiers.append(
                    {
                        "budget": budget,
                        "seed": policy.seed,
                        "lambda": policy.lambda_,
                        "action_ids": policy.action_ids.tolist(),
                        "classes": policy.classes.tolist(),
                        "class_accuracy": policy.class_accuracy.tolist(),
                        "feature_names": list(policy.feature_names),
                        "decoder": policy.decoder,
                        "fold": policy.fold,
                        "menu": policy.menu,
                        "params": policy.params,
                        "model": model_file,
                    }
                )
            planner_data = self.planner.model_bytes()
            if planner_data is not None:
                (part / "planner.cbm").write_bytes(planner_data)
            manifest = {
                "format": ARTIFACT_FORMAT,
                "database": None if self.database is None else str(self.database),
                "run_id": self.run_id,
                "config_hash": self.study.config_hash(),
                "study": self.study.model_dump(mode="json"),
                "versions": versions(),
                "features": {
                    **dataclasses.asdict(self.spec),
                    "names": self.spec.names(),
                    "kinds": [info.kind for info in self.spec.infos()],
                },
                "actions": self.actions.to_pylist(),
                "planned_columns": self.planned_columns.tolist(),
                "planner": {
                    "method": self.planner.method,
                    "mean_variable": self.planner.mean_variable.tolist(),
                    "shift": np.asarray(self.planner.shift).tolist(),
                    "modelled": None
                    if self.planner.modelled is None
                    else np.asarray(self.planner.modelled).tolist(),
                    "model": None if planner_data is None else "planner.cbm",
                },
                "deployment": DEPLOYMENT,
                "classifiers": classifiers,
            }
            (part / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
            if folder.exists():
                shutil.rmtree(folder)
            part.rename(folder)
        except OSError as error:
            shutil.rmtree(part, ignore_errors=True)
            raise StudyError(f"--policy {folder}: cannot write it: {error.strerror}") from None
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> BudgetPolicy:
        """A policy saved by ``save``; no study database needed."""
        folder = Path(folder)
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError) as error:
            raise StudyError(f"--policy {folder}: not a saved policy ({error})") from None
        if manifest.get("format") != ARTIFACT_FORMAT:
            raise StudyError(
                f"--policy {folder}: format {manifest.get('format')!r}, this toolkit reads "
                f"{ARTIFACT_FORMAT!r}"
            )
        study = parse_study(manifest["study"], f"{folder}/manifest.json")
        classifiers = {}
        for entry in manifest["classifiers"]:
            data = (folder / entry["model"]).read_bytes() if entry["model"] else None
            classifiers[entry["budget"]] = LearnedPolicy(
                budget=entry["budget"],
                seed=entry["seed"],
                lambda_=entry["lambda"],
                action_ids=np.asarray(entry["action_ids"], dtype=np.int32),
                classes=np.asarray(entry["classes"], dtype=np.int64),
                class_accuracy=np.asarray(entry["class_accuracy"], dtype=np.float64),
                feature_names=tuple(entry["feature_names"]),
                model=load_model(data),
                fold=entry["fold"],
                menu=entry["menu"],
                params=entry["params"],
                decoder=entry["decoder"],
            )
        stored = manifest["planner"]
        planner = CostPlanner.from_stored(
            stored["method"],
            np.asarray(stored["mean_variable"], dtype=np.float64),
            np.asarray(stored["shift"], dtype=np.float64),
            (folder / stored["model"]).read_bytes() if stored["model"] else None,
            None if stored["modelled"] is None else np.asarray(stored["modelled"], dtype=bool),
        )
        given = manifest["features"]
        spec = features.FeatureSpec(
            n_signals=given["n_signals"],
            numeric=tuple(given["numeric"]),
            categorical=tuple(given["categorical"]),
            text=given["text"],
            groups=tuple(given["groups"]),
            probe=given["probe"],
        )
        actions = pa.Table.from_pylist(
            manifest["actions"], schema=table_schema("actions", _SAVED_ACTION_COLUMNS)
        )
        policy = cls(study)
        policy._fitted = _Fitted(
            LearnedDeployment(manifest["deployment"], classifiers),
            planner,
            spec,
            actions,
            np.asarray(manifest["planned_columns"], dtype=np.int64),
            None if manifest["database"] is None else Path(manifest["database"]),
            manifest["run_id"],
        )
        return policy

    # ----------------------------------------------------------------------------------------
    def read(self, requests, columns: dict[str, str] | None = None) -> pa.Table:
        """Requests as the policy reads them (``toolkit.ingest.read_requests`` rows): from a
        file (CSV, JSONL, JSON, Parquet), a list of records (dicts), or rows already read
        (returned as they are). ``columns``: role -> column for id, text, level and subject
        (by default the study's metadata columns, ``self.columns``)."""
        from toolkit.ingest import RequestReader

        if isinstance(requests, pa.Table):
            missing = [
                c
                for c in ("instance_id", "source_id", "prompt_tokens")
                if c not in requests.column_names
            ]
            if missing:
                raise StudyError(
                    f"requests: a table of rows as read_requests returns them (it has no "
                    f"{missing[0]!r}); pass raw records as a list of dicts or a file's path"
                )
            return requests
        reader = RequestReader(self.study, self.columns if columns is None else columns)
        try:
            if isinstance(requests, (str, Path)):
                return reader.read(requests)
            return reader.records(requests)
        finally:
            reader.close()

    def inputs(self, requests: pa.Table) -> Inputs:
        """What the policy sees of the requests (``toolkit.ingest.read_requests`` rows): their
        features and every action's planned cost."""
        wide = self._features(requests)
        frame = features.to_frame(wide, self.spec.names())
        n = requests.num_rows
        prompt = requests.column("prompt_tokens").to_numpy(zero_copy_only=False).astype(float)
        usage = Usage(np.zeros(n), np.nan_to_num(prompt), np.full(n, np.nan))
        models = {spec.name: resolve_model(spec) for spec in self.study.models}
        known = np.column_stack(
            [
                action_cost(self.study.actions, b, usage, models[model])[1]
                for model, b in zip(
                    self.actions.column("model").to_pylist(),
                    self.actions.column("b").to_pylist(),
                    strict=True,
                )
            ]
        )
        ids = wide.column("instance_id").to_numpy()
        return Inputs(ids, frame, self.planner.planned(frame, known, self.planned_columns))

    def _features(self, requests: pa.Table) -> pa.Table:
        """The requests' feature columns: the pipeline's Ibis query, compiled to DuckDB SQL once
        per request schema and run on one connection (compiling it is most of the time of a
        small batch)."""
        if self.spec.n_signals and "difficulty_signals" not in requests.column_names:
            raise StudyError(
                f"requests: this policy reads the simulator's {self.spec.n_signals} difficulty "
                "signals (features signal_1.., the feature group 'signals' of a simulated "
                "study), which requests do not carry; to deploy it, fit it without them "
                '(learn.features without "signals")'
            )
        if self._compiled is None or not self._compiled[0].equals(requests.schema):
            placeholder = ibis.table(ibis.Schema.from_pyarrow(requests.schema), name="_requests")
            query = features.instance_features(
                placeholder, n_signals=self.spec.n_signals, spec=self.spec
            ).order_by("instance_id")
            if self._compiled is not None:
                self._compiled[2].close()
            self._compiled = (
                requests.schema,
                ibis.to_sql(query, dialect="duckdb"),
                duckdb.connect(
                    config={} if self.feature_threads is None else {"threads": self.feature_threads}
                ),
            )
        _, sql, con = self._compiled
        con.register("_requests", requests)
        try:
            return con.sql(sql).to_arrow_table()
        finally:
            con.unregister("_requests")

    def weights(
        self, requests: pa.Table, budget: float, progress: Step | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(weights, planned cost), both (n, K): the priced allocation of the requests at
        ``budget`` (each row sums to 1; two nonzero entries where a request is mixed), as
        evaluate makes it for ``learned_batch``. Features, planned costs and the classifier's
        probabilities are computed ``CHUNK`` requests at a time (``progress`` told after each);
        the price is then set on all of them."""
        if requests.num_rows == 0:
            raise StudyError("requests: no rows to allocate")
        if not (np.isfinite(budget) and budget > 0):
            raise StudyError(f"--budget: a positive number, got {budget!r}")
        classifier = self.deployment.classifier_for(budget)
        n, parts, probabilities = requests.num_rows, [], []
        for start in range(0, n, CHUNK):
            part = self.inputs(requests.slice(start, CHUNK))
            parts.append(part)
            probabilities.append(classifier.probabilities(part.frame))
            if progress is not None:
                progress(min(start + CHUNK, n), n)
        inputs = parts[0]
        if len(parts) > 1:
            inputs = Inputs(
                np.concatenate([part.instance_ids for part in parts]),
                pd.concat([part.frame for part in parts], ignore_index=True),
                np.concatenate([part.planned_cost for part in parts]),
            )
            classifier.keep(inputs.frame, np.concatenate(probabilities))
        planned = inputs.planned_cost
        cheapest, dearest = planned.min(axis=1).mean(), planned.max(axis=1).mean()
        if not cheapest <= budget <= dearest:
            raise StudyError(
                f"--budget {budget:g}: these requests' mean planned cost ranges from "
                f"{cheapest:g} (every request on its cheapest action) to {dearest:g}"
            )
        return self.deployment.allocate(inputs, budget).weights, planned

    def allocate(
        self,
        requests,
        budget: float,
        seed: int = 0,
        *,
        columns: dict[str, str] | None = None,
        progress: Step | None = None,
    ) -> pa.Table:
        """One decision per request (in their order): the action drawn from the priced
        allocation's weights with ``seed``, its model, b and planned cost, the weight it had,
        and whether the request was one of those mixed between two actions to meet B.
        ``requests``: a file, a list of records or rows read (``read``, with ``columns``)."""
        requests = self.read(requests, columns)
        weights, planned = self.weights(requests, budget, progress)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _DRAW_STREAM])))
        draw = rng.random(len(weights))
        cumulative = np.cumsum(weights, axis=1)
        chosen = np.minimum((cumulative <= draw[:, None]).sum(axis=1), weights.shape[1] - 1)
        return self.decisions(requests, weights, planned, chosen)

    def decisions(
        self, requests: pa.Table, weights: np.ndarray, planned: np.ndarray, chosen: np.ndarray
    ) -> pa.Table:
        """The decision table of requests whose actions were drawn (``chosen``: a column of
        ``weights`` per request)."""
        rows = np.arange(len(weights))
        return pa.table(
            {
                "id": requests.column("source_id"),
                "action": self.actions.column("name").take(pa.array(chosen)),
                "model": self.actions.column("model").take(pa.array(chosen)),
                "b": self.actions.column("b").take(pa.array(chosen)),
                "planned_cost": pa.array(planned[rows, chosen], pa.float64()),
                "weight": pa.array(weights[rows, chosen], pa.float64()),
                "mixed": pa.array((weights > 0).sum(axis=1) > 1),
                "expected_planned_cost": pa.array((weights * planned).sum(axis=1), pa.float64()),
            }
        )


def _read_fitted(database: Path, run_id: int | None, seed: int | None) -> tuple[Study, _Fitted]:
    """The study of a run (the latest by default) and its learned policy of one CatBoost seed
    (the first by default), as ``learn`` stored it."""
    backend = bi.open_read_only(database)
    try:
        row = bi.run_row(backend, database, run_id)
        run_id = row["run_id"]
        study = parse_study(json.loads(row["config_json"]), f"run {run_id}")
        policies = [p for p in read_policies(backend, run_id) if p.fold == 0 and p.menu == "static"]
        if not policies:
            raise StudyError(
                f"{database}: run {run_id} has no learned policy (it ran without the learn "
                "stage, or [policies] compare leaves out learned)"
            )
        seeds = sorted({p.seed for p in policies})
        seed = seeds[0] if seed is None else seed
        if seed not in seeds:
            raise StudyError(
                f"--seed {seed}: run {run_id} learned with seeds {', '.join(map(str, seeds))}"
            )
        classifiers = {p.budget: p for p in policies if p.seed == seed}
        spec = feature_spec(backend, run_id, study)
        if spec.numeric or spec.categorical:
            raise StudyError(
                "the policy sees declared feature columns, which requests do not carry yet"
            )
        planner = read_planners(backend, run_id)[0]
        listed = backend.table("actions")
        listed = backend.to_pyarrow(
            listed.filter(listed.run_id == run_id)
            .select(*_SAVED_ACTION_COLUMNS, "menu")
            .order_by("action_id")
        )
        # the planner plans every action (both menus) in action_id order
        columns = action_menus(listed)["static"]
        actions = listed.take(columns).drop_columns(["menu"])
    finally:
        backend.disconnect()
    deployment = LearnedDeployment(DEPLOYMENT, classifiers)
    return study, _Fitted(deployment, planner, spec, actions, columns, database, run_id)


def summary(decisions: pa.Table, budget: float) -> list[str]:
    """The lines ``stl allocate`` prints: planned mean cost against B, and each action's
    share of the requests."""
    expected = float(np.mean(decisions.column("expected_planned_cost").to_numpy()))
    drawn = float(np.mean(decisions.column("planned_cost").to_numpy()))
    mixed = int(np.sum(decisions.column("mixed").to_numpy(zero_copy_only=False)))
    lines = [
        f"{decisions.num_rows:,} requests at B = {budget:g}: mean planned cost {expected:.10g} "
        f"(priced to meet B; {mixed:,} request{'' if mixed == 1 else 's'} mixed between two "
        f"actions), {drawn:.6g} as "
        "drawn",
    ]
    names = decisions.column("action").to_pylist()
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        lines.append(f"  {name:<28} {count:>8,}  {count / len(names):6.1%}")
    return lines


def write_decisions(decisions: pa.Table, out: Path) -> None:
    """The decisions as JSONL, CSV or Parquet (by the file's extension), written whole
    (``toolkit.files``)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    kind = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(
        out.suffix.lower()
    )
    if kind is None:
        raise StudyError(f"-o {out}: write .jsonl, .csv or .parquet")
    try:
        with written_whole(out) as part:
            if kind == "parquet":
                pq.write_table(decisions, part)
            elif kind == "csv":
                pacsv.write_csv(decisions, part)
            else:
                with part.open("w", encoding="utf-8") as handle:
                    for row in decisions.to_pylist():
                        handle.write(json.dumps(row) + "\n")
    except OSError as error:
        raise StudyError(f"-o {out}: cannot write it: {error.strerror}") from None


__all__ = ["BudgetPolicy", "summary", "write_decisions"]
