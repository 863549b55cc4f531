"""Column documentation: read from the SQL files, stored as DuckDB comments, seen by BI tools."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy

from toolkit import bi, db
from toolkit.schema_docs import SchemaDocError, parse_table_file, parse_view_file


@pytest.fixture(scope="module")
def schema_db(tmp_path_factory) -> Path:
    """A new study database with the toolkit's schema and nothing else."""
    path = tmp_path_factory.mktemp("docs") / "study.duckdb"
    backend = db.connect(path)
    db.create_schema(backend)
    backend.disconnect()
    return path


@pytest.mark.filterwarnings("ignore:duckdb-engine doesn't yet support reflection on indices")
@pytest.mark.filterwarnings("ignore:Did not recognize type 'list'")  # array columns: no SA type
def test_every_column_of_every_table_and_view_has_its_comment_in_sqlalchemy(schema_db):
    docs = {doc.name: doc for doc in db.schema_documentation()}
    engine = sqlalchemy.create_engine(bi.sqlalchemy_url(schema_db))
    try:
        with engine.connect() as connection:
            inspector = sqlalchemy.inspect(connection)
            tables, views = inspector.get_table_names(), inspector.get_view_names()
            assert sorted(tables) == sorted(path.stem for path in db.table_files())
            assert set(bi.view_names()) <= set(views)
            for name in [*tables, *bi.view_names()]:
                columns = inspector.get_columns(name)
                assert columns, name
                empty = [c["name"] for c in columns if not (c["comment"] or "").strip()]
                assert empty == [], f"{name}: columns without a comment: {empty}"
                # the comment is the SQL file's text, column for column
                assert {c["name"]: c["comment"] for c in columns} == docs[name].columns, name
            for name in tables:
                assert inspector.get_table_comment(name)["text"] == docs[name].description
    finally:
        engine.dispose()


def test_view_and_table_comments_are_in_duckdb_catalog(schema_db):
    with duckdb.connect(str(schema_db), read_only=True) as con:
        views = dict(con.execute("select view_name, comment from duckdb_views()").fetchall())
        tables = dict(con.execute("select table_name, comment from duckdb_tables()").fetchall())
    for name in bi.view_names():
        assert views[name] == parse_view_file(db.sql_dir() / "views" / f"{name}.sql").description
        assert views[name] and not views[name].startswith(f"{name}:")
    assert tables["evaluations"].startswith("Every policy's metrics on the test split")


def test_documented_columns_are_exactly_the_columns_duckdb_creates():
    """The parser reads every column and only columns (not constraints), in DDL order."""
    con = duckdb.connect()
    for path in db.table_files():
        con.execute(path.read_text())
    for path in db.view_files():
        con.execute(f"create view {path.stem} as\n" + path.read_text())
    for doc in db.schema_documentation():
        actual = [
            name
            for (name,) in con.execute(
                "select column_name from duckdb_columns() where table_name = ? "
                "order by column_index",
                [doc.name],
            ).fetchall()
        ]
        assert list(doc.columns) == actual, doc.name


DANGLING = ("the", "a", "an", "or", "and", "(in", "with")


def test_no_column_description_stops_mid_sentence():
    """A description continued on comment-only lines keeps them (a merge once dropped them)."""
    for doc in db.schema_documentation():
        for column, text in doc.columns.items():
            last = text.rstrip().split()[-1].lower()
            assert last not in DANGLING, f"{doc.name}.{column}: {text!r}"
            assert text.count("(") == text.count(")"), f"{doc.name}.{column}: {text!r}"


