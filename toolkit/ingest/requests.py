"""New requests for a deployed policy, read and checked as a metadata file is, as the
``instances`` rows of a study's first dataset (``read_requests``, ``RequestReader``)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

from toolkit.config import FORMAT_BY_SUFFIX, Study
from toolkit.errors import StudyError
from toolkit.ingest.checks import _check_unique
from toolkit.ingest.files import _File, _metadata_kinds, _read_roles, _Role, _role_columns
from toolkit.ingest.rows import DeclaredFeatures, _with_text_features
from toolkit.ingest.values import _store
from toolkit.tokens import register_token_counter


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
