"""Fuzzed study files: every setting of the default study (and the real studies' dataset
sections) replaced by a hostile value. Each document either validates, or is refused with a
StudyError that names the field it changed; nothing else (no traceback, no other exception).
The CLI on a sample of them: exit 2, one message naming the file, nothing written."""

from __future__ import annotations

import copy
import math
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import default_study_dict, make_study, table_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.config import parse_study
from toolkit.errors import StudyError
from toolkit.pipeline import run_study
from toolkit.resources import studies_dir

REAL = ("math500_llama", "gsm8k_routing", "qwen25math_cot", "qwen25math_rm", "game24_gpt4")


def leaf_paths(node, prefix=()) -> list[tuple]:
    """Every (section, key, index...) path to a scalar or list in a study document."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(leaf_paths(value, (*prefix, key)))
        if not node:
            out.append(prefix)
    elif isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        for index, value in enumerate(node):
            out.extend(leaf_paths(value, (*prefix, index)))
    else:
        out.append(prefix)
    return out


def documents() -> list[dict]:
    docs = [default_study_dict()]
    for name in REAL:
        docs.append(tomllib.loads((studies_dir() / f"{name}.toml").read_text()))
    return docs


DOCUMENTS = documents()
PATHS = sorted(
    {(index, path) for index, doc in enumerate(DOCUMENTS) for path in leaf_paths(doc)},
    key=repr,
)

HOSTILE = st.one_of(
    st.sampled_from(
        [math.inf, -math.inf, math.nan, -1, 0, 10**12, 2**63, -(2**63), 1e308, 0.5, -0.5]
    ),
    st.sampled_from(["", "x", "'; drop table runs; --", "\u00e9\u0000", "1e9", "inf"]),
    st.sampled_from([[], [0], [math.inf], [-1, -1], ["a"], {}, {"maths": 0.7}, True, False]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)


def replaced(doc: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def dropped(doc: dict, path: tuple) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def dotted(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def names_the_field(message: str, path: tuple) -> bool:
    """The message names the changed field, or the section (or list entry) it belongs to."""
    prefixes = [dotted(path[:n]) for n in range(len(path), 0, -1)]
    return any(prefix in message for prefix in prefixes)


FIELD_LINE = re.compile(r"^  (\(top level\)|[a-z_]+(\[\d+\])?(\.[\w.\-]+|\[\d+\])*): \S")
"""One error line: two spaces, the field it is about, a colon, the reason."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(PATHS), value=HOSTILE, drop=st.booleans())
def test_a_hostile_setting_is_refused_naming_a_field_or_accepted(where, value, drop):
    index, path = where
    original = DOCUMENTS[index]
    doc = dropped(original, path) if drop and path else replaced(original, path, value)
    try:
        parse_study(doc, "<fuzzed>", base_dir=studies_dir())
    except StudyError as error:
        header, *lines = str(error).splitlines()
        assert header == "<fuzzed>: invalid study file"
        assert lines and all(FIELD_LINE.match(line) for line in lines), str(error)
        if not drop and len(lines) == 1 and not names_the_field(lines[0], path):
            # a check across sections may name the setting the changed one contradicts
            assert "exceeds" in lines[0] or "infeasible" in lines[0] or "probe" in lines[0], (
                path,
                lines[0],
            )


FIXED_CASES = [
    ("study", "seed", -1),
    ("budgets", "values", [math.inf]),
    ("simulation", "signal_noise", [math.nan]),
    ("estimation", "samples_per_instance", 10**9),
    ("learn", "seeds", [1, 1]),
    ("split", "train", 2.0),
]


def toml_value(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """An output folder holding one finished run of a small default study."""
    folder = tmp_path_factory.mktemp("finished") / "out"
    study = make_study(
        study={"name": "fuzzed", "seed": 3},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 300}],
        estimation={"samples_per_instance": 16},
        learn={"iterations": 20, "seeds": [0]},
    )
    run_study(study, folder, stages=("simulate", "outcomes", "solve", "learn", "evaluate"))
    return folder


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("section", "key", "value"), FIXED_CASES)
@pytest.mark.slow
def test_the_cli_exits_2_on_a_fuzzed_file_and_writes_nothing(
    section, key, value, finished, tmp_path
):
    """Into a folder that holds a finished run: exit 2 naming the file and the field, every
    table's hash unchanged, no file added or removed."""
    text = (studies_dir() / "default.toml").read_text()
    lines, inside, done = [], None, False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.strip("[]")
        if inside == section and stripped.startswith(f"{key} ") and not done:
            line, done = f"{key} = {toml_value(value)}", True
        lines.append(line)
    assert done, (section, key)
    study = tmp_path / "fuzzed.toml"
    study.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    before, files = table_snapshot(out / "study.duckdb"), listing(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", str(study), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2, run.stderr
    assert f"{section}.{key}" in run.stderr or f"{section}:" in run.stderr, run.stderr
    assert str(study) in run.stderr and "Traceback" not in run.stderr
    assert table_snapshot(out / "study.duckdb") == before
    assert listing(tmp_path) == files


CELLS = st.one_of(
    st.sampled_from(["", "-1", "4.5", "1e12", "99999999999999999999", "nan", "inf", '"', "q1"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
    st.integers(-5, 10).map(str),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=st.integers(0, 3), column=st.integers(0, 2), cell=CELLS, truncate=st.integers(0, 40))
@pytest.mark.slow
def test_a_fuzzed_log_is_read_or_refused_naming_the_file(
    row, column, cell, truncate, tmp_path_factory
):
    from test_ingest import GOOD_COUNTS, GOOD_METADATA, counts_study

    from toolkit.ingest import ingest

    folder = tmp_path_factory.mktemp("log")
    lines = [line.split(",") for line in GOOD_COUNTS.splitlines()]
    lines[row][column] = cell
    text = "\n".join(",".join(line) for line in lines) + "\n"
    if truncate:  # a file cut short
        text = text[: max(1, len(text) - truncate)]
    (folder / "counts.csv").write_text(text)
    (folder / "meta.jsonl").write_text(GOOD_METADATA)
    try:
        ingest(counts_study(folder))
    except StudyError as error:
        assert str(folder / "counts.csv") in str(error) or "meta.jsonl" in str(error), str(error)
