"""Reading a data file (CSV, JSONL, JSON, Parquet or ``json_columns``) into a table of the
columns its roles name (``_Role``): column paths into nested values resolved, list-valued
per-sample columns exploded to one row per sample."""

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

from toolkit.errors import StudyError

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


def _metadata_kinds(text_required: bool) -> dict[str, tuple[Kind, bool]]:
    """How a metadata file's (or a request's) columns are read, and which are required."""
    return {
        "id": ("key", True),
        "text": ("text", text_required),
        "level": ("level", False),
        "subject": ("text", False),
    }


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


def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
