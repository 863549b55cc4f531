"""BI access: open a study database read-only, run SQL files on it, export it as Parquet.

A study database is one DuckDB file. While no study writes to it, any number of readers open
it read-only: this module, the DuckDB CLI, or a BI tool through SQLAlchemy
(``duckdb:////abs/path/study.duckdb?access_mode=read_only`` with the duckdb-engine driver).
Tools that read files instead get every table and view as Parquet (``export_study``).

The views are defined in ``sql/views/`` (one file per view, file name = view name) and created
in every study database; a database written before a view existed gets it as a temporary view
when opened here, so reports, analyses and exports always see every view.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from toolkit import db
from toolkit.errors import StudyError

EXPORT_BATCH_ROWS = 1_000_000
"""Rows per batch streamed into a Parquet file: bounds memory for views of any size."""


def sqlalchemy_url(database: str | Path) -> str:
    """The SQLAlchemy URL (duckdb-engine driver) that opens ``database`` read-only."""
    return f"duckdb:///{Path(database).resolve()}?access_mode=read_only"


def view_names() -> list[str]:
    """Every view the toolkit defines, in creation order."""
    return [path.stem for path in db.view_files()]


def open_read_only(database: str | Path) -> ibis.BaseBackend:
    """Open a study database read-only, with every view of ``sql/views`` whose tables it holds.

    Raises StudyError when the file is missing or a study is writing to it (DuckDB lets one
    writer or many readers hold a file, not both).
    """
    path = Path(database)
    if not path.is_file():
        raise StudyError(f"{path}: no study database here (run `stl run --out DIR` first)")
    try:
        backend = db.connect(path, read_only=True)
    except (duckdb.IOException, duckdb.ConnectionException) as error:
        if "not a valid DuckDB database" in str(error):
            raise StudyError(f"{path}: not a DuckDB database (--db names a study.duckdb)") from None
        # another process (IOException) or this one (ConnectionException) holds it for writing
        raise StudyError(
            f"{path}: cannot open read-only while a study writes to it: {error}"
        ) from None
    con = db.raw(backend)
    present = set(available_views(backend))
    for file in db.view_files():
        if file.stem not in present:
            # a read-only file still takes temporary views; a database written by an older
            # toolkit may lack a view's tables, and then lacks the view
            with contextlib.suppress(duckdb.CatalogException):
                con.execute(f"create temporary view {file.stem} as\n" + file.read_text())
    return backend


def run_row(
    backend: ibis.BaseBackend, database: str | Path, run_id: int | None = None
) -> dict[str, Any]:
    """The ``runs`` row of ``run_id`` (the latest run when None); a StudyError naming the
    runs there are when there is no such run."""
    runs = backend.to_pyarrow(backend.table("runs")).to_pylist()
    if not runs:
        raise StudyError(f"{database}: the database holds no run")
    by_id = {row["run_id"]: row for row in runs}
    chosen = max(by_id) if run_id is None else run_id
    if chosen not in by_id:
        known = ", ".join(map(str, sorted(by_id)))
        raise StudyError(f"{database}: no run {chosen} (runs: {known})")
    return by_id[chosen]


def available_views(backend: ibis.BaseBackend) -> list[str]:
    """The toolkit's views an open database has (stored or temporary), in creation order."""
    names = {
        name
        for (name,) in db.raw(backend)
        .execute("select view_name from duckdb_views() where not internal")
        .fetchall()
    }
    return [name for name in view_names() if name in names]


def sandbox(con: duckdb.DuckDBPyConnection, allow_files: str | Path | None = None) -> None:
    """Lock a connection to the database it has open: no other file (``attach``, ``copy ...
    to``, ``read_csv``), no extension install or load, and the configuration locked so a query
    cannot undo it. ``allow_files`` opens one folder (and what is under it) to file access."""
    if allow_files is not None:
        folder = Path(allow_files).resolve()
        if not folder.is_dir():
            raise StudyError(f"--allow-files {allow_files}: not a folder")
        con.execute("set allowed_directories = ?", [[f"{folder}/"]])
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def query_rows(
    database: str | Path, sql: str, allow_files: str | Path | None = None
) -> list[dict[str, Any]]:
    """Run SQL on a study database opened read-only, sandboxed (``sandbox``): its last
    statement's rows as dicts."""
    backend = open_read_only(database)
    try:
        sandbox(db.raw(backend), allow_files)
        try:
            cursor = db.raw(backend).execute(sql)
        except duckdb.Error as error:
            raise StudyError(f"{database}: query failed: {error}") from None
        if cursor.description is None:
            return []
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        backend.disconnect()


