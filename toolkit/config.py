"""The declarative study file: TOML validated into frozen, typed config objects.

Every error names the file and the field (``datasets[0].instances``), so a user can fix a study
file without reading code. Nothing is connected or written before a study validates.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from toolkit.errors import StudyError
from toolkit.presets import DATASET_PRESETS, MODEL_PRESETS, ModelPreset

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]

POLICY_NAMES = (
    "oracle",
    "uniform",
    "best_fixed",
    "always",
    "random",
    "prompt_length",
    "difficulty_bins",
    "learned",
)
"""Policy families a study can compare (``toolkit.evaluate.expand_policies`` says what each
becomes): ``always`` is one ``always_<model>`` row per model, ``learned`` its deployments."""


class _Section(BaseModel):
    # every number finite: inf and nan are refused with the field named, whatever its bounds
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class StudyInfo(_Section):
    """``[study]``: what the study is called and the seed everything derives from."""

    name: Name
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    description: str = ""
    separately: list[Literal["dataset", "model"]] = []
    """Allocate each dataset (``["dataset"]``), each model, or each pair of them on its own, as
    the paper does: one run per cell (``Study.cells``), all landing in one transaction; empty
    (the default): one run, one budget shared by every dataset and model."""

    cell: dict[Literal["datasets", "models"], list[Annotated[int, Field(ge=0)]]] = {}
    """Set by ``Study.cells`` on each cell: the positions of its datasets and models in the
    study it was split from (``{datasets = [1], models = [2]}``). The simulator keys its random
    streams by these positions, so a cell draws the questions and answers its datasets and
    models draw in the whole study (the same questions for every model of a dataset, independent
    samples per model; the features and token counts follow the cell's first model's view of
    difficulty), and a cell's stored config reruns to the same tables."""

    @field_validator("separately")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"separately names a key twice: {value}")
        return value

    @model_validator(mode="after")
    def _a_cell_is_not_split(self) -> StudyInfo:
        if self.cell and self.separately:
            raise ValueError("separately: a cell of a split study (study.cell) is not split again")
        return self

    @model_serializer(mode="wrap")
    def _without_default_cells(self, handler: SerializerFunctionWrapHandler) -> dict:
        """A study run as one (``separately = []``, no ``cell``) dumps as before the keys
        existed, so its config hash is unchanged."""
        dumped = handler(self)
        for key in ("separately", "cell"):
            if not getattr(self, key):
                dumped.pop(key, None)
        return dumped


FileFormat = Literal["csv", "jsonl", "json", "parquet", "json_columns"]
ColumnName = Annotated[str, Field(min_length=1)]

FORMAT_BY_SUFFIX: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
"""File formats known from the extension; any other file declares ``format``."""


def _fill_format(data: object) -> object:
    """Before validation: ``format`` from the path's extension when the study file omits it."""
    if isinstance(data, dict) and "format" not in data and isinstance(data.get("path"), str):
        inferred = FORMAT_BY_SUFFIX.get(Path(data["path"]).suffix.lower())
        if inferred is not None:
            return {**data, "format": inferred}
    return data


def _check_format(path: str | None, file_format: str | None) -> None:
    if path is not None and file_format is None:
        known = " | ".join(FileFormat.__args__)
        raise ValueError(
            f"format: cannot tell the format of {path!r} from its extension; "
            f"declare format = {known}"
        )


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """A relative data path is relative to the study file's folder (``base_dir`` in the
    validation context, set by ``load_study``) and is stored absolute, so the saved config says
    which file was read. Without that context it stays relative to the working directory."""
    path = Path(value).expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base_dir is not None:
        path = (Path(base_dir) / path).resolve()
    return str(path)


