"""The whole study file: its sections checked against each other (``Study``), the runs it
makes (``Study.cells``), and reading it from TOML (``load_study``, ``parse_study``), every error
naming the file and the field."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from toolkit.config.base import _Section
from toolkit.config.datasets import DatasetSpec, Role
from toolkit.config.sections import (
    ActionSpec,
    BudgetSpec,
    EngineSpec,
    EstimationSpec,
    LearnSpec,
    ModelSpec,
    PolicySpec,
    ProbeSpec,
    SimulationSpec,
    SplitSpec,
    StudyInfo,
    resolve_model,
)
from toolkit.errors import StudyError


class Study(_Section):
    """A whole study file."""

    study: StudyInfo
    datasets: Annotated[list[DatasetSpec], Field(min_length=1)]
    models: Annotated[list[ModelSpec], Field(min_length=1)]
    actions: ActionSpec = ActionSpec()
    estimation: EstimationSpec = EstimationSpec()
    simulation: SimulationSpec = SimulationSpec()
    probe: ProbeSpec = ProbeSpec()
    split: SplitSpec = SplitSpec()
    budgets: BudgetSpec = BudgetSpec()
    policies: PolicySpec = PolicySpec()
    learn: LearnSpec = LearnSpec()
    engine: EngineSpec = EngineSpec()

    @model_validator(mode="after")
    def _consistent(self) -> Study:
        for field, items in (("datasets", self.datasets), ("models", self.models)):
            names = [item.name for item in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{field}: names must be distinct, got {names}")
        simulated_presets = [d.preset for d in self.datasets if d.source == "simulate"]
        for index, model in enumerate(self.models):
            resolved = resolve_model(model)
            for preset in simulated_presets:
                for key in ("accuracy", "output_tokens"):
                    if preset not in getattr(resolved, key):
                        raise ValueError(
                            f"models[{index}].{key}: no value for dataset preset {preset!r} "
                            f"(model {model.name!r}); a simulated dataset needs "
                            f"{key} = {{ {preset} = ... }} or a model preset"
                        )
        largest = max(self.actions.samples)
        stored = self.estimation.samples_per_instance
        simulated = all(d.source == "simulate" for d in self.datasets)
        # pass@b also needs b stored samples: with fewer, every b-subset would count as solved
        if (self.actions.aggregation != "pass" or simulated) and largest > stored:
            raise ValueError(
                f"actions.samples: b = {largest} exceeds estimation.samples_per_instance = {stored}"
            )
        model_names = {model.name for model in self.models}
        logged = [i for i, d in enumerate(self.datasets) if d.source == "outcomes"]
        if (self.actions.rules or self.actions.cascades) and logged:
            raise ValueError(
                f"actions.rules: a stopping rule runs over stored samples, and datasets"
                f"[{logged[0]}] logs outcomes only (source = 'outcomes')"
            )
        for field, specs in (("rules", self.actions.rules), ("cascades", self.actions.cascades)):
            self._rules_fit(field, specs, stored, model_names)
        return self

    @staticmethod
    def _rules_fit(field: str, specs: list, stored: int, names: set[str]) -> None:
        for index, rule in enumerate(specs):
            if rule.cap > stored:
                raise ValueError(
                    f"actions.{field}[{index}].cap: {rule.cap} exceeds "
                    f"estimation.samples_per_instance = {stored}"
                )
            for model in rule.models or []:
                if model not in names:
                    raise ValueError(
                        f"actions.{field}[{index}].models: {model!r} is not a declared model"
                    )

    @model_validator(mode="after")
    def _budgets_feasible(self) -> Study:
        """With cost in samples every action's cost is known before any data: b (plus
        ``fixed_cost``), so a budget outside [cheapest, dearest] is refused here, not after
        the samples are drawn. (Tokens and dollars depend on the data: ``toolkit.solve``.)"""
        if self.actions.cost != "samples":
            return self
        actions = self.actions
        if actions.rules or actions.cascades:  # an adaptive action spends by the data: the
            # range its spend can take (from one sample to every cap of a cascade); the
            # solver refuses a budget the data cannot meet
            most = [s.cap for s in actions.rules] + [
                s.cap * len(s.models) for s in actions.cascades
            ]
            low, high = 1 + actions.fixed_cost, max(*actions.samples, *most) + actions.fixed_cost
            least, dearest = "one sample", "the most an action can draw"
        else:
            low, high = (
                min(actions.samples) + actions.fixed_cost,
                max(actions.samples) + actions.fixed_cost,
            )
            least, dearest = f"b = {min(actions.samples)}", f"b = {max(actions.samples)}"
        for index, budget in enumerate(self.budgets.values):
            if not low <= budget <= high:
                raise ValueError(
                    f"budgets.values[{index}]: budget {budget:g} is infeasible: with cost in "
                    f"samples the mean cost per instance ranges from {low:g} (every instance "
                    f"on {least}) to {high:g} (on {dearest})"
                )
        return self

    @model_validator(mode="after")
    def _scored_for_best_of(self) -> Study:
        """Best-of-b and the weighted vote read a log's samples' scores: every dataset must
        carry them."""
        aggregation = self.actions.aggregation
        if aggregation not in ("best_of", "weighted"):
            return self
        for index, spec in enumerate(self.datasets):
            if not spec.carries("score"):
                what = "simulated" if spec.source == "simulate" else f"a {spec.source} log"
                raise ValueError(
                    f'actions.aggregation: "{aggregation}" reads the samples\' scores, and '
                    f"datasets[{index}] ({what}) has none: it needs source = 'samples' with "
                    "columns.score"
                )
        if self.probe.samples:
            raise ValueError(
                "probe.samples: a probe is priced for majority votes and pass@b, "
                f'not "{aggregation}"'
            )
        return self

    @model_validator(mode="after")
    def _rules_have_their_data(self) -> Study:
        """``until_verified`` stops on a check: the correct flag (``aggregation = "pass"``, an
        oracle verifier) or a logged check, which then every dataset must carry; an
        ``agreement`` cascade compares the models' answers, which every dataset must carry."""
        needs: dict[str, Role] = {"until_verified": "check", "agreement": "answer"}
        for field, specs in (("rules", self.actions.rules), ("cascades", self.actions.cascades)):
            for i, spec in enumerate(specs):
                role = needs.get(spec.rule)
                if role is None or (role == "check" and self.actions.aggregation == "pass"):
                    continue
                lacking = [k for k, d in enumerate(self.datasets) if not d.carries(role)]
                if not lacking:
                    continue
                wanted = (
                    'a verifier: aggregation = "pass" (the correct flag), or a check'
                    if role == "check"
                    else "the samples' answers"
                )
                raise ValueError(
                    f"actions.{field}[{i}].rule: {spec.rule!r} needs {wanted} on every "
                    f"dataset, and datasets[{lacking[0]}] has none (columns.{role}, or "
                    f"models.<model>.{role} for a wide log)"
                )
        return self

    @model_validator(mode="after")
    def _separable(self) -> Study:
        """A run per model has one model: no cascade (it spans models), no rule or probe naming
        a model; every cell's name is a valid study name."""
        if "model" in self.study.separately:
            named = [f"cascades[{i}]" for i, _ in enumerate(self.actions.cascades)]
            named += [f"rules[{i}].models" for i, r in enumerate(self.actions.rules) if r.models]
            named += ["probe.model"] if self.probe.model is not None else []
            if named:
                raise ValueError(
                    f"study.separately: a run per model has one model, and actions.{named[0]}"
                    " names models (the probe's model is each run's own)"
                    if named[0] != "probe.model"
                    else "study.separately: a run per model probes its own model; leave "
                    "probe.model out"
                )
            for i, dataset in enumerate(self.datasets):
                if dataset.source != "simulate" and dataset.model is None:
                    raise ValueError(
                        f"study.separately: datasets[{i}] ({dataset.name!r}) is a file of several "
                        "models' outcomes, which a run per model cannot split; give each model's "
                        "file its own dataset with datasets.model"
                    )
        cells = self.cells()
        split = self.study.separately  # (a cell's positions are the whole study's, not its own)
        covered = {j for c in cells for j in c.study.cell["models"]} if split else set()
        for j, model in enumerate(self.models):
            if split and j not in covered:
                raise ValueError(
                    f"study.separately: models[{j}] ({model.name!r}) has no dataset: no "
                    "datasets.model names it and none is simulated"
                )
        for cell in cells:
            if len(cell.study.name) > 64:
                raise ValueError(
                    f"study.name: the run name {cell.study.name!r} (study, dataset and model "
                    "names) is longer than 64 characters"
                )
        return self

    def cells(self) -> list[Study]:
        """The runs the study makes: itself, or (``study.separately``) one study per dataset,
        model or pair, named ``<study>.<dataset>.<model>``, each with the study's seed and its
        position in the study (``study.cell``), by which the simulator keys its streams."""
        keys = self.study.separately
        if not keys:
            return [self]
        every_dataset = list(range(len(self.datasets)))
        every_model = list(range(len(self.models)))
        dataset_groups = [[i] for i in every_dataset] if "dataset" in keys else [every_dataset]
        model_groups = [[j] for j in every_model] if "model" in keys else [every_model]
        cells = []
        for dataset_group in dataset_groups:
            for model_group in model_groups:
                models = [self.models[j] for j in model_group]
                # a file of one model's outcomes (datasets.model) belongs to that model's cells
                kept = [
                    i
                    for i in dataset_group
                    if self.datasets[i].model is None
                    or self.datasets[i].model in {m.name for m in models}
                ]
                if not kept:
                    continue
                parts = [self.study.name]
                parts += [self.datasets[kept[0]].name] if "dataset" in keys else []
                parts += [models[0].name] if "model" in keys else []
                info = self.study.model_copy(
                    update={
                        "name": ".".join(parts),
                        "separately": [],
                        "cell": {"datasets": kept, "models": model_group},
                    }
                )
                datasets = [self.datasets[i] for i in kept]
                cells.append(
                    self.model_copy(update={"study": info, "datasets": datasets, "models": models})
                )
        return cells

    def reference_model(self, dataset: DatasetSpec) -> str:
        """The model a dataset's reference curves are of (``ReferenceSpec.model``)."""
        assert dataset.reference is not None
        if dataset.reference.model is not None:
            return dataset.reference.model
        if dataset.model is not None:
            return dataset.model
        return self.models[0].name

    @model_validator(mode="after")
    def _references_name_a_model(self) -> Study:
        names = [m.name for m in self.models]
        for i, dataset in enumerate(self.datasets):
            reference = dataset.reference
            if reference is None:
                continue
            if reference.model is None and dataset.model is None and len(names) > 1:
                raise ValueError(
                    f"datasets[{i}].reference.model: the study has several models "
                    f"({', '.join(names)}); name the one the curves are of"
                )
            if reference.model is not None and reference.model not in names:
                raise ValueError(
                    f"datasets[{i}].reference.model: {reference.model!r} is not declared in "
                    f"[[models]] (declared: {', '.join(names)})"
                )
        return self

    @model_validator(mode="after")
    def _cell_fits(self) -> Study:
        counts: tuple[tuple[Literal["datasets", "models"], int], ...] = (
            ("datasets", len(self.datasets)),
            ("models", len(self.models)),
        )
        for key, declared in counts:
            positions = self.study.cell.get(key)
            if positions is not None and len(positions) != declared:
                raise ValueError(
                    f"study.cell.{key}: {len(positions)} positions for {declared} {key}"
                )
        return self

    @model_validator(mode="after")
    def _probe_fits(self) -> Study:
        k = self.probe.samples
        if k == 0:
            return self
        names = [model.name for model in self.models]
        if self.probe.model is not None and self.probe.model not in names:
            raise ValueError(
                f"probe.model: {self.probe.model!r} is not declared in [[models]] "
                f"(declared: {', '.join(names)})"
            )
        if k > max(self.actions.samples):
            raise ValueError(
                f"probe.samples: a probe of {k} is more than the largest action "
                f"(b = {max(self.actions.samples)}): no action could follow it"
            )
        if k > self.estimation.samples_per_instance:
            raise ValueError(
                f"probe.samples: a probe of {k} is more than the "
                f"{self.estimation.samples_per_instance} stored samples of an instance"
            )
        return self

    @property
    def probe_model(self) -> str | None:
        """The model the probe samples (None without a probe)."""
        if self.probe.samples == 0:
            return None
        return self.probe.model or self.models[0].name

    def config_hash(self) -> str:
        """A short, stable hash of the validated config (field order and defaults resolved)."""
        canonical = json.dumps(self.model_dump(mode="json", exclude={"engine"}), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def with_engine(study: Study, url: str) -> Study:
    """``study`` with its ``[engine] url`` replaced (checked like the study file's)."""
    try:
        engine = EngineSpec.model_validate({**study.engine.model_dump(), "url": url})
    except ValidationError as error:
        raise StudyError(f"--engine: {error.errors()[0]['msg']}") from None
    return study.model_copy(update={"engine": engine})


def _format_location(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            # pydantic adds the validator's name to some locations; drop the function-call noise
            if part.startswith("function-") or part.endswith("]"):
                continue
            text += f".{part}" if text else part
    return text or "(top level)"


_FIELD_PREFIX = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\])?)*: ")
"""A message that opens with the field it is about."""


