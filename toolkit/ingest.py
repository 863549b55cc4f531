"""Importers: a user's own evaluation logs into the tables the simulator fills (``instances``,
``samples``), so that outcomes and every later stage run on real data unchanged.

A dataset is declared in the study file (``toolkit.config.DatasetSpec``) with a ``source``, a
file ``path`` and ``format``, and a ``columns`` table naming the file's column for each role.
Files are read by DuckDB: ``csv`` (a header row, every value read as text and then checked),
``jsonl`` (one JSON object per line), ``parquet``, or ``json_columns`` (one JSON object whose
keys hold parallel arrays, one entry per row: the MATH-500 counts file).

``source = "samples"``: one row per sampled answer.
    ``id`` (the instance), the model (``columns.model``, or ``model`` for the whole file),
    optional ``sample`` (a whole number, unique per instance and model; numbered in file order
    when absent), ``correct`` (a flag) or ``reference`` (correct when the answer, as text with
    surrounding whitespace trimmed, equals it), optional ``answer`` (any value, compared as
    text; coded per instance as the dense rank of the distinct answers, from 0, into
    ``samples.answer``; a missing answer agrees with nothing), optional ``tokens`` (output
    tokens) or ``response`` (the output text; tokens counted from it), optional ``text`` (the
    question), optional ``score`` and ``check`` (a flag: a deployable check's verdict, into
    ``samples.verified``).
``source = "counts"``: one row per instance and model.
    ``id``, the model as above, ``n`` (samples drawn) and ``n_correct`` (of them correct);
    optional ``text``. A count may be an array of counts (e.g. one per session): it is summed.
    Stored as ``n`` sample rows, the first ``n_correct`` correct, with null answers and tokens:
    one outcomes path for every source, and exactly the (n, n_correct) that pass@b needs (the
    MATH-500 file is 500 x 1,280 = 640k rows). Counts carry no answers and no tokens, so they
    support pass@b (or b = 1) and budgets in samples.
``source = "wide"``: one row per instance, one set of columns per model (routing logs).
    ``id``, optional ``text``, and per declared model ``[datasets.models.<model>]`` with
    ``correct`` and optionally ``response`` (tokens counted from it) or ``tokens``, ``cost``,
    ``answer`` (text, trimmed, coded per instance across the models) and ``check`` (a
    deployable check's verdict on the answer). Stored as one
    sample per instance and model, so the actions are the models at b = 1 and, with
    ``actions.cost = "usd"``, an action costs (prompt tokens x input price + response tokens x
    output price) / 1e6 with the prices of its ``[[models]]`` entry (``toolkit.outcomes``).
``[datasets.metadata]``: a file joined by id: ``id``, optional ``text`` (the question),
    ``level`` (a whole number, or text ending in one: "Level 3") and ``subject``.

The question text, from ``columns.text`` or ``metadata.columns.text``, becomes
``instances.text`` and gives the text feature columns (``sql/features/text_features.sql``).
Token counts are approximate BPE counts (``sql/features/approx_tokens.sql``): one per run of
letters, one per group of up to three digits, one per other non-space character.

Values: ids compare as text; whole numbers may be written as integers, integral floats or
digit text; flags as booleans, 0/1 or true/false/t/f/yes/no/y/n text (any case). Instance ids
are dense, numbered in the order ids first appear in a dataset's file, on across datasets.

Every file is read and checked in a scratch in-memory DuckDB, apart from the study database:
a missing column, a value of the wrong type, a missing value, an empty file, a repeated key, a
negative count, ``n_correct > n``, an undeclared model, too few samples for the largest b or an
id without metadata raises ``StudyError`` naming the file, the row and the column, before any
row reaches the study's tables. (DuckDB is named here, outside ``toolkit.db``, because reading
files with row-level checks is the engine's own work, not a query on the study database.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.config import FORMAT_BY_SUFFIX, DatasetSpec, Study
from toolkit.errors import StudyError
from toolkit.resources import sql_text
from toolkit.tokens import register_token_counter

Kind = Literal["key", "text", "count", "flag", "level", "amount", "share", "number"]

_READERS: dict[str, str] = {
    "csv": "select * from read_csv($path, header = true, all_varchar = true)",
    # sample_size = -1: types from every row, so a stray value is reported, not a read error
    "jsonl": "select * from read_json($path, format = 'newline_delimited', sample_size = -1)",
    "parquet": "select * from read_parquet($path)",
    "json_columns": "select * from read_json($path, format = 'unstructured', sample_size = -1)",
    # a JSON array of records, or records one per line
    "json": "select * from read_json($path, format = 'auto', sample_size = -1)",
}
_EXPECTED: dict[Kind, str] = {
    "key": "an id (text or a number)",
    "text": "text",
    "count": "a whole number",
    "flag": "a flag (true/false, 1/0)",
    "level": "a level (a whole number, or text ending in one)",
    "amount": "a non-negative number",
    "share": "a number from 0 to 1",
    "number": "a number (or numeric text, 99.2% read as 0.992)",
}
_STORED_LIMITS = {"sample": 2**31 - 1, "prompt_tokens": 2**31 - 1, "level": 2**15 - 1}
"""The largest value of the roles stored in fewer than 64 bits (``integer``, ``smallint``)."""
_PER_SAMPLE_ROLES = frozenset(
    {
        "sample",
        "answer",
        "correct",
        "tokens",
        "response",
        "prompt_tokens",
        "cost",
        "score",
        "verified",
    }
)
"""Roles of a ``samples`` file that may hold one list per row (all of a row's samples)."""
_CHECKED_AS = {"check": "verified"}
"""Roles stored in the checked table under another name: ``check`` is an SQL keyword."""
_TRUE_TEXT = "('true', 't', '1', 'yes', 'y')"
_FLAG_TEXT = "('true', 't', '1', 'yes', 'y', 'false', 'f', '0', 'no', 'n')"


@dataclass(frozen=True)
class ImportedDataset:
    """One dataset's checked rows, ready to append (Arrow, without ``run_id``)."""

    name: str
    instances: pa.Table
    samples: pa.Table
    outcomes: pa.Table | None = None
    """``source = "outcomes"``: (instance_id, model, b, acc, cost, known_cost) as logged."""


@dataclass(frozen=True)
class _Role:
    """One role read from a file: its name in the checked table, the file's column (a key for
    ``json_columns``), how to read it, and whether a missing value is an error."""

    name: str
    column: str
    kind: Kind
    required: bool
    where: str
    """The study-file key that named the column, for messages."""


@dataclass(frozen=True)
class _File:
    path: Path
    format: str
    where: str

    @property
    def row(self) -> str:
        return "entry" if self.format == "json_columns" else "row"


def ingest(study: Study) -> list[ImportedDataset]:
    """Read and check every imported dataset of a study; nothing is written anywhere.

    Raises StudyError at the first problem, naming the file, row and column."""
    _check_study(study)
    con = duckdb.connect()
    try:
        register_token_counter(con, study.estimation.tokenizer)
        datasets, first_id = [], 0
        declared = DeclaredFeatures.of(study)
        for index, spec in enumerate(study.datasets):
            data = _import_dataset(con, study, index, spec, first_id, declared)
            datasets.append(data)
            first_id += data.instances.num_rows
        _check_samples_per_instance(study, datasets)
        return datasets
    finally:
        con.close()


def _check_samples_per_instance(study: Study, datasets: list[ImportedDataset]) -> None:
    """``estimation.samples_per_instance`` is what the data hold: the most samples of any
    instance and model (a study that declares 48 for a log of 8 would record 48)."""
    declared = study.estimation.samples_per_instance
    most, where, numbered = 0, "", True
    for spec, data in zip(study.datasets, datasets, strict=True):
        if data.samples.num_rows == 0:
            continue
        counts = data.samples.group_by(["instance_id", "model"]).aggregate(
            [("sample_idx", "count")]
        )
        n = counts.column("sample_idx_count").to_numpy()
        at = int(np.argmax(n))  # the first instance and model with the most
        if n[at] > most:
            instance = counts.column("instance_id")[at].as_py()
            ids = data.instances.column("instance_id").to_numpy()
            source_id = data.instances.column("source_id")[int(np.flatnonzero(ids == instance)[0])]
            most = int(n[at])
            model = counts.column("model")[at].as_py()
            where = (
                f"{spec.path} (dataset {spec.name!r}) holds at most {most} samples per instance "
                f"and model (id {source_id.as_py()!r}, model {model!r})"
            )
            numbered = spec.source != "samples" or spec.columns.sample is not None
    if most and most != declared:
        duplicates = (
            ""
            if numbered or most < declared
            else "; with no columns.sample each row is one sample, so a duplicated row is "
            "counted twice (declare columns.sample to have repeated rows refused)"
        )
        raise StudyError(
            f"estimation.samples_per_instance = {declared}, but {where}: declare {most}{duplicates}"
        )


# --------------------------------------------------------------------------------------------
# What the study file asks of the data, checked before any file is read
# --------------------------------------------------------------------------------------------
def _check_study(study: Study) -> None:
    """Cross-checks between the datasets and the models, actions and cost unit."""
    sources = {spec.source for spec in study.datasets}
    if "simulate" in sources and len(sources) > 1:
        raise StudyError(
            "datasets: a study either simulates its datasets or imports them; this one mixes "
            f"both ({', '.join(sorted(sources))})"
        )
    if sources == {"simulate"}:
        raise StudyError("datasets: nothing to import, every dataset is simulated")
    declared = [model.name for model in study.models]
    largest_b = max(study.actions.samples)
    for index, spec in enumerate(study.datasets):
        where = f"datasets[{index}]"
        columns = spec.columns
        if spec.model is not None and spec.model not in declared:
            raise StudyError(
                f"{where}.model: {spec.model!r} is not declared in [[models]] "
                f"(declared: {', '.join(declared)})"
            )
        if spec.source == "wide":
            for model in spec.models:
                if model not in declared:
                    raise StudyError(
                        f"{where}.models.{model}: not declared in [[models]] "
                        f"(declared: {', '.join(declared)})"
                    )
            for model in declared:
                if model not in spec.models:
                    raise StudyError(
                        f"{where}.models: no columns for model {model!r}, which [[models]] declares"
                    )
        if spec.source == "outcomes":  # estimated already: no samples, no tokens needed
            continue
        has_answers = spec.source == "samples" and columns.answer is not None
        if study.actions.aggregation == "majority" and largest_b > 1 and not has_answers:
            raise StudyError(
                f"{where}: a majority vote over b = {largest_b} samples needs their answers, "
                f"and this {spec.source} source has none (declare columns.answer, or use "
                'actions.aggregation = "pass")'
            )
        _check_cost_columns(study, spec, where)


def _check_cost_columns(study: Study, spec: DatasetSpec, where: str) -> None:
    """What a cost in tokens or dollars needs of a dataset: output tokens (or logged dollar
    costs) and the prompt's tokens (or the question text to count them from)."""
    cost = study.actions.cost
    if cost == "samples":
        return
    if cost == "usd" and _has_logged_cost(spec):
        return
    if not _has_tokens(spec):
        hint = {
            "samples": "declare columns.tokens or columns.response",
            "counts": "counts carry no tokens",
            "wide": "declare response or tokens for every model",
        }[spec.source]
        raise StudyError(f'{where}: actions.cost = "{cost}" needs output tokens ({hint})')
    if (
        _text_column(spec) is None
        and spec.columns.prompt_tokens is None
        and spec.prompt_overhead_tokens is None
    ):
        raise StudyError(
            f'{where}: actions.cost = "{cost}" needs the prompt\'s tokens: declare '
            "columns.prompt_tokens (logged), or the question text (columns.text or "
            "metadata.columns.text) to count them from, or prompt_overhead_tokens"
        )


def _prompt_from_text(study: Study, spec: DatasetSpec) -> bool:
    """Whether the cost needs every instance's question text (to count the prompt's tokens)."""
    return (
        study.actions.cost != "samples"
        and not (study.actions.cost == "usd" and _has_logged_cost(spec))
        and spec.columns.prompt_tokens is None
    )


def _has_logged_cost(spec: DatasetSpec) -> bool:
    if spec.source == "samples":
        return spec.columns.cost is not None
    if spec.source == "wide":
        return all(m.cost is not None for m in spec.models.values())
    return False


def _has_tokens(spec: DatasetSpec) -> bool:
    if spec.source == "samples":
        return spec.columns.tokens is not None or spec.columns.response is not None
    if spec.source == "wide":
        return all(m.tokens is not None or m.response is not None for m in spec.models.values())
    return False


def _text_column(spec: DatasetSpec) -> str | None:
    if spec.columns.text is not None:
        return spec.columns.text
    if spec.metadata is not None:
        return spec.metadata.columns.text
    return None


# --------------------------------------------------------------------------------------------
# One dataset
# --------------------------------------------------------------------------------------------
def _import_dataset(
    con: duckdb.DuckDBPyConnection,
    study: Study,
    index: int,
    spec: DatasetSpec,
    first_id: int,
    declared: DeclaredFeatures,
) -> ImportedDataset:
    where = f"datasets[{index}]"
    source = _File(Path(spec.path), spec.format, where)
    roles = _source_roles(study, spec, where)
    constants = {"model": spec.model} if spec.model is not None else {}
    _load(con, source, roles, "checked", constants, explode=spec.source == "samples")

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

    if spec.metadata is not None:
        metadata = _File(Path(spec.metadata.path), spec.metadata.format, f"{where}.metadata")
        meta_roles = _metadata_roles(study, spec, metadata.where)
        _load(con, metadata, meta_roles, "metadata", {})
        if spec.metadata.id_offset is not None:
            _offset_ids(con, metadata, spec.metadata.id_offset, meta_roles)
        _check_unique(con, metadata, "metadata", ["id"], meta_roles)
        _check_joined(con, source, metadata, spec)

    instances = _instances(con, spec, first_id, declared)
    if spec.source == "outcomes":
        return ImportedDataset(
            spec.name, instances, _empty_samples(), _outcome_rows(con, study.actions.cost)
        )
    return ImportedDataset(name=spec.name, instances=instances, samples=_samples(con, spec))


_UNIQUE_KEYS = {
    "samples": ["id", "model", "sample"],
    "counts": ["id", "model"],
    "wide": ["id"],
    "outcomes": ["id", "model", "b"],
}


@dataclass(frozen=True)
class DeclaredFeatures:
    """The study's declared feature columns (``[datasets.features]``), in one order across
    datasets: each instance stores their values as two lists in this order
    (``instances.declared_numeric``, ``instances.declared_categorical``)."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    @classmethod
    def of(cls, study: Study) -> DeclaredFeatures:
        numeric: dict[str, None] = {}
        categorical: dict[str, None] = {}
        for spec in study.datasets:
            for name, feature in (spec.features or {}).items():
                (numeric if feature.kind == "numeric" else categorical)[name] = None
        clash = set(numeric) & set(categorical)
        if clash:
            raise StudyError(
                f"datasets: feature {sorted(clash)[0]!r} is declared numeric in one dataset "
                "and categorical in another"
            )
        return cls(tuple(numeric), tuple(categorical))


def _offset_ids(
    con: duckdb.DuckDBPyConnection, file: _File, offset: int, roles: list[_Role]
) -> None:
    """Shift the metadata's ids by ``offset`` (``metadata.id_offset``): whole numbers only."""
    column = next(role.column for role in roles if role.name == "id")
    found = con.execute(
        "select _row, id from metadata where try_cast(id as bigint) is null order by _row limit 1"
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}, column {column!r}: id_offset needs whole-number "
            f"ids, got {found[1]!r} (named by {file.where}.id_offset)"
        )
    con.execute("update metadata set id = (id::bigint + $offset)::varchar", {"offset": offset})