class _SparseSection(_Section):
    """A section whose unset optional keys (None) stay out of dumps and the config hash."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict:
        return {key: value for key, value in handler(self).items() if value is not None}


class ColumnMap(_SparseSection):
    """``[datasets.columns]``: which column of the file (the key, for ``json_columns``) holds
    what. Which keys each source needs or accepts: see ``DatasetSpec``."""

    id: ColumnName
    model: ColumnName | None = None
    sample: ColumnName | None = None
    answer: ColumnName | None = None
    correct: ColumnName | None = None
    reference: ColumnName | None = None
    tokens: ColumnName | None = None
    response: ColumnName | None = None
    prompt_tokens: ColumnName | None = None
    cost: ColumnName | None = None
    n: ColumnName | None = None
    n_correct: ColumnName | None = None
    b: ColumnName | None = None
    accuracy: ColumnName | None = None
    known_cost: ColumnName | None = None
    text: ColumnName | None = None
    score: ColumnName | None = None
    check: ColumnName | None = None


class ModelColumns(_SparseSection):
    """``[datasets.models.<model>]`` (``source = "wide"``): one model's columns: ``correct``
    (its answer is right), optionally ``response`` (its text; tokens are counted from it) or
    ``tokens`` (its output tokens), ``cost`` (the dollars its answer cost, as logged),
    ``answer`` (its final answer, compared as text across the models: what an ``agreement``
    cascade compares) and ``check`` (a deployable check's verdict on its answer, a flag: what a
    cascade's ``until_verified`` escalates on)."""

    correct: ColumnName
    answer: ColumnName | None = None
    response: ColumnName | None = None
    tokens: ColumnName | None = None
    cost: ColumnName | None = None
    check: ColumnName | None = None

    @model_validator(mode="after")
    def _one_token_source(self) -> ModelColumns:
        if self.response is not None and self.tokens is not None:
            raise ValueError("declare response or tokens, not both")
        return self


class MetadataColumns(_SparseSection):
    """``[datasets.metadata.columns]``: ``id`` (joins the dataset's ids), optional ``text`` (the
    question), ``level`` (an integer, or text ending in one: "Level 3") and ``subject``."""

    id: ColumnName
    text: ColumnName | None = None
    level: ColumnName | None = None
    subject: ColumnName | None = None


class MetadataSpec(_SparseSection):
    """``[datasets.metadata]``: a file of instance metadata and question text, joined to the
    dataset by id. Every id of the dataset needs a row there; rows of other ids are ignored."""

    path: str
    format: FileFormat | None = None
    columns: MetadataColumns
    id_offset: Annotated[int, Field(ge=-(10**9), le=10**9)] | None = None
    """Added to the metadata file's (whole-number) ids before they are matched to the
    dataset's: a puzzle file ranked from 1 (``Rank``) joins a log indexed from 0 with -1."""

    @model_validator(mode="before")
    @classmethod
    def _infer_format(cls, data: object) -> object:
        return _fill_format(data)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)

    @model_validator(mode="after")
    def _format_known(self) -> MetadataSpec:
        _check_format(self.path, self.format)
        return self


FeatureKind = Literal["numeric", "categorical"]


class FeatureColumn(_SparseSection):
    """``[datasets.features.<name>]``: a per-instance feature the log or its metadata file
    carries (a human solve rate, a difficulty label), given to the learned policy as
    ``<name>``. ``column`` is the column (or path, as in ``columns``) in ``file`` (``log``, the
    dataset's own file, or ``metadata``); ``kind`` is ``numeric`` (numbers, or numeric text,
    ``"99.2%"`` read as 0.992) or ``categorical`` (any value, as text)."""

    column: ColumnName
    kind: FeatureKind = "numeric"
    file: Literal["log", "metadata"] = "log"


_DESCRIBED = ("benchmark", "reference")
"""Keys describing where a file's questions come from, accepted by every file source."""
_SOURCE_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # source: (required keys, accepted keys), besides name and source
    "simulate": ({"preset"}, {"preset", "instances"}),
    "samples": (
        {"path", "columns"},
        {
            "path",
            "format",
            "model",
            "columns",
            "metadata",
            "prompt_overhead_tokens",
            "features",
            *_DESCRIBED,
        },
    ),
    "counts": (
        {"path", "columns"},
        {"path", "format", "model", "columns", "metadata", "features", *_DESCRIBED},
    ),
    "wide": (
        {"path", "columns", "models"},
        {
            "path",
            "format",
            "columns",
            "models",
            "metadata",
            "prompt_overhead_tokens",
            "features",
            *_DESCRIBED,
        },
    ),
    "outcomes": (
        {"path", "columns"},
        {"path", "format", "model", "columns", "metadata", "features", *_DESCRIBED},
    ),
}
_SOURCE_COLUMNS: dict[str, tuple[set[str], set[str]]] = {
    # source: (required column keys, accepted column keys)
    "samples": (
        {"id"},
        {
            "id",
            "model",
            "sample",
            "answer",
            "correct",
            "reference",
            "tokens",
            "response",
            "prompt_tokens",
            "cost",
            "text",
            "score",
            "check",
        },
    ),
    "counts": ({"id", "n", "n_correct"}, {"id", "model", "n", "n_correct", "text"}),
    "wide": ({"id"}, {"id", "text", "prompt_tokens"}),
    "outcomes": (
        {"id", "b", "accuracy"},
        {"id", "model", "b", "accuracy", "cost", "known_cost", "text"},
    ),
}


