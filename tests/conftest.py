"""Shared fixtures: small studies built from the default one, and the shared real data."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import duckdb
import pytest

from toolkit.config import Study, default_study_path, parse_study

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(items) -> None:
    """A test on Spark is slow too (a JVM starts): ``-m "not slow"`` leaves it out."""
    for item in items:
        if item.get_closest_marker("spark") is not None:
            item.add_marker(pytest.mark.slow)


def default_study_dict() -> dict:
    return tomllib.loads(default_study_path().read_text())


def make_study(**overrides) -> Study:
    """The default study with sections updated: make_study(datasets=[...], study={"seed": 3})."""
    data = copy.deepcopy(default_study_dict())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_study(data, "<test study>")


@pytest.fixture
def small_study() -> Study:
    """A quick simulated MATH study: 1,500 instances, 48 samples each."""
    return make_study(
        study={"name": "small", "seed": 7},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 1500}],
    )


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared real data is not at {SHARED_DATA}")
    return SHARED_DATA


def table_snapshot(path: Path) -> dict[str, tuple]:
    """Every table's row count and an order-free hash of its rows: equal before and after
    means the database was left as it was."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()]
        return {
            t: con.execute(f'select count(*), hash(list(t order by all)) from "{t}" t').fetchone()
            for t in tables
        }