def test_create_schema_reapplies_changed_or_missing_comments(tmp_path):
    path = tmp_path / "old.duckdb"
    backend = db.connect(path)
    db.create_schema(backend)
    con = db.raw(backend)
    # a database written before the comments existed, or with an outdated one
    con.execute("comment on column outcomes.acc is null")
    con.execute("comment on column runs.seed is 'an old text'")
    con.execute("comment on table runs is null")
    docs = db.schema_documentation()
    assert db.apply_comments(con, docs) == 3
    assert db.apply_comments(con, docs) == 0, "applying current comments again changes nothing"
    db.create_schema(backend)  # recreates the views: their comments come back with them
    comments = dict(
        con.execute(
            "select table_name || '.' || column_name, comment from duckdb_columns() "
            "where table_name in ('outcomes', 'runs', 'policy_frontier')"
        ).fetchall()
    )
    backend.disconnect()
    assert comments["outcomes.acc"].startswith("estimated accuracy of the action")
    assert comments["runs.seed"] == "[study].seed"
    assert comments["policy_frontier.accuracy_ci_high"] == "upper end of that interval"


def test_a_comment_with_quotes_is_stored_verbatim(tmp_path):
    table = tmp_path / "quotes.sql"
    table.write_text(
        "-- It's the 'quoted' table; -- and a dash pair.\n"
        "create table if not exists quotes (\n"
        "    label varchar default '--',  -- the label's text; O'Brien's \"name\"\n"
        "    amount decimal(10, 2)        -- an amount, (10, 2)\n"
        ");\n"
    )
    doc = parse_table_file(table)
    assert doc.columns == {
        "label": "the label's text; O'Brien's \"name\"",
        "amount": "an amount, (10, 2)",
    }
    con = duckdb.connect()
    con.execute(table.read_text())
    assert db.apply_comments(con, [doc]) == 3
    stored = con.execute(
        "select column_name, comment from duckdb_columns() where table_name = 'quotes'"
    ).fetchall()
    assert dict(stored) == doc.columns
    assert con.execute("select comment from duckdb_tables()").fetchone()[0] == doc.description


TABLE = """\
-- Widgets: one row per widget. Key: (run_id, widget_id).
create table if not exists widgets (
    run_id integer not null,           -- the run
    widget_id bigint not null,         -- the widget; a description that goes on
                                       -- over two lines
    shape varchar,{shape}
    primary key (run_id, widget_id)
);
"""


def test_a_table_column_without_a_comment_is_an_error(tmp_path):
    path = tmp_path / "widgets.sql"
    path.write_text(TABLE.format(shape="                     -- round | square"))
    doc = parse_table_file(path)
    assert doc.name == "widgets" and doc.kind == "table"
    assert doc.description == "Widgets: one row per widget. Key: (run_id, widget_id)."
    assert doc.columns == {
        "run_id": "the run",
        "widget_id": "the widget; a description that goes on over two lines",
        "shape": "round | square",
    }
    path.write_text(TABLE.format(shape=""))
    with pytest.raises(SchemaDocError, match=r"widgets.sql:6: column shape has no comment"):
        parse_table_file(path)


def test_a_table_file_named_after_another_table_is_an_error(tmp_path):
    path = tmp_path / "gadgets.sql"
    path.write_text(TABLE.format(shape=" -- round"))
    with pytest.raises(SchemaDocError, match="defines table widgets; name the file widgets.sql"):
        parse_table_file(path)


VIEW = """\
-- gadget_counts: per run, how many gadgets.
--
-- Columns:
--   run_id      the run
--   n_gadgets{n_gadgets}
select run_id, count(*) as n_gadgets from gadgets group by run_id
"""


def test_a_view_column_without_a_description_is_an_error(tmp_path):
    path = tmp_path / "gadget_counts.sql"
    path.write_text(VIEW.format(n_gadgets="   gadgets of the run, of\n--               any kind"))
    doc = parse_view_file(path)
    assert doc.description == "per run, how many gadgets."
    assert doc.columns == {"run_id": "the run", "n_gadgets": "gadgets of the run, of any kind"}
    path.write_text(VIEW.format(n_gadgets=""))
    with pytest.raises(SchemaDocError, match="column n_gadgets has no description"):
        parse_view_file(path)
    path.write_text(VIEW.replace("--   run_id", "--  run_id").format(n_gadgets="   gadgets"))
    with pytest.raises(SchemaDocError, match="gadget_counts.sql:5: .*names aligned"):
        parse_view_file(path)