class ReferenceSpec(_Section):
    """``[datasets.reference]``: published curves of one model on the same questions, for a
    cross-check in the report (``toolkit.reference``): a JSON file (``path``, relative to the
    study file) and the dotted keys of its lists: ``b`` (the sample counts), ``coverage``
    (pass@b at each) and optional ``majority`` (the majority vote's accuracy at each);
    ``source`` says where the curves are from, ``model`` whose they are."""

    path: str
    b: ColumnName
    coverage: ColumnName
    majority: ColumnName | None = None
    source: str = ""
    model: Name | None = None
    """The model the curves are of: by default the dataset's (``datasets.model``), or the
    study's one model; a dataset of several models names it."""

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)


class DatasetSpec(_SparseSection):
    """``[[datasets]]``: one source of instances.

    ``source = "simulate"`` draws ``instances`` instances from a built-in dataset preset
    (``math``: MATH-like, levels 1..5 and 7 subjects; ``gsm8k``: GSM8K-like, difficulty by the
    number of reasoning steps).

    The other sources import a user's evaluation log (``toolkit.ingest`` documents the formats)
    from ``path`` (relative to the study file, or absolute), read by DuckDB as ``format``
    (``csv`` | ``jsonl`` | ``parquet``, known from the extension, or ``json_columns``: one JSON
    object whose keys hold parallel arrays). ``columns`` maps roles to the file's columns:

    - ``samples``: one row per sampled answer: ``id``; the model from ``columns.model``, or one
      ``model`` for the whole file; optional ``sample`` (numbered in file order if absent);
      ``correct`` (a flag) or ``reference`` (correct when the answer equals it); optional
      ``answer`` (coded per instance, needed for majority votes); optional ``tokens`` or
      ``response`` (output tokens, or counted from the text); optional ``prompt_tokens`` (the
      prompt's tokens as the log recorded them) and ``cost`` (the sample's dollar cost as
      logged); optional ``text`` (the question); optional ``score`` (a reward model's or
      verifier's score of the sample, higher is better; needed for best-of-b); optional
      ``check`` (a flag: a deployable check's verdict on the sample, a format, unit-test or
      self-verification check that can be wrong; ``until_verified`` stops at the first
      sample that passes it instead of at the first correct one).
    - ``counts``: one row per instance and model: ``id``, the model as above, ``n`` samples of
      which ``n_correct`` are correct; optional ``text``.
    - ``wide``: one row per instance with one set of columns per model (routing logs): ``id``,
      optional ``text`` and ``prompt_tokens``, and a ``[datasets.models.<model>]`` table per
      model (``ModelColumns``).
    - ``outcomes``: outcomes already estimated, one row per instance and action: ``id``, the
      model as above, ``b`` (one of ``actions.samples``), ``accuracy`` (in [0, 1]), ``cost``
      (in ``actions.cost``; b when counting samples) and optional ``known_cost`` (the part known
      before spending; 0 unless given, all of it when counting samples).

    Column names may be paths into nested values: ``a.b`` (key b of object a), ``a[*].b`` (key
    b of every entry of list a), ``a[0]`` (its first entry). ``features`` declares per-instance
    feature columns (``FeatureColumn``) the learned policy sees.

    ``metadata`` (``MetadataSpec``) joins a file of levels, subjects and question text by id.
    ``prompt_overhead_tokens``: tokens of the prompt around the question (a template, few-shot
    examples) that a prompt length counted from the question text lacks; added to every
    instance's prompt tokens unless the log records them (``columns.prompt_tokens``).

    ``benchmark`` (``math`` | ``gsm8k``) names the public benchmark a file's questions come from
    (a subset counts: MATH-500 is ``math``), so the report sets the run beside the paper's
    figures for it (a simulated dataset's is its preset); ``reference`` (``ReferenceSpec``)
    declares published curves to cross-check the run's against.
    """

    name: Name
    source: Literal["simulate", "samples", "counts", "wide", "outcomes"] = "simulate"
    preset: Literal["math", "gsm8k"] | None = None
    instances: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    path: str | None = None
    format: FileFormat | None = None
    model: Name | None = None
    columns: ColumnMap | None = None
    models: dict[Name, ModelColumns] | None = None
    metadata: MetadataSpec | None = None
    prompt_overhead_tokens: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    features: dict[Name, FeatureColumn] | None = None
    benchmark: Literal["math", "gsm8k"] | None = None
    reference: ReferenceSpec | None = None

    def carries(self, role: Literal["answer", "check", "score"]) -> bool:
        """Whether every sample of the dataset has an ``answer`` (a simulation's have), a
        ``check`` verdict or a ``score``: ``columns.<role>`` of a samples log, or ``<role>`` of
        every model of a wide log."""
        if self.source == "simulate":
            return role == "answer"
        if self.source == "wide":
            return bool(self.models) and all(
                getattr(m, role, None) is not None for m in self.models.values()
            )
        return self.source == "samples" and getattr(self.columns, role, None) is not None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("source", "simulate") == "simulate":
            return {"instances": 5000, **data}
        return _fill_format(data)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)

    @model_validator(mode="after")
    def _keys_match_source(self) -> DatasetSpec:
        given = self.model_fields_set - {"name", "source"}
        required, accepted = _SOURCE_FIELDS[self.source]
        if missing := sorted(required - given):
            raise ValueError(f"source {self.source!r} needs {', '.join(missing)}")
        if extra := sorted(given - accepted):
            raise ValueError(f"{', '.join(extra)}: not used by source {self.source!r}")
        if self.source == "simulate":
            assert self.preset in DATASET_PRESETS
            return self
        _check_format(self.path, self.format)
        self._check_columns()
        return self

    def _check_columns(self) -> None:
        columns = {key for key, value in self.columns if value is not None}
        required, accepted = _SOURCE_COLUMNS[self.source]
        if missing := sorted(required - columns):
            raise ValueError(f"columns: source {self.source!r} needs {', '.join(missing)}")
        if extra := sorted(columns - accepted):
            raise ValueError(
                f"columns.{', columns.'.join(extra)}: not used by source {self.source!r}"
            )
        if self.source != "wide" and (self.model is None) == ("model" not in columns):
            raise ValueError(
                "declare the model as model (one for the whole file) or as "
                "columns.model (a column), exactly one of them"
            )
        if self.source == "samples":
            if ("correct" in columns) == ("reference" in columns):
                raise ValueError("declare columns.correct or columns.reference, exactly one")
            if "reference" in columns and "answer" not in columns:
                raise ValueError("columns.reference needs columns.answer to compare it with")
            if "tokens" in columns and "response" in columns:
                raise ValueError("declare columns.tokens or columns.response, not both")
        if self.prompt_overhead_tokens is not None and "prompt_tokens" in columns:
            raise ValueError(
                "prompt_overhead_tokens: the log records prompt tokens (columns.prompt_tokens); "
                "an overhead would count the template twice"
            )
        for name, feature in (self.features or {}).items():
            if feature.file == "metadata" and self.metadata is None:
                raise ValueError(f"features.{name}: file = 'metadata' needs [datasets.metadata]")
        if self.metadata is not None and "text" in columns and self.metadata.columns.text:
            raise ValueError(
                "the question text comes from columns.text or metadata.columns.text, not both"
            )