def run_sql_file(
    sql_file: str | Path, database: str | Path, allow_files: str | Path | None = None
) -> list[dict[str, Any]]:
    """Run an analysis file (e.g. ``sql/analyses/*.sql``) on a study database, read-only and
    sandboxed: it reads the database and, with ``allow_files``, files under that folder."""
    path = Path(sql_file)
    try:
        text = path.read_text()
    except OSError as error:
        raise StudyError(f"{path}: cannot read SQL file: {error.strerror}") from None
    return query_rows(database, text, allow_files)


HEADLINE_SQL = "analyses/best_policy_per_budget.sql"
"""The ranking of policies per budget that the report's headline and ``stl run``'s summary
show: one definition, the analysis users run themselves."""


def headline_sql() -> str:
    """The text of ``best_policy_per_budget.sql`` as a subquery (no final semicolon)."""
    from toolkit.resources import sql_text

    return sql_text(HEADLINE_SQL).strip().rstrip(";")


def headline_rows(backend: ibis.BaseBackend, run_id: int) -> list[dict[str, Any]]:
    """``best_policy_per_budget.sql`` for one run, on an open study database."""
    return analysis_rows(backend, run_id, HEADLINE_SQL, "budget, rank")


SAVINGS_SQL = "analyses/adaptive_savings.sql"
"""The samples each stopping-rule family needs to match the largest static vote (the report's
adaptive section shows it)."""


