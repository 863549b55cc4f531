"""The only module that names an engine.

A study's record is always a DuckDB file (``connect``): reports, ``stl sql`` and BI tools read
it. The core queries (outcome estimation, the oracle and its bisection, features, the
evaluation's reads) run on the study's *engine* (``open_engine``):

- ``duckdb`` (the default): the record itself, one file, with an optional memory limit beyond
  which DuckDB spills to disk;
- ``pyspark://MASTER`` (``pyspark://local[2]`` here, ``pyspark://spark://host:7077`` on a
  cluster): a Spark session through Ibis. Every table a run appends lands in the DuckDB record
  as before (the samples excepted: they stay on the engine) and is also staged as Parquet
  under ``<out>/spark/run-<id>/<table>/`` and registered as a Spark view of the same name, so
  the same Ibis expressions run there.

Everything else in the toolkit builds Ibis expressions and hands them to the ``Engine`` (or
plain Ibis backend) it was given; the few operations Ibis does not cover (DDL from ``sql/``,
transactions, bulk Arrow appends, temporary tables) are here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import platform
import shutil
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toolkit.engine_url import EngineURL, parse_engine_url  # noqa: F401 (db.EngineURL as before)
from toolkit.errors import (
    StudyError,
    interrupts_deferred,
    raise_if_interrupted,
)
from toolkit.resources import sql_dir
from toolkit.schema_docs import ObjectDoc, parse_table_file, parse_view_file

FIRST_TABLE = "runs"


ENGINE_ONLY_TABLES = frozenset({"samples"})
"""Tables a separate engine keeps to itself: the record gets everything else."""

SPARK_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "4g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
"""Spark settings for a session the toolkit starts (``engine.spark_config`` overrides them)."""


def connect(
    url: str | Path, read_only: bool = False, memory_limit: str | None = None
) -> ibis.BaseBackend:
    """Connect to a study database.

    ``url`` is a path to a DuckDB file (created if missing), ``duckdb:///path``, or
    ``:memory:``. With ``memory_limit`` (e.g. ``"4GB"``) DuckDB spills to a temporary
    directory beside the file rather than use more.
    """
    text = str(url)
    if text.startswith("duckdb://"):
        # duckdb:///abs/path (three slashes: absolute), duckdb://rel/path, duckdb:// (memory)
        text = text.removeprefix("duckdb://") or ":memory:"
    elif "://" in text:
        raise StudyError(f"unsupported database URL {url!r}: use a DuckDB file path")
    config: dict[str, object] = {}
    if memory_limit is not None:
        # settings go in as DuckDB config values, never formatted into SQL (a path may hold a ')
        config = {"memory_limit": memory_limit, "preserve_insertion_order": False}
        if text != ":memory:":
            config["temp_directory"] = str(Path(text).with_name(Path(text).name + ".tmp"))
    try:
        backend = ibis.duckdb.connect(text, read_only=read_only, **config)
    except duckdb.IOException as error:
        if read_only or "lock" not in str(error).lower():
            raise  # readers (toolkit.bi) say it their own way
        raise StudyError(
            f"{text}: the database is in use by another process (a BI tool, the DuckDB CLI, "
            "another run); close it and try again"
        ) from None
    return backend


def _spark_session(master: str, config: dict[str, str], warehouse: Path):
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise StudyError(
            "engine pyspark: pyspark is not installed; install the extra with "
            '`pip install -e ".[spark]"` (and a Java 17 runtime)'
        ) from error
    builder = SparkSession.builder.master(master).appName("stl-toolkit")
    settings = {**SPARK_DEFAULTS, "spark.sql.warehouse.dir": str(warehouse), **config}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@dataclass
class Engine:
    """The study's record (a DuckDB backend) and the backend its core queries run on.

    With DuckDB both are the same backend. Stage code calls ``table``, ``to_pyarrow``,
    ``to_pyarrow_batches`` and ``append`` (through the module functions) and never needs to
    know which engine it has.
    """

    store: ibis.BaseBackend
    compute: ibis.BaseBackend
    staging: Path | None = None
    session: Any = None
    """A separate engine's Spark session (``open_engine`` keeps the one it connected with)."""
    _views: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.compute.name

    @property
    def separate(self) -> bool:
        return self.compute is not self.store

    def table(self, name: str) -> ir.Table:
        """A table on the engine (staged by this run) or, failing that, in the record."""
        if not self.separate or name in self._views:
            return self.compute.table(name)
        return self.store.table(name)

    def to_pyarrow(self, expr: ir.Expr, **kwargs):
        return _backend_of(self, expr).to_pyarrow(expr, **kwargs)

    def to_pyarrow_batches(self, expr: ir.Expr, **kwargs):
        return _backend_of(self, expr).to_pyarrow_batches(expr, **kwargs)

    def stage(
        self,
        name: str,
        data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
        schema: pa.Schema | None = None,
    ) -> int:
        """Write ``data`` as Parquet parts of the engine-side table ``name`` and (re)register
        its view. Returns the rows written."""
        assert self.staging is not None
        folder = self.staging / name
        folder.mkdir(parents=True, exist_ok=True)
        written = 0
        for batch in _batches(data):
            table = _finite_or_null(batch)
            if schema is not None:
                table = _conform(table, schema)
            pq.write_table(table, folder / f"part-{len(list(folder.iterdir())):06d}.parquet")
            written += table.num_rows
        if written or name not in self._views:
            self.compute.read_parquet(str(folder), table_name=name)
            self._views[name] = folder
        return written

    def drop_view(self, name: str, *, remove_files: bool = False) -> None:
        """Forget a staged table on a separate engine (its Parquet files stay unless
        ``remove_files``)."""
        self.session.catalog.dropTempView(name)
        folder = self._views.pop(name, None)
        if remove_files and folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def release(self) -> None:
        """Drop this run's views from a separate engine (its session stays up for the next
        run in this process; it ends with the process)."""
        for name in list(self._views):
            self.drop_view(name)