class ModelSpec(_Section):
    """``[[models]]``: a model whose samples make up the actions.

    ``preset`` names a built-in model (see ``toolkit.presets``); any other field overrides it.
    ``accuracy`` maps a dataset preset to the overall single-sample accuracy to calibrate to,
    ``output_tokens`` to the mean output tokens of a sample: the simulator's targets. A model
    without a preset needs them only for simulated datasets (``Study`` checks that); for
    imported data a name is enough (and prices, for ``actions.cost = "usd"``).
    """

    name: Name
    preset: str | None = None
    accuracy: dict[str, Annotated[float, Field(gt=0.0, lt=1.0)]] | None = None
    level_slope: Annotated[float, Field(ge=0.0, le=20.0)] | None = None
    difficulty_spread: Annotated[float, Field(gt=0.0, le=20.0)] | None = None
    output_tokens: dict[str, Annotated[float, Field(gt=0.0, le=1_000_000.0)]] | None = None
    """Mean output tokens of one sample: at most 1e6 (token counts are 64-bit; a sample
    longer than any model's context is a typo)."""
    price_input_per_mtok: Annotated[float, Field(ge=0.0, le=1e6)] | None = None
    price_output_per_mtok: Annotated[float, Field(ge=0.0, le=1e6)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_targets_without_preset(cls, data: object) -> object:
        """Without a preset, absent targets are empty mappings (no dataset preset has one):
        the same config, and config hash, as the ``accuracy = {}`` a study once had to write."""
        if isinstance(data, dict) and data.get("preset") is None:
            return {"accuracy": {}, "output_tokens": {}, **data}
        return data

    @model_validator(mode="after")
    def _preset_known(self) -> ModelSpec:
        if self.preset is not None and self.preset not in MODEL_PRESETS:
            known = ", ".join(sorted(MODEL_PRESETS))
            raise ValueError(f"unknown model preset {self.preset!r}; known presets: {known}")
        for field_name in ("accuracy", "output_tokens"):
            unknown = sorted(set(getattr(self, field_name) or {}) - set(DATASET_PRESETS))
            if unknown:  # a typo'd key would be silently ignored
                known = ", ".join(sorted(DATASET_PRESETS))
                raise ValueError(
                    f"{field_name}: {unknown[0]!r} is not a dataset preset; known: {known}"
                )
        return self


class RuleSpec(_Section):
    """``[[actions.rules]]``: a family of stopping rules (adaptive actions, ``toolkit.rules``)
    over each model's stream of samples, one action per parameter value::

        [[actions.rules]]
        rule = "esc"            # stop after a window of w agreeing samples
        window = [2, 4]
        cap = 16                # the most samples it draws

    ``rule``: ``esc`` (``window``, each dividing ``cap``), ``adaptive_consistency``
    (``threshold``: the Beta posterior probability of the leader that stops, in (0.5, 1)),
    ``first_agree`` (``k``: stop when k samples agree) or ``until_verified`` (stop at the
    first sample the verifier accepts: ``aggregation = "pass"`` only). The voting rules answer by
    a majority over what they drew (``aggregation = "majority"`` only). ``models``: which models
    (every model when omitted)."""

    rule: Literal["esc", "adaptive_consistency", "first_agree", "until_verified"]
    cap: Annotated[int, Field(ge=1, le=1024)]
    window: list[Annotated[int, Field(ge=1, le=1024)]] = []
    threshold: list[Annotated[float, Field(gt=0.5, lt=1.0)]] = []
    k: list[Annotated[int, Field(ge=1, le=1024)]] = []
    models: Annotated[list[Name], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _parameters(self) -> RuleSpec:
        wanted = {
            "esc": "window",
            "adaptive_consistency": "threshold",
            "first_agree": "k",
            "until_verified": None,
            "agreement": None,
        }[self.rule]
        for name in ("window", "threshold", "k"):
            values = getattr(self, name)
            if name == wanted and not values:
                raise ValueError(f"{name}: rule {self.rule!r} needs at least one {name}")
            if name != wanted and values:
                raise ValueError(f"{name}: rule {self.rule!r} takes no {name}")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values: {values}")
        for w in self.window:
            if self.cap % w:
                raise ValueError(f"window: w = {w} does not divide cap = {self.cap}")
        for k in self.k:
            if k > self.cap:
                raise ValueError(f"k: k = {k} exceeds cap = {self.cap}")
        return self

    def expand(self) -> list:
        """The family's rules (``toolkit.rules.Rule``), one per parameter value."""
        from toolkit.rules import Rule

        if self.rule == "esc":
            return [Rule("esc", self.cap, window=w) for w in self.window]
        if self.rule == "adaptive_consistency":
            return [Rule(self.rule, self.cap, threshold=t) for t in self.threshold]
        if self.rule == "first_agree":
            return [Rule("first_agree", self.cap, k=k) for k in self.k]
        return [Rule(self.rule, self.cap)]


class CascadeSpec(RuleSpec):
    """``[[actions.cascades]]``: ask models in turn, each with the stopping rule; when the rule
    ends unsure on one (its cap reached without its criterion: no agreement within the cap,
    nothing verified) the next model runs it on its own samples; the last one's answer
    stands (``toolkit.adaptive``). One action per parameter value, named
    ``mixtral-8x7b>gpt-4@agree(k=2,b<=4)``::

        [[actions.cascades]]
        models = ["mixtral-8x7b", "gpt-4"]   # the cheap model first
        rule = "until_verified"
        cap = 1

    ``models``: two or more, distinct, in the order asked. The rule's fields are
    ``[[actions.rules]]``'s; the cascade's rule must be exact (cap at most
    ``toolkit.rules.EXACT_MAX_CAP``, any cap for ``until_verified``).

    ``rule = "agreement"`` (a cascade's own, ``cap = 1``, three models): ask the first two
    models one answer each; when the answers agree that answer stands, else the third model is
    asked and its answer stands (FrugalGPT's cheap-models-agree check, from answers alone).
    Named ``a>b>c@agreement``. It needs the samples' answers (``columns.answer``, or
    ``models.<model>.answer`` for a wide log)."""

    rule: Literal[  # type: ignore[assignment]
        "esc", "adaptive_consistency", "first_agree", "until_verified", "agreement"
    ]
    models: Annotated[list[Name], Field(min_length=2)]  # type: ignore[assignment]

    @model_validator(mode="after")
    def _chain(self) -> CascadeSpec:
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models: a cascade asks each model once, got {self.models}")
        if self.rule == "agreement":
            if self.cap != 1:
                raise ValueError(
                    f"cap: an agreement cascade asks one answer per model, not {self.cap}"
                )
            if len(self.models) != 3:
                raise ValueError(
                    "models: an agreement cascade asks two models and, when they disagree, a "
                    f"third (got {len(self.models)}; with two, the second's answer always "
                    "stands at both models' price)"
                )
            return self
        from toolkit.rules import EXACT_MAX_CAP  # numpy and scipy: only for cascades

        if self.rule != "until_verified" and self.cap > EXACT_MAX_CAP:
            raise ValueError(
                f"cap: a cascade's rule is estimated exactly, up to a cap of {EXACT_MAX_CAP} "
                f"(got {self.cap})"
            )
        return self


class ActionSpec(_Section):
    """``[actions]``: the action set is every model times every sample count ``b``.

    ``aggregation``: ``majority`` (majority vote over b samples, ties broken uniformly at
    random), ``pass`` (pass@b: correct if any of the b samples is, an oracle verifier) or
    ``best_of`` (best-of-b: the answer of the highest-scored of the b samples by their
    ``columns.score``, a reward model or verifier score, ties broken uniformly at random) or
    ``weighted`` (the score-weighted vote: the answer whose samples' scores add up to the most,
    ``toolkit.scores``).
    ``cost``: the unit of cost and of budgets: ``samples`` (b), ``tokens`` (the prompt's
    tokens, billed once, plus the expected output tokens of b samples) or ``usd`` (the same
    tokens times the model's prices, or the logged dollar cost of b samples).
    ``prompt``: whether b samples pay for the prompt ``once`` (one request asking for b
    completions, or a shared prefix cache) or once ``per_sample`` (b separate requests).
    ``fixed_cost``: added to every action's cost, in the unit of ``cost``, and known before
    spending (a verifier call, a per-request fee).
    """

    samples: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 2, 4, 8, 16]
    aggregation: Literal["majority", "pass", "best_of", "weighted"] = "majority"
    cost: Literal["samples", "tokens", "usd"] = "samples"
    prompt: Literal["once", "per_sample"] = "once"
    fixed_cost: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    score_weights: Literal["score", "sigmoid"] = "score"
    """``weighted``: each sample's vote weight is its score (none may be negative), or the
    logistic of it (scores that are logits, ``toolkit.scores``)."""
    rules: list[RuleSpec] = []
    """Adaptive actions: stopping rules (``RuleSpec``), besides the static b samples."""
    cascades: list[CascadeSpec] = []
    """Adaptive actions across models (``CascadeSpec``)."""

    @model_validator(mode="after")
    def _distinct(self) -> ActionSpec:
        if len(set(self.samples)) != len(self.samples):
            raise ValueError(f"samples has repeated values: {self.samples}")
        for index, spec in enumerate([*self.rules, *self.cascades]):
            voting = spec.rule not in ("until_verified", "agreement")
            if voting and self.aggregation != "majority":
                raise ValueError(
                    f"rules[{index}].rule: {spec.rule!r} answers by a majority vote; it needs "
                    f'aggregation = "majority", not {self.aggregation!r}'
                )
        return self


class EstimationSpec(_Section):
    """``[estimation]``: how acc(x, a) is estimated from the stored samples.

    ``samples_per_instance`` answers are drawn per instance and model (48 in the paper); the
    accuracy of an action is the exact probability over draws without replacement of ``b`` of
    them (``method = "exact"``).
    """

    samples_per_instance: Annotated[int, Field(ge=1, le=100_000)] = 48
    method: Literal["exact"] = "exact"
    orders: Annotated[int, Field(ge=2, le=1_000_000)] = 2000
    """Stopping rules above ``toolkit.rules.EXACT_MAX_CAP``: the random orders of each
    instance's samples their seeded Monte Carlo runs (standard errors in ``outcomes``)."""
    tokenizer: Literal["cl100k_base", "o200k_base", "approx"] = "cl100k_base"
    """How tokens are counted from text where a log records none (prompts, responses):
    ``cl100k_base`` (GPT-4's BPE) or ``o200k_base`` (GPT-4o's), exact for those models and a
    close proxy for other BPE vocabularies (``toolkit.tokens``), or ``approx``, the regular
    expression of ``sql/features/approx_tokens.sql``, kept as a fallback."""


class SimulationSpec(_Section):
    """``[simulation]``: the simulator's knobs.

    ``wrong_answers``: distinct wrong answers per instance; ``wrong_concentration``: Dirichlet
    concentration of the wrong-answer mass (small: one dominant wrong answer, so a majority vote
    locks onto it on hard instances); ``feature_strength``: correlation of the cheap observable
    features with the latent difficulty; ``signal_noise``: noise sd of each declared noisy
    difficulty signal. (The probe is ``[probe]``: it reuses stored samples and is charged.)
    """

    wrong_answers: Annotated[int, Field(ge=1, le=32)] = 4
    wrong_concentration: Annotated[float, Field(gt=0.0, le=1000.0)] = 0.3
    feature_strength: Fraction = 0.5
    signal_noise: list[Annotated[float, Field(gt=0.0, le=100.0)]] = [0.75, 1.5]

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict) and "probe_samples" in data:
            raise ValueError(
                "probe_samples: the probe moved to [probe] samples = k: it now takes k of the "
                "stored samples, which policies that see it pay for (toolkit.probe)"
            )
        return data