def analysis_rows(
    backend: ibis.BaseBackend, run_id: int, analysis: str, order: str
) -> list[dict[str, Any]]:
    """One of the toolkit's analyses (``analysis``: its path under ``sql/``) for one run, on
    an open study database, ordered by ``order`` (the toolkit's own column names)."""
    from toolkit.resources import sql_text

    text = sql_text(analysis).strip().rstrip(";")
    cursor = db.raw(backend).execute(
        f"select * from (\n{text}\n) where run_id = ? order by {order}", [run_id]
    )
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def read_headline(database: str | Path, run_id: int) -> list[dict[str, Any]]:
    """``headline_rows`` of a study database opened read-only."""
    backend = open_read_only(database)
    try:
        return headline_rows(backend, run_id)
    finally:
        backend.disconnect()


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned plain-text table, values as SQL shows them (6 significant digits,
    NULL, true/false); text left-aligned, numbers right-aligned."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(row[column]) for column in columns] for row in rows]
    numeric = [
        all(isinstance(row[column], int | float) or row[column] is None for row in rows)
        for column in columns
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def analysis_files() -> list[Path]:
    """The example analyses shipped with the toolkit."""
    from toolkit.resources import sql_dir

    return sorted((sql_dir() / "analyses").glob("*.sql"))


EXPORT_MANIFEST = "_manifest.json"
"""The file naming what an export holds; its presence marks a folder ``export_study`` may
replace (a leading underscore: Arrow, Spark and DuckDB globs over ``*.parquet`` skip it)."""

PARTITION_COLUMN = "run_id"


@dataclass(frozen=True)
class ExportedObject:
    """One table or view written by ``export_study``: a folder of Parquet files."""

    name: str
    kind: str  # table | view
    rows: int
    partitioned: bool
    """Whether the folder holds one ``run_id=<id>/`` subfolder per run (hive style)."""


def _export_plan(backend: ibis.BaseBackend) -> list[tuple[str, str, bool]]:
    """(name, kind, partitioned) of every base table, then every toolkit view, of an open
    database. The tables that grow with the instances (those with an ``instance_id`` column)
    are partitioned by run; the others, and the views (aggregates), are one file each."""
    rows = (
        db.raw(backend)
        .execute(
            "select table_name, bool_or(column_name = 'instance_id') "
            "and bool_or(column_name = ?) from duckdb_columns() "
            "where database_name = current_database() and schema_name = current_schema() "
            "and table_name in (select table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name = current_schema()) "
            "group by table_name order by table_name",
            [PARTITION_COLUMN],
        )
        .fetchall()
    )
    tables = [(name, "table", bool(partitioned)) for name, partitioned in rows]
    return tables + [(name, "view", False) for name in available_views(backend)]


def _counted(reader: pa.RecordBatchReader, counter: list[int]) -> pa.RecordBatchReader:
    """``reader`` passing its batches through, adding their rows to ``counter[0]``."""

    def batches():
        for batch in reader:
            counter[0] += batch.num_rows
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _write_object(con, name: str, partitioned: bool, folder: Path) -> int:
    """Stream table or view ``name`` into ``folder`` as Parquet; the rows written."""
    reader = con.table(name).to_arrow_reader(batch_size=EXPORT_BATCH_ROWS)
    folder.mkdir()
    counter = [0]
    if partitioned:
        partitioning = ds.partitioning(
            pa.schema([reader.schema.field(PARTITION_COLUMN)]), flavor="hive"
        )
        ds.write_dataset(
            _counted(reader, counter),
            folder,
            format="parquet",
            partitioning=partitioning,
            basename_template="part-{i}.parquet",
            existing_data_behavior="error",
        )
        if counter[0] > 0:
            return counter[0]
        # no rows, no partition: one empty file keeps the folder readable, with its schema
    with pq.ParquetWriter(folder / "part-0.parquet", reader.schema) as writer:
        for batch in _counted(reader, counter):
            writer.write_batch(batch)
    return counter[0]


def _check_export_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise StudyError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_MANIFEST).is_file():
        raise StudyError(
            f"{out}: the folder is not empty and holds no earlier export ({EXPORT_MANIFEST}); "
            "choose a new or empty folder"
        )


def _replace_folder(partial: Path, out: Path) -> None:
    """Move the finished export ``partial`` to ``out``, replacing an earlier export there."""
    if not out.exists():
        partial.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    out.rename(old)
    try:
        partial.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old)


def export_study(database: str | Path, out_dir: str | Path) -> list[ExportedObject]:
    """Write every table and view of a study database as Parquet under ``out_dir``, one folder
    per table or view: ``<out_dir>/<name>/part-0.parquet``, or for the tables that grow with
    the instances one ``run_id=<id>/`` folder per run (hive partitioning); read any of them
    with ``read_parquet('<out_dir>/<name>/**/*.parquet', hive_partitioning = true)``.

    The database is opened read-only (DuckDB then admits no writer, so every table is read
    from the same committed state). The export lands whole or not at all: it is written into
    a temporary folder beside ``out_dir`` and renamed into place, replacing an earlier export
    there (a folder with ``_manifest.json``); any other non-empty folder is refused."""
    out = Path(out_dir)
    _check_export_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    backend = open_read_only(database)
    try:
        partial.mkdir()
        con = db.raw(backend)
        exported = [
            ExportedObject(
                name, kind, _write_object(con, name, partitioned, partial / name), partitioned
            )
            for name, kind, partitioned in _export_plan(backend)
        ]
        manifest = {
            "database": str(Path(database).resolve()),
            "objects": [asdict(item) for item in exported],
            "read_with": "read_parquet('<folder>/<name>/**/*.parquet', hive_partitioning = true)",
        }
        (partial / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _replace_folder(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        backend.disconnect()
    return exported


__all__ = [
    "available_views",
    "analysis_files",
    "ExportedObject",
    "export_study",
    "format_table",
    "headline_rows",
    "read_headline",
    "open_read_only",
    "query_rows",
    "run_sql_file",
    "sandbox",
    "sqlalchemy_url",
    "view_names",
]
