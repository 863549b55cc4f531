"""The codebase's own shape (issue 18): modules and functions a reader can hold, one definition
of each table schema. These read the source as text and syntax trees; nothing runs."""

import ast
import tomllib
from pathlib import Path

import pytest

from toolkit import db

PACKAGE = Path(__file__).resolve().parents[1] / "toolkit"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULE_LINES = 700
FUNCTION_LINES = 80


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_sources_are_found():
    assert len(SOURCES) > 40
    assert PACKAGE / "cli.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_module_is_at_most_700_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MODULE_LINES, f"{_relative(path)}: {lines} lines (split it by responsibility)"


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            yield node.name, node.lineno, node.end_lineno - first + 1


def test_no_function_is_over_80_lines():
    long = [
        f"{_relative(path)}:{line} {name} ({length} lines)"
        for path in SOURCES
        for name, line, length in _functions(ast.parse(path.read_text()))
        if length > FUNCTION_LINES
    ]
    assert not long, "functions over 80 lines: " + "; ".join(long)


def test_the_length_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES))
    tree = ast.parse(f"@decorator\ndef long():\n{body}\n")
    assert list(_functions(tree)) == [("long", 2, FUNCTION_LINES + 2)]


def _schema_literals(tree: ast.AST):
    """Calls ``pa.schema([...])`` over a literal list of fields, and ``pa.field("name", ...)``:
    a table's columns spelled in Python."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "pa"):
            continue
        first = node.args[0] if node.args else None
        if node.func.attr == "schema" and isinstance(first, ast.List | ast.Tuple):
            if any(_named(item) for item in first.elts):
                yield node.lineno
        elif node.func.attr == "schema" and isinstance(first, ast.Dict):
            if any(isinstance(key, ast.Constant) for key in first.keys):
                yield node.lineno
        elif node.func.attr == "field" and isinstance(first, ast.Constant):
            yield node.lineno


def _named(item: ast.expr) -> bool:
    """A ``("name", type)`` pair of a schema literal."""
    return (
        isinstance(item, ast.Tuple) and bool(item.elts) and isinstance(item.elts[0], ast.Constant)
    )


def test_no_arrow_schema_is_spelled_in_python():
    """No table's columns are spelled as an Arrow schema literal: schemas come from
    ``sql/tables`` (``db.table_schema``, ``db.records``, ``db.append`` reading the record's).
    It reads ``pa.schema``/``pa.field`` literals only: a stage building its table's columns
    with ``pa.table({...})`` (``outcomes.table``) is conformed to the DDL by ``db.append``."""
    found = [
        f"{_relative(path)}:{line}"
        for path in SOURCES
        for line in _schema_literals(ast.parse(path.read_text()))
    ]
    assert not found, "Arrow schema literals: " + ", ".join(found)


def test_the_schema_check_sees_a_literal():
    tree = ast.parse(
        'pa.schema([("a", pa.int32())])\npa.field("b", pa.string())\n'
        'pa.schema({"c": pa.int64()})\npa.schema([schema.field("d")])\n'
    )
    assert sorted(_schema_literals(tree)) == [1, 2, 3]


@pytest.fixture(scope="module")
def study_database(tmp_path_factory):
    backend = db.connect(tmp_path_factory.mktemp("schema") / "study.duckdb")
    db.create_schema(backend)
    yield db.raw(backend)
    backend.disconnect()


@pytest.mark.parametrize("path", db.table_files(), ids=lambda p: p.stem)
def test_table_schema_is_the_study_database_one(path, study_database):
    """``db.table_schema`` (the DDL alone, in memory) gives the columns and types of the table a
    study database holds."""
    stored = study_database.execute(f'select * from "{path.stem}" limit 0').arrow().schema
    assert db.table_schema(path.stem) == stored
    assert db.table_schema(path.stem, stored.names[::-1]).names == stored.names[::-1]


def test_table_schema_refuses_an_unknown_table():
    with pytest.raises(ValueError, match="no table 'nope' in sql/tables"):
        db.table_schema("nope")


def test_every_package_ships():
    """A non-editable install ships only the packages pyproject.toml lists: every folder of
    ``toolkit/`` with an ``__init__.py`` must be there."""
    settings = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(settings["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(PACKAGE.parent).parts)
        for init in PACKAGE.rglob("__init__.py")
    }
    assert "toolkit.solve" in found
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