class ProbeSpec(_Section):
    """``[probe]``: a cheap look at every instance before allocating (``toolkit.probe``).

    ``samples = k``: the first k of each instance's stored samples of ``model`` (the first model
    when omitted), in a seeded order; 0, no probe. Policies that see the probe
    (``learned_probe``, ``oracle_probe``) choose among the probe's actions: b >= k samples of the
    probe model, the probe's reused, or another model's action after it; each costs the probe
    too."""

    samples: Annotated[int, Field(ge=0, le=1024)] = 0
    model: Name | None = None


class SplitSpec(_Section):
    """``[split]``: how instances are split, by instance and seeded, each dataset alike.

    ``folds = 1`` (the default): one split into ``train``, ``validation`` and ``test`` in the
    declared fractions. ``folds = k >= 2`` (cross-fitting, for small data): the instances are
    cut into k folds; each fold is the test split once, and the other folds are divided into
    train and validation in the proportion ``train : validation``, so every instance is scored
    exactly once by policies that never saw it. ``test`` is then 1/k and is not declared.
    """

    train: Fraction = 0.6
    validation: Fraction = 0.2
    test: Fraction = 0.2
    folds: Annotated[int, Field(ge=1, le=50)] = 1

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        if self.folds > 1:
            if "test" in self.model_fields_set:
                raise ValueError(
                    f"test: with folds = {self.folds} each fold is the test split once "
                    f"(1/{self.folds} of the instances); leave test out"
                )
            if min(self.train, self.validation) <= 0:
                raise ValueError("train and validation need positive fractions")
            return self
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        if min(self.train, self.validation, self.test) <= 0:
            raise ValueError("every split needs a positive fraction")
        return self

    @model_serializer(mode="wrap")
    def _without_test_when_folded(self, handler: SerializerFunctionWrapHandler) -> dict:
        """With folds the test share is 1/k, not a setting: a dump leaves it out, so that it
        validates again (and the config hash does not depend on an unused default)."""
        dumped = handler(self)
        if self.folds > 1:
            dumped.pop("test", None)
        return dumped

    @property
    def train_share(self) -> float:
        """The share of a fold's training instances (train and validation) used for training."""
        return self.train / (self.train + self.validation)


