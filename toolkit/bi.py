"""BI access: open a study database read-only, run SQL files on it, export its views.

A study database is one DuckDB file. While no study writes to it, any number of readers open
it read-only: this module, the DuckDB CLI, or a BI tool through SQLAlchemy
(``duckdb:////abs/path/study.duckdb?access_mode=read_only`` with the duckdb-engine driver).
Tools that read files instead get the views as Parquet (``export_views``).

The views are defined in ``sql/views/`` (one file per view, file name = view name) and created
in every study database; a database written before a view existed gets it as a temporary view
when opened here, so reports, analyses and exports always see every view.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import duckdb
import ibis
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


def available_views(backend: ibis.BaseBackend) -> list[str]:
    """The toolkit's views an open database has (stored or temporary), in creation order."""
    names = {
        name
        for (name,) in db.raw(backend)
        .execute("select view_name from duckdb_views() where not internal")
        .fetchall()
    }
    return [name for name in view_names() if name in names]


def query_rows(database: str | Path, sql: str) -> list[dict[str, Any]]:
    """Run one SQL query on a study database opened read-only; its rows as dicts."""
    backend = open_read_only(database)
    try:
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


def run_sql_file(sql_file: str | Path, database: str | Path) -> list[dict[str, Any]]:
    """Run an analysis file (e.g. ``sql/analyses/*.sql``) on a study database, read-only."""
    path = Path(sql_file)
    try:
        text = path.read_text()
    except OSError as error:
        raise StudyError(f"{path}: cannot read SQL file: {error.strerror}") from None
    return query_rows(database, text)


HEADLINE_SQL = "analyses/best_policy_per_budget.sql"
"""The ranking of policies per budget that the report's headline and ``stl run``'s summary
show: one definition, the analysis users run themselves."""


def headline_sql() -> str:
    """The text of ``best_policy_per_budget.sql`` as a subquery (no final semicolon)."""
    from toolkit.resources import sql_text

    return sql_text(HEADLINE_SQL).strip().rstrip(";")


def headline_rows(backend: ibis.BaseBackend, run_id: int) -> list[dict[str, Any]]:
    """``best_policy_per_budget.sql`` for one run, on an open study database."""
    text = headline_sql()
    cursor = db.raw(backend).execute(
        f"select * from (\n{text}\n) where run_id = ? order by budget, rank", [run_id]
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


def export_views(database: str | Path, out_dir: str | Path) -> list[Path]:
    """Write every view the database has as ``<out_dir>/<view>.parquet`` (streamed in
    batches); the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backend = open_read_only(database)
    written = []
    try:
        con = db.raw(backend)
        for name in available_views(backend):
            target = out / f"{name}.parquet"
            reader = con.table(name).to_arrow_reader(batch_size=EXPORT_BATCH_ROWS)
            with pq.ParquetWriter(target, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
            written.append(target)
    finally:
        backend.disconnect()
    return written


__all__ = [
    "available_views",
    "analysis_files",
    "export_views",
    "format_table",
    "headline_rows",
    "read_headline",
    "open_read_only",
    "query_rows",
    "run_sql_file",
    "sqlalchemy_url",
    "view_names",
]
