"""Where the SQL files and report templates live.

They sit at the top of the repository (``sql/``, ``reports/``) so that users read and run them
directly; a wheel ships them inside the package as ``toolkit.sql`` and ``toolkit.reports``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _resource_dir(name: str) -> Path:
    local = _REPO_ROOT / name
    if local.is_dir():
        return local
    return Path(str(importlib.resources.files(f"toolkit.{name}")))


def sql_dir() -> Path:
    """The directory of DDL, views and example analyses."""
    return _resource_dir("sql")


def reports_dir() -> Path:
    """The directory of Jinja report templates."""
    return _resource_dir("reports")


def sql_text(relative: str) -> str:
    """The text of one SQL file under ``sql/``."""
    return (sql_dir() / relative).read_text()


def studies_dir() -> Path:
    """Built-in study files (the default study and the real-data studies)."""
    return Path(__file__).resolve().parent / "studies"