class BudgetSpec(_Section):
    """``[budgets]``: target mean cost per instance, in the unit of ``actions.cost``.

    ``values``: the budgets every table and the report are about. ``grid``: how many more
    budgets, spaced geometrically over the feasible range, every policy is also run at, so that
    each has an accuracy-versus-realised-cost curve (matched-spend comparisons, AIQ).
    ``tolerance``: a policy whose realised mean cost exceeds B by more than this fraction is
    flagged as over budget and ranked after those within it.
    """

    values: Annotated[
        list[Annotated[float, Field(gt=0.0, allow_inf_nan=False)]], Field(min_length=1)
    ] = [2.0, 4.0, 8.0]
    grid: Annotated[int, Field(ge=0, le=400)] = 24
    tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02

    @model_validator(mode="after")
    def _distinct(self) -> BudgetSpec:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values has repeated budgets: {self.values}")
        return self


class PolicySpec(_Section):
    """``[policies]``: which allocation policies to compare at every budget."""

    compare: Annotated[list[Literal[POLICY_NAMES]], Field(min_length=1)] = list(  # type: ignore[valid-type]
        POLICY_NAMES
    )


class LearnSpec(_Section):
    """``[learn]``: CatBoost settings for the learned policy."""

    iterations: Annotated[int, Field(ge=1, le=100_000)] = 300
    depth: Annotated[int, Field(ge=1, le=10)] = 6
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    thread_count: Annotated[int, Field(ge=1, le=64)] = 2
    seeds: Annotated[list[Annotated[int, Field(ge=0, lt=2**31)]], Field(min_length=1)] = [0, 1, 2]
    features: Annotated[
        list[Literal["metadata", "text_counts", "text", "signals", "probe", "declared"]],
        Field(min_length=1),
    ] = ["metadata", "text_counts", "text", "signals", "probe", "declared"]
    """The feature groups the learned policy (and the cost planner) see (``toolkit.features``):
    to measure what each group is worth, leave it out."""
    max_train_rows: PositiveInt = 50_000
    """At most this many training instances are pulled from the engine for CatBoost (a seeded
    sample beyond it), so learning stays bounded in time and memory at any N. A fit's time
    grows with its rows (about 30 s per fit at 200,000 rows, 8 actions, 100 iterations on 2
    cores), while the policy's quality is limited by the features, not by rows: a regressor
    fitted on 60,000 instances kept the same share of the oracle's gain as one fitted on 3,000
    (``toolkit.learn``)."""

    @model_validator(mode="after")
    def _distinct_seeds(self) -> LearnSpec:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds has repeated values: {self.seeds}")
        return self