def _source_roles(study: Study, spec: DatasetSpec, where: str) -> list[_Role]:
    """The roles of the dataset's own file, as the study file maps them."""
    needs_tokens = study.actions.cost != "samples"
    # the prompt's tokens are counted from the question unless the log records them
    needs_text = _prompt_from_text(study, spec)
    columns = spec.columns
    kinds: dict[str, tuple[Kind, bool]] = {
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
    roles = [
        _Role(_CHECKED_AS.get(name, name), column, *kinds[name], where=f"{where}.columns.{name}")
        for name, column in columns
        if column is not None
    ]
    roles += _feature_roles(spec, "log", where)
    if spec.source == "wide":
        for k, (model, model_columns) in enumerate(spec.models.items()):
            at = f"{where}.models.{model}"
            roles.append(
                _Role(f"correct_{k}", model_columns.correct, "flag", True, f"{at}.correct")
            )
            if model_columns.response is not None:
                roles.append(
                    _Role(
                        f"response_{k}",
                        model_columns.response,
                        "text",
                        needs_tokens,
                        f"{at}.response",
                    )
                )
            if model_columns.tokens is not None:
                roles.append(
                    _Role(f"tokens_{k}", model_columns.tokens, "count", True, f"{at}.tokens")
                )
            if model_columns.cost is not None:
                roles.append(_Role(f"cost_{k}", model_columns.cost, "amount", True, f"{at}.cost"))
            if model_columns.check is not None:
                roles.append(_Role(f"check_{k}", model_columns.check, "flag", True, f"{at}.check"))
            if model_columns.answer is not None:
                roles.append(
                    _Role(f"answer_{k}", model_columns.answer, "text", False, f"{at}.answer")
                )
    return roles


def _feature_roles(spec: DatasetSpec, file: str, where: str) -> list[_Role]:
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


def _feature_role(spec: DatasetSpec, name: str) -> str:
    """The checked table's column of a declared feature (by position: a feature's name may hold
    characters an SQL identifier cannot)."""
    return f"feature_{list(spec.features).index(name)}"


def _metadata_kinds(text_required: bool) -> dict[str, tuple[Kind, bool]]:
    """How a metadata file's (or a request's) columns are read, and which are required."""
    return {
        "id": ("key", True),
        "text": ("text", text_required),
        "level": ("level", False),
        "subject": ("text", False),
    }


def _metadata_roles(study: Study, spec: DatasetSpec, where: str) -> list[_Role]:
    kinds = _metadata_kinds(_prompt_from_text(study, spec))
    roles = [
        _Role(name, column, *kinds[name], where=f"{where}.columns.{name}")
        for name, column in spec.metadata.columns
        if column is not None
    ]
    return roles + _feature_roles(spec, "metadata", where)


# --------------------------------------------------------------------------------------------
# Reading and checking a file
# --------------------------------------------------------------------------------------------
def _load(
    con: duckdb.DuckDBPyConnection,
    file: _File,
    roles: list[_Role],
    table: str,
    constants: dict[str, str],
    explode: bool = False,
) -> None:
    """Read the file's columns for ``roles``, check every value, and store the converted values
    as the temporary table ``table`` (one column per role, ``_row`` the 1-based row, ``_item``
    the sample's place in its row's lists, 0 without lists)."""
    _store(con, file, _read_roles(con, file, roles, explode), roles, table, constants)


def _store(
    con: duckdb.DuckDBPyConnection,
    file: _File,
    raw: pa.Table,
    roles: list[_Role],
    table: str,
    constants: dict[str, str],
) -> None:
    """``_load`` once the roles' columns are read: every value checked and converted."""
    for name, value in constants.items():
        raw = raw.append_column(name, pa.array([value] * raw.num_rows, pa.string()))
    con.register("_ingest_raw", raw)
    try:
        types = [raw.schema.field(role.name).type for role in roles]
        if _all_values_good(con, roles, types):
            expressions = [
                _conversion(r.kind, t, r.name)[1] for r, t in zip(roles, types, strict=True)
            ]
        else:  # the role-by-role checks find the first bad value and name it
            expressions = [
                _check_values(con, file, r, t) for r, t in zip(roles, types, strict=True)
            ]
        converted = [f"{e} as {r.name}" for e, r in zip(expressions, roles, strict=True)]
        converted += list(constants)
        con.execute(
            f"create or replace temp table {table} as "
            f"select _row, _item, {', '.join(converted)} from _ingest_raw"
        )
    finally:
        con.unregister("_ingest_raw")


def _read_error_reason(file: _File, error: duckdb.Error) -> str:
    """DuckDB's reason a file does not read, in one line: its first line and, for a CSV, the
    cause it gives after echoing the offending line (a field too long, say) instead; for JSONL the
    1-based line of the first malformed record, found by reading the lines (DuckDB's count is
    one ahead)."""
    lines = [line.strip() for line in str(error).strip().splitlines()]
    reason = lines[0]
    if file.format == "jsonl" and "Malformed JSON" in reason:
        bad = _first_malformed_line(file.path)
        if bad is not None:
            return f"malformed JSON at line {bad}"
    if reason.startswith("Invalid Input Error: CSV Error on Line"):
        cause = [line for line in lines[1:] if line and not line.startswith("Original Line")]
        if cause:  # its line number can be wrong (a long field counts as line 1), so not it
            reason = cause[0][:200]
    return reason[:500]


def _first_malformed_line(path: Path) -> int | None:
    """The 1-based number of the first non-blank line of a JSONL file that is not one JSON
    value (None when every line parses)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError:
                return number
    return None


def _read_roles(
    con: duckdb.DuckDBPyConnection, file: _File, roles: list[_Role], explode: bool = False
) -> pa.Table:
    """The file's columns named by ``roles``, renamed to the role names, plus ``_row`` (and,
    with ``explode``, one row per entry of list-valued per-sample columns: ``_explode_lists``)."""
    if not file.path.is_file():
        raise StudyError(f"{file.where}.path: no such file: {file.path}")
    if file.path.stat().st_size == 0:
        raise StudyError(f"{file.path}: the file is empty")
    try:
        relation = con.sql(_READERS[file.format], params={"path": str(file.path)})
        table = relation.to_arrow_table()
    except duckdb.Error as error:
        reason = _read_error_reason(file, error)
        raise StudyError(f"{file.path}: cannot read it as {file.format}: {reason}") from None
    # DuckDB gives a JSON key whose values mix types (3 and "x") the type JSON: JSON text
    mixed = {
        name
        for name, kind in zip(relation.columns, relation.types, strict=True)
        if str(kind) in ("JSON", "JSON[]")
    }
    if file.format == "json_columns":
        table = _unpack_json_columns(file, table, roles)
    for name in mixed & {role.column for role in roles}:
        table = table.set_column(
            table.schema.get_field_index(name), name, _unwrap_json(con, table.column(name))
        )
    return _role_columns(file, table, roles, explode)


def _role_columns(file: _File, table: pa.Table, roles: list[_Role], explode: bool) -> pa.Table:
    """``_read_roles`` once the file is a table."""
    columns = {role.name: column_at(file, table, role) for role in roles}
    if table.num_rows == 0:
        raise StudyError(f"{file.path}: no rows")
    out = pa.table(columns)
    _check_scalar_ids(file, out, roles)
    out = out.append_column("_row", pa.array(np.arange(1, out.num_rows + 1, dtype=np.int64)))
    if explode:
        return _explode_lists(file, out, roles)
    return out.append_column("_item", pa.array(np.zeros(out.num_rows, dtype=np.int64)))


_PATH_PART = re.compile(r"\[(\*|\d+)\]|([^.\[\]]+)")


def path_parts(path: str) -> list[str]:
    """``infos[*].r`` -> ``["infos", "[*]", "r"]``; ``a.b.c`` -> ``["a", "b", "c"]``;
    ``pred_score[*][0]`` -> ``["pred_score", "[*]", "[0]"]``."""
    parts = []
    for index, name in _PATH_PART.findall(path):
        parts.append(f"[{index}]" if index else name)
    return parts


def column_at(file: _File, table: pa.Table, role: _Role) -> pa.Array:
    """The column a role names: a column of the file, or a path into nested values:
    ``a.b`` (field b of struct a), ``a[*].b`` (field b of every entry of list a: a list per
    row), ``a[0]`` (the first entry of list a). A name the file has as it is wins over a path."""
    if role.column in table.column_names:
        return table.column(role.column).combine_chunks()
    parts = path_parts(role.column)
    if not parts or parts[0] not in table.column_names:
        raise StudyError(
            f"{file.path}: no column {role.column!r} (named by {role.where}); "
            f"it has: {', '.join(table.column_names)}"
        )
    return _resolve(file, role, table.column(parts[0]).combine_chunks(), parts, 1)


def _resolve(file: _File, role: _Role, array: pa.Array, parts: list[str], at: int) -> pa.Array:
    if at == len(parts):
        return array
    part, where = parts[at], "".join(p if p.startswith("[") else f".{p}" for p in parts[:at])
    where = where.lstrip(".")
    if part == "[*]" or re.fullmatch(r"\[\d+\]", part):
        if not _is_list(array.type):
            raise StudyError(
                f"{file.path}: {where!r} holds {array.type}, not a list (path {role.column!r}, "
                f"named by {role.where})"
            )
        if part != "[*]":
            return _resolve(file, role, pc.list_element(array, int(part[1:-1])), parts, at + 1)
        inner = _resolve(file, role, pc.list_flatten(array), parts, at + 1)
        offsets = pc.subtract(array.offsets, array.offsets[0])  # a sliced array starts later
        return pa.ListArray.from_arrays(offsets, inner, mask=array.is_null())
    if not pa.types.is_struct(array.type):
        raise StudyError(
            f"{file.path}: {where!r} holds {array.type}, not an object with key {part!r} "
            f"(path {role.column!r}, named by {role.where})"
        )
    keys = [array.type.field(i).name for i in range(array.type.num_fields)]
    if part not in keys:
        raise StudyError(
            f"{file.path}: {where!r} has no key {part!r} (path {role.column!r}, named by "
            f"{role.where}); it has: {', '.join(keys)}"
        )
    return _resolve(file, role, pc.struct_field(array, [keys.index(part)]), parts, at + 1)


def _check_scalar_ids(file: _File, table: pa.Table, roles: list[_Role]) -> None:
    """An id column holding lists is one JSON object of parallel arrays read as records."""
    for role in roles:
        if role.name == "id" and role.name in table.column_names:
            if _is_list(table.column(role.name).type):
                hint = (
                    "; a file holding one JSON object of parallel arrays needs "
                    'format = "json_columns"'
                    if file.format == "json"
                    else ""
                )
                raise StudyError(
                    f"{file.path}: column {role.column!r} (named by {role.where}) holds lists, "
                    f"not one id per {file.row}{hint}"
                )


def _explode_lists(file: _File, table: pa.Table, roles: list[_Role]) -> pa.Table:
    """A samples file with one row per instance and parallel lists (``pred``, ``score``,
    ``response`` of 8 samples each) as one row per sample: list-valued per-sample columns are
    flattened side by side, every other column repeated; ``_item`` numbers the samples of a row
    (``_row`` stays the file's row, for messages). The lists of a row must have one length."""
    listed = [
        role
        for role in roles
        if role.name in _PER_SAMPLE_ROLES and _is_list(table.column(role.name).type)
    ]
    if not listed:
        return table.append_column("_item", pa.array(np.zeros(table.num_rows, dtype=np.int64)))
    lengths = {}
    for role in listed:
        column = table.column(role.name).combine_chunks()
        length = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        missing = np.flatnonzero(_is_null(length))
        if missing.size:
            raise StudyError(
                f"{file.path}: {file.row} {missing[0] + 1}, column {role.column!r}: missing "
                f"value, expected a list of samples (named by {role.where})"
            )
        lengths[role] = length.astype(np.int64)
    first = listed[0]
    for role in listed[1:]:
        differ = np.flatnonzero(lengths[role] != lengths[first])
        if differ.size:
            row = differ[0]
            raise StudyError(
                f"{file.path}: {file.row} {row + 1}: the lists of column {first.column!r} "
                f"({lengths[first][row]} entries) and column {role.column!r} "
                f"({lengths[role][row]} entries) differ in length; each row's lists hold "
                "the same samples"
            )
    counts = lengths[first]
    parents = np.repeat(np.arange(table.num_rows), counts)
    starts = np.cumsum(counts) - counts
    columns = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if any(role.name == name for role in listed):
            columns[name] = pc.list_flatten(column)
        else:
            columns[name] = column.take(pa.array(parents))
    columns["_item"] = pa.array(np.arange(len(parents)) - starts[parents], pa.int64())
    return pa.table(columns)


def _is_null(values: np.ndarray) -> np.ndarray:
    """Null entries of a numpy array pulled from Arrow (None in object arrays, NaN in floats)."""
    if values.dtype == object:
        return np.array([value is None for value in values], dtype=bool)
    return np.isnan(values.astype(np.float64))


def _unpack_json_columns(file: _File, document: pa.Table, roles: list[_Role]) -> pa.Table:
    """One JSON object of parallel arrays -> one row per array entry."""
    if document.num_rows != 1:
        raise StudyError(
            f"{file.path}: json_columns expects one JSON object of parallel "
            f"arrays, found {document.num_rows} records"
        )
    arrays = {}
    for role in roles:
        if role.column not in document.column_names:
            raise StudyError(
                f"{file.path}: no key {role.column!r} (named by {role.where}); "
                f"it has: {', '.join(document.column_names)}"
            )
        column = document.column(role.column).combine_chunks()
        if not pa.types.is_list(column.type) or column.is_null().to_pylist()[0]:
            raise StudyError(
                f"{file.path}: key {role.column!r} (named by {role.where}) holds "
                f"{column.type}, not an array with one entry per row"
            )
        arrays[role.column] = column.flatten()
    lengths = {key: len(values) for key, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{key!r}: {length}" for key, length in lengths.items())
        raise StudyError(f"{file.path}: the arrays differ in length ({shown})")
    return pa.table(arrays)


def _unwrap_json(con: duckdb.DuckDBPyConnection, values: pa.ChunkedArray) -> pa.Array:
    """JSON text -> the value as text: "x" -> x, 3 -> 3, null -> null (arrays stay JSON)."""
    con.register("_ingest_json", pa.table({"value": values}))
    try:
        return (
            con.sql("select json_extract_string(value, '$') as value from _ingest_json")
            .to_arrow_table()
            .column("value")
        )
    finally:
        con.unregister("_ingest_json")


def _all_values_good(
    con: duckdb.DuckDBPyConnection, roles: list[_Role], types: list[pa.DataType]
) -> bool:
    """Whether no value of any role fails a check of ``_check_values``: one query for them all
    (each role's checks are a query of their own, which on a request of one record is most of
    its time). False also when the query itself fails: the role-by-role checks then say why."""
    bad = []
    for role, arrow_type in zip(roles, types, strict=True):
        valid, convert = _conversion(role.kind, arrow_type, role.name)
        required = "true" if role.required else "false"
        bad.append(f"({role.name} is null and {required})")
        bad.append(f"({role.name} is not null and not ({valid}))")
        limit = _STORED_LIMITS.get(role.name)
        if limit is not None:
            bad.append(f"coalesce({convert} > {int(limit)}, false)")
        if role.kind == "count":
            negative = f"list_min({role.name}) < 0" if _is_list(arrow_type) else f"{convert} < 0"
            bad.append(f"coalesce({negative}, false)")
    try:
        found = con.execute(
            f"select count(*) from _ingest_raw where {' or '.join(bad)} limit 1"
        ).fetchone()
    except duckdb.Error:
        return False
    return found[0] == 0


def _check_values(
    con: duckdb.DuckDBPyConnection, file: _File, role: _Role, arrow_type: pa.DataType
) -> str:
    """Raise on the first missing, mistyped or negative value of a role; return the SQL
    expression that converts the raw column to its stored type."""
    valid, convert = _conversion(role.kind, arrow_type, role.name)
    required = "true" if role.required else "false"
    found = con.execute(
        f"select _row, {role.name}::varchar, {role.name} is null from _ingest_raw "
        f"where ({role.name} is null and {required}) "
        f"or ({role.name} is not null and not ({valid})) order by _row limit 1"
    ).fetchone()
    at = f"{file.path}: {file.row} {found[0]}, column {role.column!r}" if found else ""
    if found and found[2]:
        raise StudyError(f"{at}: missing value (named by {role.where})")
    if found:
        raise StudyError(
            f"{at}: expected {_EXPECTED[role.kind]}, got {found[1]!r} (named by {role.where})"
        )
    limit = _STORED_LIMITS.get(role.name)
    if limit is not None:  # stored in 32 or 16 bits (sql/tables/)
        found = con.execute(
            f"select _row, {role.name}::varchar from _ingest_raw where {convert} > $limit "
            "order by _row limit 1",
            {"limit": limit},
        ).fetchone()
        if found:
            raise StudyError(
                f"{file.path}: {file.row} {found[0]}, column {role.column!r}: at most {limit:,}, "
                f"got {found[1]} (named by {role.where})"
            )
    if role.kind == "count":
        negative = f"list_min({role.name}) < 0" if _is_list(arrow_type) else f"{convert} < 0"
        found = con.execute(
            f"select _row, {role.name}::varchar from _ingest_raw where {negative} "
            "order by _row limit 1"
        ).fetchone()
        if found:
            raise StudyError(
                f"{file.path}: {file.row} {found[0]}, column {role.column!r}: "
                f"cannot be negative, got {found[1]} (named by {role.where})"
            )
    return convert


def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)


def _conversion(kind: Kind, arrow_type: pa.DataType, x: str) -> tuple[str, str]:
    """(SQL test that a non-null raw value is valid, SQL conversion of a valid value)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    is_text = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    is_whole = pa.types.is_integer(arrow_type)
    is_number = is_whole or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)
    if kind == "key":
        if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
            # a column holding 7 and 7.5 (or 7.0) is read as floats: a whole one is the id
            # written as an integer, so 7 and 7.0 are one id, "7", as in an integer column
            whole = f"{x} = trunc({x}) and abs({x}) < 9.2e18"
            convert = f"case when {whole} then {x}::bigint::varchar else {x}::varchar end"
            return f"isfinite({x}::double)", convert
        scalar = is_text or is_number or pa.types.is_boolean(arrow_type)
        return ("true", f"{x}::varchar") if scalar else ("false", "null")
    if kind == "text":
        return "true", f"{x}::varchar"
    if kind == "flag":
        if pa.types.is_boolean(arrow_type):
            return "true", x
        if is_number:
            return f"{x} in (0, 1)", f"{x} = 1"
        if is_text:
            return f"lower(trim({x})) in {_FLAG_TEXT}", f"lower(trim({x})) in {_TRUE_TEXT}"
        return "false", "null"
    if kind in ("amount", "share"):
        number = f"{x}::double" if is_number else f"try_cast(trim({x}) as double)"
        if not (is_number or is_text):
            return "false", "null"
        upper = f" and {number} <= 1" if kind == "share" else ""
        return f"{number} is not null and isfinite({number}) and {number} >= 0{upper}", number
    if kind == "number":
        if is_number:
            return f"isfinite({x}::double)", f"{x}::double"
        if not is_text:
            return "false", "null"
        percent = f"ends_with(trim({x}), '%')"
        digits = f"try_cast(rtrim(trim({x}), '%') as double)"
        value = f"case when {percent} then {digits} / 100 else {digits} end"
        return f"{digits} is not null and isfinite({digits})", value
    # count and level: whole numbers
    if is_whole:
        return "true", f"{x}::bigint"
    if is_number:  # whole and within 64 bits (1e20 would not convert)
        return f"{x} = trunc({x}) and abs({x}) < 9.2e18", f"{x}::bigint"
    element = arrow_type.value_type if _is_list(arrow_type) else None
    if (
        kind == "count"
        and element is not None
        and (
            pa.types.is_integer(element)
            or pa.types.is_floating(element)
            or pa.types.is_decimal(element)
        )
    ):
        total = f"list_sum({x})"
        fits = f"abs({total}) < 9.2e18"
        return f"{total} is not null and {total} = trunc({total}) and {fits}", f"{total}::bigint"
    if is_text and kind == "count":
        whole = rf"try_cast(regexp_extract(trim({x}), '[+-]?[0-9]+') as bigint)"
        return rf"regexp_full_match(trim({x}), '[+-]?[0-9]+(\.0*)?') and {whole} is not null", whole
    if is_text:  # a level: "3" or "Level 3"
        level = rf"try_cast(regexp_extract({x}, '([0-9]+)\s*$', 1) as bigint)"
        return rf"regexp_matches({x}, '[0-9]+\s*$') and {level} is not null", level
    return "false", "null"


def _describe_key(con: duckdb.DuckDBPyConnection, table: str, keys: list[str], row: int) -> str:
    values = con.execute(
        f"select {', '.join(keys)} from {table} where _row = $row", {"row": row}
    ).fetchone()
    return ", ".join(f"{key} = {value!r}" for key, value in zip(keys, values, strict=True))


def _check_unique(
    con: duckdb.DuckDBPyConnection, file: _File, table: str, keys: list[str], roles: list[_Role]
) -> None:
    """No two rows share the key columns."""
    found = con.execute(
        f"select min(_row), list(_row order by _row)[2] from {table} group by {', '.join(keys)} "
        "having count(*) > 1 order by 1 limit 1"
    ).fetchone()
    if found:
        named = {role.name: role.column for role in roles}
        columns = ", ".join(repr(named[key]) for key in keys if key in named)
        raise StudyError(
            f"{file.path}: {file.row}s {found[0]} and {found[1]} repeat the key "
            f"{_describe_key(con, table, keys, found[0])} (columns {columns})"
        )


def _check_models(
    con: duckdb.DuckDBPyConnection, file: _File, study: Study, roles: list[_Role]
) -> None:
    """Every model named in the file is declared in [[models]]."""
    declared = [model.name for model in study.models]
    found = con.execute(
        "select _row, model from checked where not list_contains($declared, model) "
        "order by _row limit 1",
        {"declared": declared},
    ).fetchone()
    if found:
        column = next(role.column for role in roles if role.name == "model")
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}, column {column!r}: model {found[1]!r} is not "
            f"declared in [[models]] (declared: {', '.join(declared)})"
        )


def _check_at_most(
    con: duckdb.DuckDBPyConnection, file: _File, roles: list[_Role], declared: int
) -> None:
    """n_correct <= n on every row, and n no more than the declared samples per instance (a
    count is expanded into its samples: n = 1e9 would be 1e9 rows)."""
    named = {role.name: role.column for role in roles}
    found = con.execute(
        "select _row, n from checked where n > $declared order by _row limit 1",
        {"declared": declared},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}: n = {found[1]} (column {named['n']!r}) is more "
            f"than estimation.samples_per_instance = {declared} samples"
        )
    found = con.execute(
        "select _row, n_correct, n from checked where n_correct > n order by _row limit 1"
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}: n_correct = {found[1]} (column "
            f"{named['n_correct']!r}) exceeds n = {found[2]} (column {named['n']!r})"
        )


def _check_coverage(
    con: duckdb.DuckDBPyConnection, file: _File, study: Study, spec: DatasetSpec
) -> None:
    """Every instance has at least max(b) samples from every declared model."""
    largest_b = max(study.actions.samples)
    per_row = "n" if spec.source == "counts" else "1"
    found = con.execute(
        f"""
        with ids as (select id, min(_row) as first_row from checked group by id),
        models as (select unnest($declared) as model),
        stored as (select id, model, sum({per_row}) as n from checked group by id, model)
        select ids.id, models.model, coalesce(stored.n, 0) as n
        from ids cross join models left join stored using (id, model)
        where coalesce(stored.n, 0) < $largest_b
        order by ids.first_row, models.model limit 1
        """,
        {"declared": [model.name for model in study.models], "largest_b": largest_b},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: id {found[0]!r} has {found[2]} sample(s) from model {found[1]!r}; "
            f"actions.samples needs at least b = {largest_b} per instance and model"
        )


def _check_outcome_rows(
    con: duckdb.DuckDBPyConnection, file: _File, study: Study, roles: list[_Role]
) -> None:
    """Logged outcomes: every b is an action's, and every instance has every declared model
    and b."""
    named = {role.name: role.column for role in roles}
    samples = sorted(study.actions.samples)
    found = con.execute(
        "select _row, b from checked where not list_contains($samples, b) order by _row limit 1",
        {"samples": samples},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}, column {named['b']!r}: b = {found[1]} is not "
            f"one of actions.samples = {samples}"
        )
    found = con.execute(
        """
        with ids as (select id, min(_row) as first_row from checked group by id),
        wanted as (
            select id, first_row, model, b from ids
            cross join (select unnest($models) as model)
            cross join (select unnest($samples) as b)
        )
        select w.id, w.model, w.b from wanted w anti join checked c using (id, model, b)
        order by w.first_row, w.model, w.b limit 1
        """,
        {"models": [model.name for model in study.models], "samples": samples},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: id {found[0]!r} has no row for model {found[1]!r} at b = {found[2]}; "
            "logged outcomes need every instance, model and b of actions.samples"
        )
    if study.actions.cost != "samples" and "cost" not in named:
        raise StudyError(
            f"{file.where}.columns.cost: logged outcomes in {study.actions.cost} need the "
            "cost of each action"
        )


def _outcome_rows(con: duckdb.DuckDBPyConnection, unit: str) -> pa.Table:
    """(instance_id, model, b, acc, cost, known_cost) of the checked outcome rows: a missing
    cost is b (samples); a missing known cost is all of the cost in samples, else 0."""
    columns = {row[0] for row in con.execute("describe checked").fetchall()}
    cost = "c.cost" if "cost" in columns else "c.b::double"
    known = "c.known_cost" if "known_cost" in columns else cost if unit == "samples" else "0.0"
    return con.sql(
        f"""
        select i.instance_id, c.model::varchar as model, c.b::integer as b,
            c.accuracy::double as acc, ({cost})::double as cost,
            ({known})::double as known_cost
        from checked c {_JOIN_IDS} order by i.instance_id, c.model, c.b
        """
    ).to_arrow_table()


def _empty_samples() -> pa.Table:
    return pa.table(
        {
            "instance_id": pa.array([], pa.int64()),
            "model": pa.array([], pa.string()),
            "sample_idx": pa.array([], pa.int32()),
            "answer": pa.array([], pa.int32()),
            "correct": pa.array([], pa.bool_()),
        }
    )


def _check_joined(
    con: duckdb.DuckDBPyConnection, source: _File, metadata: _File, spec: DatasetSpec
) -> None:
    """Every id of the dataset has a metadata row."""
    found = con.execute(
        "select id, min(_row) from checked anti join metadata using (id) group by id "
        "order by 2 limit 1"
    ).fetchone()
    if found:
        raise StudyError(
            f"{metadata.path}: no row with id {found[0]!r} (column "
            f"{spec.metadata.columns.id!r}), which {source.path} has in {source.row} {found[1]}"
        )


# --------------------------------------------------------------------------------------------
# Building the rows to append
# --------------------------------------------------------------------------------------------
def _instances(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, first_id: int, declared: DeclaredFeatures
) -> pa.Table:
    """One row per distinct id, numbered in order of first appearance, with its metadata, its
    question text (from the id's first row, or the metadata), the text features
    (``sql/features/text_features.sql``) and its declared features (``DeclaredFeatures``)."""
    meta = spec.metadata.columns if spec.metadata is not None else None
    level = "m.level" if meta is not None and meta.level else "null"
    subject = "m.subject" if meta is not None and meta.subject else "null"
    log_columns = ["text"] if spec.columns.text is not None else []
    log_columns += [
        _feature_role(spec, name)
        for name, feature in (spec.features or {}).items()
        if feature.file == "log"
    ]
    text, joins = "null", ""
    if log_columns:
        firsts = ", ".join(f"arg_min({c}, _row) as {c}" for c in log_columns)
        joins += f" join (select id, {firsts} from checked group by id) q using (id)"
        text = "q.text" if spec.columns.text is not None else text
    if meta is not None:
        text = "m.text" if meta.text else text
        joins += " left join metadata m using (id)"
    con.execute(
        f"""
        create or replace temp table instance_text as
        with firsts as (
            select id, min(_row) as first_row from checked group by id
        ),
        numbered as (
            select id, $first_id + row_number() over (order by first_row) - 1 as instance_id
            from firsts
        )
        select n.instance_id, n.id as source_id, {level}::smallint as level,
            {subject}::varchar as subject, {text}::varchar as text,
            {_declared_lists(spec, declared)}
        from numbered n{joins}
        """,
        {"first_id": first_id},
    )
    return _with_text_features(con, spec)


def _with_text_features(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, *, view_made: bool = False
) -> pa.Table:
    """The ``instances`` rows of the temporary table ``instance_text`` (instance_id,
    source_id, level, subject, text and the declared lists): its text features
    (``sql/features/text_features.sql``) and prompt tokens added. ``view_made``: the
    connection already has the ``text_features`` view (it reads ``instance_text`` by name
    whenever it is queried)."""
    if not view_made:
        con.execute(
            "create or replace temp view text_features as\n"
            + sql_text("features/text_features.sql")
        )
    overhead = spec.prompt_overhead_tokens
    prompt = "f.prompt_tokens" if overhead is None else "coalesce(f.prompt_tokens, 0) + $overhead"
    return con.sql(
        f"""
        select i.instance_id::bigint as instance_id, $dataset as dataset, i.source_id,
            i.level, i.subject, i.text, f.* exclude (instance_id, prompt_tokens),
            ({prompt})::integer as prompt_tokens, i.declared_numeric, i.declared_categorical
        from instance_text i join text_features f using (instance_id)
        order by i.instance_id
        """,
        params={"dataset": spec.name, **({} if overhead is None else {"overhead": overhead})},
    ).to_arrow_table()


def read_requests(
    study: Study, path: str | Path, columns: dict[str, str], file_format: str | None = None
) -> pa.Table:
    """New requests for a deployed policy, as ``instances`` rows of the study's first dataset:
    a file of records (CSV, JSONL, JSON, Parquet) with the question text and metadata, mapped
    by ``columns`` (role -> column: ``id``, ``text``, ``level``, ``subject``), read and checked
    as a metadata file is (a missing or mistyped value names the row and column), with the
    same text features. ``instance_id`` numbers the records in file order; ``source_id`` is
    their id. ``RequestReader`` reads many files or batches of records with one set-up."""
    reader = RequestReader(study, columns)
    try:
        return reader.read(path, file_format)
    finally:
        reader.close()


class RequestReader:
    """Requests read and checked as ``read_requests`` does, from files or from records (the
    JSON objects of an HTTP request), on one DuckDB connection kept open between calls."""

    def __init__(self, study: Study, columns: dict[str, str], threads: int | None = None) -> None:
        self.spec = study.datasets[0]
        if self.spec.features:
            raise StudyError(
                f"datasets[0].features: declared features ({', '.join(self.spec.features)}) are "
                "not read from requests yet; deploy a policy of a study without them"
            )
        unknown = sorted(set(columns) - {"id", "text", "level", "subject"})
        if unknown:
            raise StudyError(
                f"--columns: {unknown[0]!r} is not a request column (id, text, level, subject)"
            )
        if "id" not in columns:
            raise StudyError("--columns: name the id column (id=COLUMN)")
        self.columns = dict(columns)
        kinds = _metadata_kinds(text_required=True)
        self.roles = [
            _Role(name, column, *kinds[name], where=f"--columns {name}={column}")
            for name, column in columns.items()
        ]
        declared = DeclaredFeatures.of(study)
        self._empty = (
            f"list_value({', '.join(['null::double'] * len(declared.numeric))})::double[] "
            "as declared_numeric, "
            f"list_value({', '.join(['null::varchar'] * len(declared.categorical))})::varchar[] "
            "as declared_categorical"
        )
        # DuckDB threads (default: every core); a service reading one record at a time is
        # quicker on one (8.9 against 12.9 ms a record, measured with the pacer's policy)
        self.con = duckdb.connect(config={} if threads is None else {"threads": threads})
        register_token_counter(self.con, study.estimation.tokenizer)
        self._view_made = False

    def close(self) -> None:
        self.con.close()

    def read(self, path: str | Path, file_format: str | None = None) -> pa.Table:
        """The requests of a file (its format from the extension by default)."""
        file_format = file_format or FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())
        if file_format is None:
            raise StudyError(f"{path}: cannot tell the format from its extension (csv, jsonl, ...)")
        if not Path(path).is_file():
            raise StudyError(f"{path}: no such file")
        file = _File(Path(path), file_format, "requests")
        return self._requests(file, _read_roles(self.con, file, self.roles))

    def records(self, records: object, where: str = "requests") -> pa.Table:
        """The requests of a list of JSON objects (a key for each column ``columns`` names; a
        row is an object's place in the list, from 1): the checks and messages of a file's,
        ``where`` naming it."""
        file = _File(Path(where), "jsonl", "requests")
        return self._requests(
            file, _role_columns(file, _records_table(file, records), self.roles, False)
        )

    def _requests(self, file: _File, raw: pa.Table) -> pa.Table:
        con, columns = self.con, self.columns
        _store(con, file, raw, self.roles, "requests", {})
        if raw.num_rows > 1:
            _check_unique(con, file, "requests", ["id"], self.roles)
        level = "level" if "level" in columns else "null"
        subject = "subject" if "subject" in columns else "null"
        text = "text" if "text" in columns else "null"
        con.execute(
            f"""
            create or replace temp table instance_text as
            select (_row - 1)::bigint as instance_id, id as source_id,
                {level}::smallint as level, {subject}::varchar as subject,
                {text}::varchar as text, {self._empty}
            from requests order by _row
            """
        )
        # the view is made once per connection (a millisecond of each request served)
        rows = _with_text_features(con, self.spec, view_made=self._view_made)
        self._view_made = True
        return rows


def _records_table(file: _File, records: object) -> pa.Table:
    """JSON objects as a table, a column per key any of them has (null where one lacks it;
    a key whose values mix types holds their JSON text, which the checks then name)."""
    if not isinstance(records, list) or not records:
        raise StudyError(f"{file.path}: no records (a JSON object, or a list of them)")
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise StudyError(f"{file.path}: row {row} is not a JSON object")
    columns = {}
    for key in dict.fromkeys(key for record in records for key in record):
        values = [record.get(key) for record in records]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[key] = pa.array(
                [v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                pa.string(),
            )
    return pa.table(columns)


def _declared_lists(spec: DatasetSpec, declared: DeclaredFeatures) -> str:
    """SQL for the two lists of declared feature values, in the study's order (null for a
    feature another dataset declares)."""

    def value(name: str, kind: str) -> str:
        feature = (spec.features or {}).get(name)
        if feature is None:
            return f"null::{kind}"
        table = "q" if feature.file == "log" else "m"
        return f"{table}.{_feature_role(spec, name)}::{kind}"

    numeric = ", ".join(value(n, "double") for n in declared.numeric)
    categorical = ", ".join(value(n, "varchar") for n in declared.categorical)
    return (
        f"list_value({numeric})::double[] as declared_numeric, "
        f"list_value({categorical})::varchar[] as declared_categorical"
    )


def _samples(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pa.Table:
    """The sample rows of the checked file (see the module docstring for each source)."""
    if spec.source == "counts":
        return _count_samples(con)
    if spec.source == "wide":
        return _wide_samples(con, spec)
    columns = spec.columns
    sample = (
        "c.sample"
        if columns.sample is not None
        else "row_number() over (partition by c.id, c.model order by c._row, c._item) - 1"
    )
    answer = _answer_code("c.answer", "c.id") if columns.answer is not None else "null"
    correct = (
        "c.correct"
        if columns.correct is not None
        else "coalesce(trim(c.answer) = trim(c.reference), false)"
    )
    tokens = _tokens_expression(columns.tokens, columns.response, "c.tokens", "c.response")
    prompt = "c.prompt_tokens" if columns.prompt_tokens is not None else "null"
    cost = "c.cost" if columns.cost is not None else "null"
    score = "c.score" if columns.score is not None else "null"
    check = "c.verified" if columns.check is not None else "null"
    query = f"""
        select i.instance_id, c.model, ({sample})::integer as sample_idx,
            ({answer})::integer as answer, {correct} as correct, ({tokens})::bigint as tokens,
            ({prompt})::bigint as prompt_tokens, ({cost})::double as cost,
            ({score})::double as score, ({check})::boolean as verified
        from checked c {_JOIN_IDS} {_SAMPLE_ORDER}"""
    return con.sql(query).to_arrow_table()


def _answer_code(answer: str, instance: str) -> str:
    """SQL for an answer's code within its instance: the dense rank of the distinct answers,
    from 0 (equal text, equal code, whichever model gave it); null for a missing answer."""
    return (
        f"case when {answer} is not null then dense_rank() over "
        f"(partition by {instance}, {answer} is null order by {answer}) - 1 end"
    )


_JOIN_IDS = "join instance_text i on i.source_id = c.id"
_SAMPLE_ORDER = "order by instance_id, model, sample_idx"


def _tokens_expression(tokens: str | None, response: str | None, column: str, text: str) -> str:
    """Output tokens: the logged count, else counted from the response text, else null."""
    if tokens is not None:
        return column
    if response is not None:
        return f"count_tokens({text})"
    return "null"


def _count_samples(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """``n`` sample rows per checked row, the first ``n_correct`` correct, no answers."""
    query = f"""
        select instance_id, model, sample_idx::integer as sample_idx,
            null::integer as answer, sample_idx < n_correct as correct,
            null::bigint as tokens, null::bigint as prompt_tokens, null::double as cost
        from (
            select i.instance_id, c.model, c.n_correct, unnest(range(c.n)) as sample_idx
            from checked c {_JOIN_IDS}
        ) {_SAMPLE_ORDER}"""
    return con.sql(query).to_arrow_table()


def _wide_samples(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pa.Table:
    """One sample per checked row and declared model (its columns ``*_k``)."""
    parts, params = [], {}
    prompt = "c.prompt_tokens" if spec.columns.prompt_tokens is not None else "null"
    for k, (model, model_columns) in enumerate(spec.models.items()):
        params[f"model_{k}"] = model
        tokens = _tokens_expression(
            model_columns.tokens, model_columns.response, f"c.tokens_{k}", f"c.response_{k}"
        )
        cost = f"c.cost_{k}" if model_columns.cost is not None else "null"
        check = f"c.check_{k}" if model_columns.check is not None else "null"
        answer = f"trim(c.answer_{k})" if model_columns.answer is not None else "null"
        parts.append(
            f"select i.instance_id, $model_{k} as model, 0 as sample_idx, "
            f"{answer}::varchar as answer_text, c.correct_{k} as correct, {tokens} as tokens, "
            f"{prompt} as prompt_tokens, {cost} as cost, {check} as verified "
            f"from checked c {_JOIN_IDS}"
        )
    # answers coded per instance across the models (equal text, equal code), as in a samples log
    query = f"""
        select instance_id, model::varchar as model, sample_idx::integer as sample_idx,
            ({_answer_code("answer_text", "instance_id")})::integer as answer,
            correct, tokens::bigint as tokens,
            prompt_tokens::bigint as prompt_tokens, cost::double as cost,
            verified::boolean as verified
        from ({" union all ".join(parts)}) {_SAMPLE_ORDER}"""
    return con.sql(query, params=params).to_arrow_table()
