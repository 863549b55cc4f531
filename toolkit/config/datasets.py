"""A ``[[datasets]]`` entry: the table the study file writes (``DatasetTable``, every key any
source takes, checked against its ``source``) and what parsing makes of it, one typed spec per
source (``DatasetSpec``: ``SimulatedSpec``, ``SamplesSpec``, ``CountsSpec``,
``WideSpec``, ``OutcomesSpec``), whose keys the source requires are not optional."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_serializer,
    model_validator,
)

from toolkit.config.base import Name, _SparseSection, _StudyRelativePath
from toolkit.config.columns import (
    ColumnMap,
    FeatureColumn,
    FileFormat,
    MetadataSpec,
    ModelColumns,
    ReferenceSpec,
    _check_format,
    _fill_format,
)
from toolkit.presets import DATASET_PRESETS

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


class DatasetTable(_SparseSection, _StudyRelativePath):
    """``[[datasets]]``: one source of instances, as the study file writes it (every key any
    source takes, checked against its ``source``); parsing makes it the source's typed spec
    (``DatasetSpec``).

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

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("source", "simulate") == "simulate":
            return {"instances": 5000, **data}
        return _fill_format(data)

    @model_validator(mode="after")
    def _keys_match_source(self) -> DatasetTable:
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
        assert self.columns is not None  # every file source needs it (_SOURCE_FIELDS)
        self._check_columns(self.columns)
        return self

    def _check_columns(self, given: ColumnMap) -> None:
        columns = {key for key, value in given if value is not None}
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


Role = Literal["answer", "check", "score"]
"""What a dataset's samples may carry besides the correct flag (``DatasetSpec.carries``)."""


class _DatasetBase(_SparseSection):
    """What every kind of dataset has: its name."""

    name: Name

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict:
        """Dumped as the table it was parsed from: its keys in the table's order, unset ones
        (None) left out, so the config hash is the table's."""
        dumped = handler(self)
        return {
            key: dumped[key] for key in DatasetTable.model_fields if dumped.get(key) is not None
        }


class SimulatedSpec(_DatasetBase):
    """``source = "simulate"``: ``instances`` instances drawn from a dataset preset. The keys of
    an imported dataset that every dataset is asked for are None here: a simulation has no
    file's model (every declared model answers), metadata, declared features, prompt overhead
    or reference curves."""

    source: Literal["simulate"] = "simulate"
    preset: Literal["math", "gsm8k"]
    instances: int
    model: None = None
    metadata: None = None
    features: None = None
    prompt_overhead_tokens: None = None
    reference: None = None

    def carries(self, role: Role) -> bool:
        """Whether every sample has the role: a simulation's samples have answers only."""
        return role == "answer"


class _FileSpec(_DatasetBase):
    """What every imported dataset has: its file, format and columns, and the optional
    metadata file, declared features, benchmark and reference curves."""

    path: str
    format: FileFormat
    columns: ColumnMap
    metadata: MetadataSpec | None = None
    features: dict[Name, FeatureColumn] | None = None
    benchmark: Literal["math", "gsm8k"] | None = None
    reference: ReferenceSpec | None = None

    def carries(self, role: Role) -> bool:
        """Whether every sample of the dataset has an ``answer``, a ``check`` verdict or a
        ``score``: ``columns.<role>`` of a samples log, or ``<role>`` of every model of a wide
        log; counts and outcomes carry none."""
        return False

    def logs_cost(self) -> bool:
        """Whether the log records every sample's dollar cost."""
        return False

    def logs_tokens(self) -> bool:
        """Whether the log records (or holds the text to count) every sample's output tokens."""
        return False

    @property
    def text_column(self) -> str | None:
        """The column of the question text: the log's (``columns.text``) or the metadata's."""
        if self.columns.text is not None:
            return self.columns.text
        if self.metadata is not None:
            return self.metadata.columns.text
        return None


class SamplesSpec(_FileSpec):
    """``source = "samples"``: one row per sampled answer."""

    source: Literal["samples"]
    model: Name | None = None
    prompt_overhead_tokens: int | None = None

    def carries(self, role: Role) -> bool:
        return getattr(self.columns, role) is not None

    def logs_cost(self) -> bool:
        return self.columns.cost is not None

    def logs_tokens(self) -> bool:
        return self.columns.tokens is not None or self.columns.response is not None


class CountsSpec(_FileSpec):
    """``source = "counts"``: one row per instance and model, its samples and correct ones."""

    source: Literal["counts"]
    model: Name | None = None
    prompt_overhead_tokens: None = None


class WideSpec(_FileSpec):
    """``source = "wide"``: one row per instance, one set of columns per model (``models``);
    no one model for the file."""

    source: Literal["wide"]
    models: dict[Name, ModelColumns]
    model: None = None
    prompt_overhead_tokens: int | None = None

    def carries(self, role: Role) -> bool:
        return bool(self.models) and all(
            getattr(m, role, None) is not None for m in self.models.values()
        )

    def logs_cost(self) -> bool:
        return all(m.cost is not None for m in self.models.values())

    def logs_tokens(self) -> bool:
        return all(m.tokens is not None or m.response is not None for m in self.models.values())


class OutcomesSpec(_FileSpec):
    """``source = "outcomes"``: outcomes already estimated, one row per instance and action."""

    source: Literal["outcomes"]
    model: Name | None = None
    prompt_overhead_tokens: None = None


ImportedSpec: TypeAlias = SamplesSpec | CountsSpec | WideSpec | OutcomesSpec
"""An imported dataset, of any file source."""

_KINDS: dict[str, type[SimulatedSpec | ImportedSpec]] = {
    "simulate": SimulatedSpec,
    "samples": SamplesSpec,
    "counts": CountsSpec,
    "wide": WideSpec,
    "outcomes": OutcomesSpec,
}


def _parsed(
    value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> SimulatedSpec | ImportedSpec:
    """A ``[[datasets]]`` table validated (``DatasetTable``: its errors, located in the study
    file as ever) and made its source's spec; a spec already parsed stays as it is. (The
    union's own validation, ``handler``, is not used: the table's checks are the ones.)"""
    if isinstance(value, SimulatedSpec | SamplesSpec | CountsSpec | WideSpec | OutcomesSpec):
        return value
    table = DatasetTable.model_validate(value, context=info.context)
    kind = _KINDS[table.source]
    given = {key: getattr(table, key) for key in kind.model_fields}
    return kind.model_construct(**{key: v for key, v in given.items() if v is not None})


DatasetSpec: TypeAlias = Annotated[SimulatedSpec | ImportedSpec, WrapValidator(_parsed)]
"""``[[datasets]]``: one source of instances, typed by its ``source`` (``DatasetTable``
documents the keys of each)."""
