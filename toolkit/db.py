"""The only module that names an engine.

``connect(url)`` returns an Ibis backend: a DuckDB file by default. Everything else in the
toolkit builds Ibis expressions and hands them to the backend it was given; the few engine
operations Ibis does not cover (DDL from ``sql/``, transactions, bulk Arrow appends) are here.
"""

from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import ibis
import pyarrow as pa

from toolkit.errors import StudyError
from toolkit.resources import sql_dir

FIRST_TABLE = "runs"


def connect(url: str | Path, read_only: bool = False) -> ibis.BaseBackend:
    """Connect to a study database.

    ``url`` is a path to a DuckDB file (created if missing), ``duckdb:///path``, or
    ``:memory:``.
    """
    text = str(url)
    if text.startswith("duckdb://"):
        # duckdb:///abs/path (three slashes: absolute), duckdb://rel/path, duckdb:// (memory)
        text = text.removeprefix("duckdb://") or ":memory:"
    elif "://" in text:
        raise StudyError(f"unsupported database URL {url!r}: use a DuckDB file path")
    return ibis.duckdb.connect(text, read_only=read_only)


def engine_name(backend: ibis.BaseBackend) -> str:
    return backend.name


def raw(backend: ibis.BaseBackend):
    """The DuckDB connection under an Ibis DuckDB backend."""
    return backend.con


def table_files() -> list[Path]:
    """DDL files, one per table, ``runs`` first (every other table keys on it)."""
    files = sorted((sql_dir() / "tables").glob("*.sql"))
    return sorted(files, key=lambda p: (p.stem != FIRST_TABLE, p.stem))


def view_files() -> list[Path]:
    """View definitions, one per view, created in name order (a view may use an earlier one:
    name them so, e.g. with a numeric prefix, if one ever depends on another)."""
    return sorted((sql_dir() / "views").glob("*.sql"))


def create_schema(backend: ibis.BaseBackend) -> None:
    """Create every table and view from ``sql/`` that does not exist yet."""
    con = raw(backend)
    for path in table_files():
        con.execute(path.read_text())
    for path in view_files():
        con.execute(f"create or replace view {path.stem} as\n" + path.read_text())


@contextlib.contextmanager
def transaction(backend: ibis.BaseBackend) -> Iterator[None]:
    """All writes inside land together or not at all."""
    con = raw(backend)
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def append(
    backend: ibis.BaseBackend,
    table: str,
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
    run_id: int,
) -> int:
    """Append Arrow data to ``table`` in bulk, matching columns by name, with ``run_id`` added.

    Returns the number of rows written.
    """
    con = raw(backend)
    batches = [data] if isinstance(data, pa.Table | pa.RecordBatch) else data
    written = 0
    for batch in batches:
        con.register("_toolkit_append", batch)
        try:
            con.execute(
                f"insert into {table} by name select $run_id::integer as run_id, * "
                "from _toolkit_append",
                {"run_id": run_id},
            )
        finally:
            con.unregister("_toolkit_append")
        written += batch.num_rows
    return written


def run_tables(backend: ibis.BaseBackend) -> list[str]:
    """Every base table that keys on run_id."""
    rows = (
        raw(backend)
        .execute(
            "select table_name from information_schema.columns "
            "where column_name = 'run_id' and table_schema = current_schema() "
            "and table_name in (select table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema = current_schema())"
        )
        .fetchall()
    )
    return sorted(name for (name,) in rows)


def register_run(
    backend: ibis.BaseBackend,
    *,
    study: str,
    config_hash: str,
    seed: int,
    config_json: str,
    cost_unit: str,
    aggregation: str,
    samples_per_instance: int | None,
) -> int:
    """Insert the run row and return its id. A previous run of the same study, config and seed
    is deleted first (inside the caller's transaction), so re-running replaces it whole."""
    con = raw(backend)
    previous = con.execute(
        "select run_id from runs where study = ? and config_hash = ? and seed = ?",
        [study, config_hash, seed],
    ).fetchone()
    if previous is not None:
        run_id = int(previous[0])
        for table in run_tables(backend):
            con.execute(f"delete from {table} where run_id = ?", [run_id])
    else:
        run_id = int(con.execute("select coalesce(max(run_id), 0) + 1 from runs").fetchone()[0])
    con.execute(
        "insert into runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            study,
            config_hash,
            seed,
            config_json,
            cost_unit,
            aggregation,
            samples_per_instance,
            engine_name(backend),
            json.dumps(versions(), sort_keys=True),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )
    return run_id


def versions() -> dict[str, str]:
    """Versions of everything that can change a result."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("stl-toolkit", "duckdb", "ibis-framework", "numpy", "scipy", "catboost"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out