def _batches(data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch]):
    """One Arrow table or batch, or an iterable of them, as an iterable."""
    return [data] if isinstance(data, pa.Table | pa.RecordBatch) else data


def _as_table(batch: pa.Table | pa.RecordBatch) -> pa.Table:
    return pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types (missing ones null)."""
    columns = []
    for target in schema:
        if target.name in table.column_names:
            columns.append(table.column(target.name).cast(target.type))
        else:
            columns.append(pa.nulls(table.num_rows, target.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _backend_of(engine: Engine, expr: ir.Expr) -> ibis.BaseBackend:
    if not engine.separate:
        return engine.store
    backend = ibis.get_backend(expr)
    return engine.compute if backend is engine.compute else engine.store


def as_engine(backend: ibis.BaseBackend | Engine) -> Engine:
    """An Engine for a plain Ibis backend (it is both record and engine)."""
    return backend if isinstance(backend, Engine) else Engine(store=backend, compute=backend)


def open_engine(
    store: ibis.BaseBackend,
    url: str = "duckdb",
    *,
    staging: Path | None = None,
    spark_config: dict[str, str] | None = None,
) -> Engine:
    """The engine a run's core queries use; ``store`` is the run's DuckDB record.

    A separate engine stages tables under ``staging`` (required for it)."""
    parsed = parse_engine_url(url)
    if not parsed.separate:
        return Engine(store=store, compute=store)
    if staging is None:
        raise ValueError("a separate engine needs a staging folder")
    assert parsed.master is not None  # a separate engine's URL names its master
    staging.mkdir(parents=True, exist_ok=True)
    session = _spark_session(parsed.master, spark_config or {}, staging.parent / "warehouse")
    return Engine(
        store=store, compute=ibis.pyspark.connect(session), staging=staging, session=session
    )


def remove_staging(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def temporary_table(backend: ibis.BaseBackend | Engine, data: pa.Table) -> Iterator[ir.Table]:
    """``data`` as a temporary table on the engine, dropped on exit."""
    engine = as_engine(backend)
    name = f"_toolkit_tmp_{uuid.uuid4().hex}"
    if not engine.separate:
        table = engine.compute.create_table(name, data, temp=True)
        try:
            yield table
        finally:
            engine.compute.drop_table(name, force=True)
        return
    engine.stage(name, data)
    try:
        yield engine.compute.table(name)
    finally:
        engine.drop_view(name, remove_files=True)


def engine_name(backend: ibis.BaseBackend | Engine) -> str:
    return backend.name


def raw(backend: ibis.BaseBackend | Engine):
    """The DuckDB connection under an Ibis DuckDB backend (an Engine's record)."""
    return as_engine(backend).store.con


def table_files() -> list[Path]:
    """DDL files, one per table, ``runs`` first (every other table keys on it)."""
    files = sorted((sql_dir() / "tables").glob("*.sql"))
    return sorted(files, key=lambda p: (p.stem != FIRST_TABLE, p.stem))


def view_files() -> list[Path]:
    """View definitions, one per view, created in name order (a view may use an earlier one:
    name them so, e.g. with a numeric prefix, if one ever depends on another)."""
    return sorted((sql_dir() / "views").glob("*.sql"))


def schema_documentation() -> list[ObjectDoc]:
    """The description of every table and view and of each of its columns, read from their
    SQL files (``toolkit.schema_docs``): tables first, then views."""
    return [parse_table_file(path) for path in table_files()] + [
        parse_view_file(path) for path in view_files()
    ]


def create_schema(backend: ibis.BaseBackend) -> None:
    """Create every table and view from ``sql/`` that does not exist yet, and store their
    documentation as DuckDB comments (``COMMENT ON``), where BI tools show it.

    Runs on every run: views are recreated, and comments that differ from the SQL files (a
    database written by an older toolkit, or recreated views) are (re)applied."""
    con = raw(backend)
    _COLUMNS.pop(con, None)
    _check_existing_tables(con)
    for path in table_files():
        con.execute(path.read_text())
    for path in view_files():
        con.execute(f"create or replace view {path.stem} as\n" + path.read_text())
    apply_comments(con, schema_documentation())


def _check_existing_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A database written by an older toolkit, whose tables lack columns this one writes, is a
    clear error (its primary keys may differ too): write to a new folder."""
    existing = {
        (table, column)
        for table, column in con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = current_schema()"
        ).fetchall()
    }
    if not existing:
        return
    tables = {table for table, _ in existing}
    scratch = duckdb.connect()
    try:
        for path in table_files():
            if path.stem not in tables:
                continue
            scratch.execute(path.read_text())
            wanted = [row[0] for row in scratch.execute(f"describe {path.stem}").fetchall()]
            missing = [c for c in wanted if (path.stem, c) not in existing]
            if missing:
                database = con.execute(
                    "select path from duckdb_databases() where database_name = current_database()"
                ).fetchone()
                raise StudyError(
                    f"{database[0] if database else 'the database'}: written by an older "
                    f"version of the toolkit (table {path.stem} has no column "
                    f"{', '.join(missing)}); run into a new --out folder, or remove it"
                )
    finally:
        scratch.close()


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    """A SQL string literal. ``COMMENT ON`` takes no prepared parameter in DuckDB 1.x, so the
    text is quoted here: single quotes doubled, the only escape a DuckDB string literal has
    (backslashes are plain characters). The texts are the toolkit's own SQL files' comments."""
    return "'" + text.replace("'", "''") + "'"


def apply_comments(con: duckdb.DuckDBPyConnection, docs: list[ObjectDoc]) -> int:
    """Set the comment of every documented table, view and column of the database whose
    comment differs; objects and columns the database lacks are skipped. Returns the number
    of comments set (0 when all were current)."""
    objects = dict(
        con.execute(
            "select table_name, comment from duckdb_tables() where database_name = "
            "current_database() and schema_name = current_schema() union all "
            "select view_name, comment from duckdb_views() where database_name = "
            "current_database() and schema_name = current_schema() and not internal"
        ).fetchall()
    )
    columns = {
        (table, column): comment
        for table, column, comment in con.execute(
            "select table_name, column_name, comment from duckdb_columns() where "
            "database_name = current_database() and schema_name = current_schema()"
        ).fetchall()
    }
    statements = []
    for doc in docs:
        if doc.name not in objects:
            continue
        name = _quote_identifier(doc.name)
        if objects[doc.name] != doc.description:
            statements.append(f"comment on {doc.kind} {name} is {_quote_literal(doc.description)}")
        for column, text in doc.columns.items():
            if (doc.name, column) in columns and columns[doc.name, column] != text:
                target = f"{name}.{_quote_identifier(column)}"
                statements.append(f"comment on column {target} is {_quote_literal(text)}")
    for statement in statements:
        con.execute(statement)
    return len(statements)


@contextlib.contextmanager
def transaction(
    backend: ibis.BaseBackend, on_commit: Callable[[], None] | None = None
) -> Iterator[None]:
    """All writes inside land together or not at all. ``on_commit`` is called once they have
    landed, in the same section as the commit, which no Ctrl-C breaks into: a caller knows
    exactly whether an interrupt came before or after."""
    con = raw(backend)
    con.execute("begin transaction")
    try:
        yield
        raise_if_interrupted()  # a Ctrl-C whose KeyboardInterrupt Python dropped
    except BaseException:
        con.execute("rollback")
        raise
    with interrupts_deferred():
        try:
            raise_if_interrupted()  # the last moment a Ctrl-C can still stop it
            con.execute("commit")
        except BaseException as error:
            with contextlib.suppress(duckdb.Error):
                con.execute("rollback")
            if isinstance(error, duckdb.Error):  # a full disk, a folder that turned read-only
                raise StudyError(
                    f"the run could not be committed, nothing was written: {error}"
                ) from None
            raise
        if on_commit is not None:
            on_commit()
    raise_if_interrupted()  # one that came during the commit: after the run landed


def append(
    backend: ibis.BaseBackend | Engine,
    table: str,
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
    run_id: int,
) -> int:
    """Append Arrow data to ``table`` in bulk, matching columns by name, with ``run_id`` added.

    On a separate engine the data is also staged there (and only there for
    ``ENGINE_ONLY_TABLES``). Returns the number of rows written.
    """
    engine = as_engine(backend)
    if not engine.separate:
        return _insert(engine.store, table, _batches(data), run_id)
    schema = engine.store.table(table).schema().to_pyarrow()
    keep = table not in ENGINE_ONLY_TABLES
    columns = _table_columns(engine.store.con, table)
    written = 0
    for batch in _batches(data):
        written += engine.stage(table, _with_run_id(batch, run_id), schema)
        if keep:
            _insert_batch(engine.store.con, table, columns, batch, run_id)
    if written == 0:  # an empty table is still a table on the engine
        engine.stage(table, schema.empty_table())
    return written


def _with_run_id(batch: pa.Table | pa.RecordBatch, run_id: int) -> pa.Table:
    table = _as_table(batch)
    if "run_id" in table.column_names:
        table = table.drop_columns(["run_id"])
    return table.add_column(0, "run_id", pa.array([run_id] * table.num_rows, pa.int32()))


def _insert(store: ibis.BaseBackend, table: str, batches, run_id: int) -> int:
    """Insert Arrow batches into ``table`` by column name, ``run_id`` set, missing columns null.

    Through a relation over each batch, not ``con.register``: inside a transaction DuckDB 1.5
    keeps a registered Arrow object alive until commit, so a 1e7-instance run held every sample
    batch (14 GiB instead of 5 GiB at the simulate stage, measured by ``stl bench scale``)."""
    columns = _table_columns(store.con, table)
    return sum(_insert_batch(store.con, table, columns, batch, run_id) for batch in batches)


def _table_columns(con, table: str) -> list[tuple[str, str]]:
    """(name, type) of every column of ``table``, in order: read once per connection and table
    (a run appends to the same tables a hundred times; ``create_schema``, which alone creates
    them, forgets what was read)."""
    known = _COLUMNS.setdefault(con, {})
    if table not in known:
        known[table] = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = ? and table_schema = current_schema() order by ordinal_position",
            [table],
        ).fetchall()
    return known[table]


_COLUMNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per DuckDB connection, the columns of the tables appended to (``_table_columns``)."""


def _finite_or_null(batch):
    """Floating columns with NaN and inf replaced by null: an undefined number is stored as
    NULL, never as NaN or inf."""
    table = _as_table(batch)
    for index, column in enumerate(table.columns):
        if pa.types.is_floating(column.type):
            finite = pc.is_finite(column)
            if pc.all(pc.or_kleene(finite, pc.is_null(column))).as_py() is False:
                table = table.set_column(
                    index,
                    table.field(index),
                    pc.if_else(finite, column, pa.scalar(None, column.type)),
                )
    return table


def records(backend: ibis.BaseBackend | Engine, table: str, rows: list[dict]) -> pa.Table:
    """Python row dicts as an Arrow table of ``table``'s own column types (from its DDL in
    ``sql/tables``, read back from the record: the one definition of the schema); keys a row
    lacks are null, ``run_id`` is left to ``append``."""
    schema = _stored_schema(raw(backend), table)
    schema = pa.schema([f for f in schema if f.name != "run_id"])
    return pa.Table.from_pylist(rows, schema=schema)


def _stored_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    """The Arrow schema of ``table`` as ``con`` holds it."""
    return con.execute(f"select * from {_identifier(table)} limit 0").arrow().schema


def table_schema(table: str, columns: Sequence[str] | None = None) -> pa.Schema:
    """The Arrow schema of the table ``sql/tables/<table>.sql`` creates (or of its ``columns``,
    in that order), read from that DDL run in an in-memory DuckDB: the one definition, for
    Arrow tables written outside a study database (a saved policy's files)."""
    schema = _ddl_schema(table)
    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


@functools.cache
def _ddl_schema(table: str) -> pa.Schema:
    path = sql_dir() / "tables" / f"{table}.sql"
    if not path.is_file():
        raise ValueError(f"no table {table!r} in sql/tables")
    with duckdb.connect() as con:
        con.execute(path.read_text())
        return _stored_schema(con, table)


def _identifier(name: str) -> str:
    """A table name of the toolkit's own schema, quoted (never a user's value)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a table name: {name!r}")
    return f'"{name}"'


def _insert_batch(con, table: str, columns: list[tuple[str, str]], batch, run_id: int) -> int:
    batch = _finite_or_null(batch)
    names = set(batch.schema.names)
    unknown = sorted(names - {name for name, _ in columns})
    if unknown:
        raise ValueError(f"table {table} has no column(s) {', '.join(unknown)}")
    projection = ", ".join(
        f"{int(run_id)}::integer as run_id"
        if name == "run_id"
        else f'"{name}"'
        if name in names
        else f'null::{kind} as "{name}"'
        for name, kind in columns
    )
    con.from_arrow(batch).project(projection).insert_into(table)
    return batch.num_rows


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


def existing_run(backend: ibis.BaseBackend | Engine, study: str, config_hash: str, seed: int):
    """The id of the run of this study, config and seed already in the database, or None."""
    if "runs" not in as_engine(backend).store.list_tables():
        return None
    row = (
        raw(backend)
        .execute(
            "select run_id from runs where study = ? and config_hash = ? and seed = ?",
            [study, config_hash, seed],
        )
        .fetchone()
    )
    return None if row is None else int(row[0])


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
    engine: str | None = None,
) -> int:
    """Insert the run row and return its id. A previous run of the same study, config and seed
    is deleted first (inside the caller's transaction), so re-running replaces it whole."""
    con = raw(backend)
    previous = existing_run(backend, study, config_hash, seed)
    if previous is not None:
        run_id = previous
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
            engine or engine_name(backend),
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