def parse_study(data: dict, source: str = "<study>", base_dir: Path | None = None) -> Study:
    """Validate a parsed study document. Raises StudyError naming the file and each field.

    Relative data paths (``datasets[].path``) resolve against ``base_dir``, the study file's
    folder."""
    try:
        return Study.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as error:
        lines = []
        for item in error.errors():
            where = _format_location(item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            if not item["loc"] and _FIELD_PREFIX.match(message):
                # a check across sections names its own field ("models[0].accuracy: ...")
                where, _, message = message.partition(": ")
            given = item.get("input")
            shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
            if shown and f"got {given!r}" in message:  # the message shows the value already
                shown = ""
            if item["type"] == "extra_forbidden":
                message = "unknown key"
            lines.append(f"  {where}: {message}{shown}")
        raise StudyError(f"{source}: invalid study file\n" + "\n".join(lines)) from None


def load_study(path: str | Path) -> Study:
    """Read and validate a TOML study file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise StudyError(f"{path}: cannot read study file: {error.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # TOML is UTF-8; a byte-order mark is tolerated
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise StudyError(
            f"{path}: line {line}: not UTF-8 (byte {raw[error.start]:#04x} at offset "
            f"{error.start}); save the study file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise StudyError(f"{path}: not valid TOML: {error}") from None
    return parse_study(data, str(path), base_dir=path.parent)


def default_study_path() -> Path:
    """The built-in default study: MATH-like data, the Qwen2.5-7B preset, b in {1..16}."""
    from toolkit.resources import studies_dir

    return studies_dir() / "default.toml"
