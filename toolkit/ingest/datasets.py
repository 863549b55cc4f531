"""The ingest stage: every imported dataset of a study read, checked and made the rows to append
(``ingest``), one dataset at a time on a scratch in-memory DuckDB, nothing written anywhere."""

from __future__ import annotations

from pathlib import Path

import duckdb

from toolkit.config import ImportedSpec, MetadataSpec, Study, WideSpec
from toolkit.config.imports import check_imports
from toolkit.ingest.checks import (
    _check_at_most,
    _check_coverage,
    _check_joined,
    _check_models,
    _check_outcome_rows,
    _check_samples_per_instance,
    _check_unique,
    _offset_ids,
)
from toolkit.ingest.files import Kind, _File, _metadata_kinds, _Role
from toolkit.ingest.rows import (
    DeclaredFeatures,
    ImportedDataset,
    _empty_samples,
    _feature_role,
    _instances,
    _outcome_rows,
    _samples,
)
from toolkit.ingest.values import _load
from toolkit.tokens import register_token_counter

_CHECKED_AS = {"check": "verified"}
"""Roles stored in the checked table under another name: ``check`` is an SQL keyword."""


def ingest(study: Study) -> list[ImportedDataset]:
    """Read and check every imported dataset of a study; nothing is written anywhere.

    Raises StudyError at the first problem, naming the file, row and column."""
    specs = check_imports(study)
    con = duckdb.connect()
    try:
        register_token_counter(con, study.estimation.tokenizer)
        datasets, first_id = [], 0
        declared = DeclaredFeatures.of(study)
        for index, spec in enumerate(specs):
            data = _import_dataset(con, study, index, spec, first_id, declared)
            datasets.append(data)
            first_id += data.instances.num_rows
        _check_samples_per_instance(study, specs, datasets)
        return datasets
    finally:
        con.close()


def _prompt_from_text(study: Study, spec: ImportedSpec) -> bool:
    """Whether the cost needs every instance's question text (to count the prompt's tokens)."""
    return (
        study.actions.cost != "samples"
        and not (study.actions.cost == "usd" and spec.logs_cost())
        and spec.columns.prompt_tokens is None
    )


def _import_dataset(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    index: int,
    spec: ImportedSpec,
    first_id: int,
    declared: DeclaredFeatures,
) -> ImportedDataset:
    where = f"datasets[{index}]"
    source = _File(Path(spec.path), spec.format, where)
    roles = _source_roles(study, spec, where)
    constants = {"model": spec.model} if spec.model is not None else {}
    _load(con, source, roles, "checked", constants, explode=spec.source == "samples")
    _check_rows(con, source, study, spec, roles)
    if spec.metadata is not None:
        _join_metadata(con, source, study, spec, spec.metadata)
    instances = _instances(con, spec, first_id, declared)
    if spec.source == "outcomes":
        return ImportedDataset(
            spec.name, instances, _empty_samples(), _outcome_rows(con, study.actions.cost)
        )
    return ImportedDataset(name=spec.name, instances=instances, samples=_samples(con, spec))


def _check_rows(
    con: duckdb.DuckDBPyConnection,
    source: _File,
    study: Study,
    spec: ImportedSpec,
    roles: list[_Role],
) -> None:
    """The checks across the rows of the dataset's own file, as its source needs them."""
    if spec.source != "samples" or spec.columns.sample is not None:
        _check_unique(con, source, "checked", _UNIQUE_KEYS[spec.source], roles)
    if spec.source != "wide":
        _check_models(con, source, study, roles)
    if spec.source == "counts":
        _check_at_most(con, source, roles, study.estimation.samples_per_instance)
    if spec.source == "outcomes":
        _check_outcome_rows(con, source, study, roles)
    elif spec.source != "wide":
        _check_coverage(con, source, study, spec)


