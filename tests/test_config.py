"""Study files: validation errors name the file and field, and nothing is written."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from toolkit.config import default_study_path, load_study
from toolkit.errors import StudyError

DEFAULT = default_study_path().read_text()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True
    )


def test_default_study_is_valid():
    study = load_study(default_study_path())
    assert study.estimation.samples_per_instance == 48
    assert study.actions.samples == [1, 2, 4, 8, 16]
    assert len(study.config_hash()) == 12


BAD_STUDIES = {
    "unknown key": (
        DEFAULT.replace("[estimation]", "[estimation]\nsample_per_instance = 3"),
        "estimation.sample_per_instance: unknown key",
    ),
    "wrong type": (
        DEFAULT.replace("instances = 5000", 'instances = "many"'),
        "datasets[0].instances",
    ),
    "negative count": (
        DEFAULT.replace("samples_per_instance = 48", "samples_per_instance = -48"),
        "estimation.samples_per_instance: Input should be greater than 0",
    ),
    "negative budget": (
        DEFAULT.replace("values = [2.0,", "values = [-2.0,"),
        "budgets.values[0]",
    ),
    "split not summing to one": (
        DEFAULT.replace("test = 0.2", "test = 0.3"),
        "split: train + validation + test must be 1",
    ),
    "b above the stored samples": (
        DEFAULT.replace("samples = [1, 2, 4, 8, 16]", "samples = [1, 2, 4, 8, 64]"),
        "b = 64 exceeds estimation.samples_per_instance = 48",
    ),
    "unknown model preset": (
        DEFAULT.replace('preset = "qwen2.5-7b"', 'preset = "qwen9"'),
        "models[0]: unknown model preset 'qwen9'",
    ),
    "not TOML": ("[study\nname = 1", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_STUDIES))
def test_malformed_study_exits_nonzero_names_field_writes_nothing(case, tmp_path):
    text, expected = BAD_STUDIES[case]
    study_file = tmp_path / "bad.toml"
    study_file.write_text(text)
    out = tmp_path / "out"
    done = run_cli("run", str(study_file), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert str(study_file) in done.stderr
    assert expected in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_errors_list_every_bad_field(tmp_path):
    data = tomllib.loads(DEFAULT)
    data["learn"]["depth"] = 0
    data["split"]["train"] = "most"
    from toolkit.config import parse_study

    with pytest.raises(StudyError) as caught:
        parse_study(data, "two-errors.toml")
    message = str(caught.value)
    assert "learn.depth" in message and "split.train" in message
    assert message.startswith("two-errors.toml: invalid study file")


def test_validate_command_prints_resolved_config(tmp_path):
    done = run_cli("validate", str(default_study_path()), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"samples_per_instance": 48' in done.stdout
    printed = json.loads(done.stdout)
    (model,) = printed["models"]
    assert model["preset"] == "qwen2.5-7b" and model["accuracy"]["math"] == 0.755
    assert printed["engine"]["url"] == "duckdb"


def test_repeated_budgets_are_refused():
    data = tomllib.loads(DEFAULT.replace("values = [2.0, 3.0,", "values = [2.0, 2.0,"))
    from toolkit.config import parse_study

    with pytest.raises(StudyError, match="budgets: values has repeated budgets"):
        parse_study(data, "dup.toml")


def test_pass_at_b_above_the_stored_samples_is_refused_in_simulation():
    text = DEFAULT.replace('aggregation = "majority"', 'aggregation = "pass"').replace(
        "samples = [1, 2, 4, 8, 16]", "samples = [1, 2, 4, 8, 64]"
    )
    from toolkit.config import parse_study

    with pytest.raises(StudyError, match="b = 64 exceeds estimation.samples_per_instance = 48"):
        parse_study(tomllib.loads(text), "pass.toml")
