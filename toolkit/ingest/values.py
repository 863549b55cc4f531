"""Checking and converting every value of the roles read from a file: one query for them all,
and, when a value fails, the role-by-role checks that name its row and column."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from toolkit.errors import StudyError
from toolkit.ingest.files import Kind, _File, _is_list, _read_roles, _Role

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


_TRUE_TEXT = "('true', 't', '1', 'yes', 'y')"
_FLAG_TEXT = "('true', 't', '1', 'yes', 'y', 'false', 'f', '0', 'no', 'n')"


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
    return found is not None and found[0] == 0  # (a count: always one row)


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