def _join_metadata(
    con: duckdb.DuckDBPyConnection,
    source: _File,
    study: Study,
    spec: ImportedSpec,
    meta: MetadataSpec,
) -> None:
    """Read and check the dataset's metadata file (``spec.metadata``) into the temporary table
    ``metadata``, its ids shifted by ``id_offset``; every id of the dataset has a row there."""
    metadata = _File(Path(meta.path), meta.read_as, f"{source.where}.metadata")
    meta_roles = _metadata_roles(study, spec, meta, metadata.where)
    _load(con, metadata, meta_roles, "metadata", {})
    if meta.id_offset is not None:
        _offset_ids(con, metadata, meta.id_offset, meta_roles)
    _check_unique(con, metadata, "metadata", ["id"], meta_roles)
    _check_joined(con, source, metadata, meta)


_UNIQUE_KEYS = {
    "samples": ["id", "model", "sample"],
    "counts": ["id", "model"],
    "wide": ["id"],
    "outcomes": ["id", "model", "b"],
}


def _source_roles(study: Study, spec: ImportedSpec, where: str) -> list[_Role]:
    """The roles of the dataset's own file, as the study file maps them."""
    needs_tokens = study.actions.cost != "samples"
    # the prompt's tokens are counted from the question unless the log records them
    kinds = _column_kinds(needs_tokens, needs_text=_prompt_from_text(study, spec))
    roles = [
        _Role(_CHECKED_AS.get(name, name), column, *kinds[name], where=f"{where}.columns.{name}")
        for name, column in spec.columns
        if column is not None
    ]
    roles += _feature_roles(spec, "log", where)
    if isinstance(spec, WideSpec):
        roles += _model_roles(spec, where, kinds)
    return roles


def _column_kinds(needs_tokens: bool, needs_text: bool) -> dict[str, tuple[Kind, bool]]:
    """How each role of a log's columns is read, and whether a missing value is an error."""
    return {
        "id": ("key", True),
        "model": ("key", True),
        "sample": ("count", True),
        "answer": ("text", False),
        "correct": ("flag", True),
        "reference": ("text", True),
        "tokens": ("count", True),
        "response": ("text", needs_tokens),
        "prompt_tokens": ("count", True),
        "cost": ("amount", True),
        "n": ("count", True),
        "n_correct": ("count", True),
        "b": ("count", True),
        "accuracy": ("share", True),
        "known_cost": ("amount", True),
        "text": ("text", needs_text),
        "score": ("number", True),
        "check": ("flag", True),
    }


_MODEL_ROLES = ("correct", "response", "tokens", "cost", "check", "answer")
"""A wide log's roles of each model (``ModelColumns``), in the order they are read."""


def _model_roles(spec: WideSpec, where: str, kinds: dict[str, tuple[Kind, bool]]) -> list[_Role]:
    """A wide log's roles of each declared model (``[datasets.models.<model>]``), read as the
    log's columns of the same name are (``kinds``), the k-th model's as ``<role>_k``."""
    roles = []
    for k, (model, model_columns) in enumerate(spec.models.items()):
        for name in _MODEL_ROLES:
            column = getattr(model_columns, name)
            if column is not None:
                at = f"{where}.models.{model}.{name}"
                roles.append(_Role(f"{name}_{k}", column, *kinds[name], where=at))
    return roles


def _feature_roles(spec: ImportedSpec, file: str, where: str) -> list[_Role]:
    """The declared feature columns (``[datasets.features]``) read from one of the files."""
    at = where.removesuffix(".metadata")
    return [
        _Role(
            _feature_role(spec, name),
            feature.column,
            "number" if feature.kind == "numeric" else "text",
            False,
            f"{at}.features.{name}.column",
        )
        for name, feature in (spec.features or {}).items()
        if feature.file == file
    ]


def _metadata_roles(
    study: Study, spec: ImportedSpec, meta: MetadataSpec, where: str
) -> list[_Role]:
    kinds = _metadata_kinds(_prompt_from_text(study, spec))
    roles = [
        _Role(name, column, *kinds[name], where=f"{where}.columns.{name}")
        for name, column in meta.columns
        if column is not None
    ]
    return roles + _feature_roles(spec, "metadata", where)