class EngineSpec(_Section):
    """``[engine]``: where the core queries run (``toolkit.db``). Results do not depend on it,
    so it is not part of the config hash: the same study on another engine replaces its run."""

    url: str = "duckdb"
    """``duckdb`` (the study's DuckDB file) or ``pyspark://MASTER``, e.g. ``pyspark://local[2]``
    or ``pyspark://spark://host:7077``."""
    memory_limit: str | None = None
    """DuckDB's memory limit, e.g. ``"4GB"``; beyond it DuckDB spills to ``study.duckdb.tmp/``."""
    spark_config: dict[str, str] = {}
    """Spark settings for the session the toolkit starts, e.g. ``spark.driver.memory``."""

    @field_validator("url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from toolkit.engine_url import parse_engine_url  # not toolkit.db: no DuckDB, ibis

        parse_engine_url(value)
        return value

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", value
        ):
            raise ValueError(f"expected a size such as '4GB' or '512MiB', got {value!r}")
        return value


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
        names = {model.name for model in self.models}
        logged = [i for i, d in enumerate(self.datasets) if d.source == "outcomes"]
        if (self.actions.rules or self.actions.cascades) and logged:
            raise ValueError(
                f"actions.rules: a stopping rule runs over stored samples, and datasets"
                f"[{logged[0]}] logs outcomes only (source = 'outcomes')"
            )
        for field, specs in (("rules", self.actions.rules), ("cascades", self.actions.cascades)):
            self._rules_fit(field, specs, stored, names)
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
        needs = {"until_verified": "check", "agreement": "answer"}
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
        for key, declared in (("datasets", self.datasets), ("models", self.models)):
            positions = self.study.cell.get(key)
            if positions is not None and len(positions) != len(declared):
                raise ValueError(
                    f"study.cell.{key}: {len(positions)} positions for {len(declared)} {key}"
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


def resolve_model(spec: ModelSpec) -> ModelPreset:
    """The model's preset with the study file's overrides applied."""
    base = MODEL_PRESETS[spec.preset] if spec.preset else None
    overrides = {
        key: value
        for key, value in spec.model_dump(exclude={"name", "preset"}).items()
        if value is not None
    }
    if base is None:
        return ModelPreset(
            name=spec.name,
            accuracy=overrides.pop("accuracy"),
            output_tokens=overrides.pop("output_tokens"),
            price_input_per_mtok=overrides.pop("price_input_per_mtok", 0.0),
            price_output_per_mtok=overrides.pop("price_output_per_mtok", 0.0),
            **overrides,
        )
    merged = {**base.__dict__, "name": spec.name}
    for key in ("accuracy", "output_tokens"):
        if key in overrides:
            merged[key] = {**base.__dict__[key], **overrides.pop(key)}
    merged.update(overrides)
    return ModelPreset(**merged)
