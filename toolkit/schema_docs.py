"""The documentation of every table and view, read from the SQL files that define them.

The SQL files are the single source; ``toolkit.db.create_schema`` stores what this module reads
as DuckDB comments (``COMMENT ON``), where BI tools (Superset, Metabase, DBeaver) show them.

A table file (``sql/tables/<table>.sql``) opens with a header comment (the table's description)
and documents every column with an inline comment after it::

    -- One row per ... Key: (run_id, ...).
    create table if not exists <table> (
        run_id integer not null,           -- the run (runs.run_id)
        name varchar not null,             -- what it holds; a long description
                                           -- continues on comment-only lines below it
        primary key (run_id, name)         -- constraints need no comment
    );

A view file (``sql/views/<view>.sql``) holds the view's query under a header comment: the
description, then a ``-- Columns:`` block naming every column with its description (a line
indented at least as deep as the descriptions continues the one above it)::

    -- <view>: what one row is ...
    --
    -- Columns:
    --   run_id      the run
    --   share       mean weight on the action; the shares of a level
    --               sum to 1

A column without a description is an error (``SchemaDocError``), so a column added without
documentation fails the tests rather than reaching users undocumented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CONSTRAINT_WORDS = frozenset({"primary", "unique", "check", "foreign", "constraint"})
"""First words of a table-body entry that is a constraint, not a column."""

_CREATE_TABLE = re.compile(
    r"^\s*create\s+table\s+(?:if\s+not\s+exists\s+)?(?P<name>\w+|\"[^\"]+\")\s*\(\s*$",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"^\s*(\w+|\"(?:[^\"]|\"\")+\")")
_VIEW_COLUMN = re.compile(r"^(?P<indent>\s+)(?P<name>\w+)(?:\s{2,}(?P<text>\S.*))?$")


class SchemaDocError(ValueError):
    """A table or view file whose documentation is missing or malformed."""


@dataclass(frozen=True)
class ObjectDoc:
    """A table's or view's description and one description per column, in file order."""

    name: str
    kind: str  # table | view
    description: str
    columns: dict[str, str]


def split_comment(line: str) -> tuple[str, str | None]:
    """(code, comment) of one SQL line: the comment is the text after the first ``--`` outside
    a quoted string or identifier (None without one)."""
    quote = None
    for index, char in enumerate(line):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif line.startswith("--", index):
            return line[:index], line[index + 2 :]
    return line, None


def _comment_text(comment: str) -> str:
    """A comment's text: one leading space dropped, trailing space stripped."""
    return comment.removeprefix(" ").rstrip()


def _header(lines: list[str]) -> list[str]:
    """The comment lines before a file's first line of code."""
    header = []
    for line in lines:
        code, comment = split_comment(line)
        if code.strip():
            break
        if comment is not None:
            header.append(_comment_text(comment))
    return header


def _description(lines: list[str], name: str) -> str:
    """Header lines as the object's description: outer blank lines dropped, a leading
    ``<name>:`` dropped (the comment is attached to the object, so its name is known)."""
    text = "\n".join(lines).strip()
    return text.removeprefix(f"{name}:").strip()


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


@dataclass
class _Entry:
    """One comma-separated entry of a table body (a column or a constraint) as it is read."""

    line: int
    code: str = ""
    comments: list[str] = field(default_factory=list)


def _table_entries(path: Path, body: list[tuple[int, str]]) -> list[_Entry]:
    """Every comma-separated entry of a table body (commas inside parentheses or quotes do not
    separate), with its comments.

    A comment on a line with code belongs to the entry that code ends or continues; a
    comment-only line continues the comment of the entry before it."""
    entries: list[_Entry] = []
    current: _Entry | None = None  # the entry still open (no comma after it yet)
    depth = 0
    for number, line in body:
        code, comment = split_comment(line)
        if not code.strip() and comment is not None and not entries:
            raise SchemaDocError(
                f"{path.name}:{number}: a comment before the first column; put each "
                "column's description after it"
            )
        pieces, depth = _top_level_pieces(code, depth)
        owner = entries[-1] if entries else None
        for index, piece in enumerate(pieces):
            if piece.strip():
                if current is None:
                    current = _Entry(number)
                    entries.append(current)
                current.code = f"{current.code} {piece.strip()}".strip()
            owner = current or owner
            if index < len(pieces) - 1:  # a comma follows: the entry ends here
                current = None
        if comment is not None:
            assert owner is not None  # a comment before any entry was refused above
            owner.comments.append(_comment_text(comment))
    return entries


