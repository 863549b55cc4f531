"""What an imported dataset's files hold: the file formats, and the tables of a ``[[datasets]]``
entry that name a file's columns (``columns``, ``models``, ``metadata``, ``features``) or declare
published curves (``reference``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from toolkit.config.base import Name, _SparseSection, _StudyRelativePath

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
        known = " | ".join(get_args(FileFormat))
        raise ValueError(
            f"format: cannot tell the format of {path!r} from its extension; "
            f"declare format = {known}"
        )


class ColumnMap(_SparseSection):
    """``[datasets.columns]``: which column of the file (the key, for ``json_columns``) holds
    what. Which keys each source needs or accepts: see ``DatasetTable``."""

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


class MetadataSpec(_SparseSection, _StudyRelativePath):
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

    @model_validator(mode="after")
    def _format_known(self) -> MetadataSpec:
        _check_format(self.path, self.format)
        return self

    @property
    def read_as(self) -> FileFormat:
        """The format the file is read as: ``format``, declared or known from the extension
        (a file of neither is refused)."""
        assert self.format is not None  # _format_known
        return self.format


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


class ReferenceSpec(_StudyRelativePath):
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