def _top_level_pieces(code: str, depth: int) -> tuple[list[str], int]:
    """``code`` cut at its commas outside parentheses and quotes (``depth``: parentheses open
    before it), and the depth after it."""
    pieces, start, quote = [], 0, None
    for index, char in enumerate(code):
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "," and depth == 0:
            pieces.append(code[start:index])
            start = index + 1
    pieces.append(code[start:])
    return pieces, depth


def parse_table_file(path: Path) -> ObjectDoc:
    """The documentation of ``sql/tables/<table>.sql``. Raises SchemaDocError for a file that
    is not ``create table [if not exists] <name> (`` with one column or constraint per entry,
    or a column without its comment."""
    lines = path.read_text().splitlines()
    start = next(
        (i for i, line in enumerate(lines) if _CREATE_TABLE.match(split_comment(line)[0])), None
    )
    if start is None:
        raise SchemaDocError(
            f"{path.name}: no `create table [if not exists] <name> (` line (the opening "
            "parenthesis ends the line)"
        )
    opening = _CREATE_TABLE.match(split_comment(lines[start])[0])
    assert opening is not None  # the line found above
    name = _unquote(opening["name"])
    if name != path.stem:
        raise SchemaDocError(f"{path.name}: defines table {name}; name the file {name}.sql")
    end, depth = None, 1
    for index in range(start + 1, len(lines)):
        _, depth = _top_level_pieces(split_comment(lines[index])[0], depth)
        if depth <= 0:
            end = index
            break
    if end is None or split_comment(lines[end])[0].strip().rstrip(";").strip() != ")":
        raise SchemaDocError(
            f"{path.name}: the column list must close with `);` on a line of its own"
        )
    body = [(i + 1, lines[i]) for i in range(start + 1, end)]
    columns: dict[str, str] = {}
    for entry in _table_entries(path, body):
        number, code, comments = entry.line, entry.code, entry.comments
        identifier = _IDENTIFIER.match(code)
        if identifier is None:
            raise SchemaDocError(f"{path.name}:{number}: cannot read a column name in {code!r}")
        word = identifier.group(1)
        if word.lower() in CONSTRAINT_WORDS:
            continue
        column = _unquote(word)
        text = " ".join(part.strip() for part in comments if part.strip())
        if not text:
            raise SchemaDocError(
                f"{path.name}:{number}: column {column} has no comment; document it with "
                f"`-- what it holds` after its definition"
            )
        if column in columns:
            raise SchemaDocError(f"{path.name}:{number}: column {column} is defined twice")
        columns[column] = text
    if not columns:
        raise SchemaDocError(f"{path.name}: table {name} has no columns")
    return ObjectDoc(name, "table", _description(_header(lines), name), columns)


def parse_view_file(path: Path) -> ObjectDoc:
    """The documentation of ``sql/views/<view>.sql`` (the view is named after the file).
    Raises SchemaDocError without a ``-- Columns:`` block or for a column without a
    description."""
    name = path.stem
    header = _header(path.read_text().splitlines())
    marker = next((i for i, line in enumerate(header) if line.strip() == "Columns:"), None)
    if marker is None:
        raise SchemaDocError(f"{path.name}: the header has no `-- Columns:` block")
    columns: dict[str, list[str]] = {}
    indent, text_at, last = None, None, None  # the names' indent, where the last text starts
    for offset, line in enumerate(header[marker + 1 :], start=marker + 2):
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if last is not None and text_at is not None and depth >= text_at:
            columns[last].append(line.strip())  # continues the description above
            continue
        entry = _VIEW_COLUMN.match(line)
        if entry is None or (indent is not None and depth != indent):
            raise SchemaDocError(
                f"{path.name}:{offset}: expected `--   column  description`, the names aligned"
            )
        indent, last = depth, entry["name"]
        text_at = entry.start("text") if entry["text"] else depth + len(last) + 2
        if last in columns:
            raise SchemaDocError(f"{path.name}:{offset}: column {last} is listed twice")
        columns[last] = [entry["text"]] if entry["text"] else []
    for column, parts in columns.items():
        if not parts:
            raise SchemaDocError(f"{path.name}: column {column} has no description")
    if not columns:
        raise SchemaDocError(f"{path.name}: the `-- Columns:` block lists no columns")
    description = _description(header[:marker], name)
    return ObjectDoc(name, "view", description, {c: " ".join(p) for c, p in columns.items()})


__all__ = ["ObjectDoc", "SchemaDocError", "parse_table_file", "parse_view_file", "split_comment"]
