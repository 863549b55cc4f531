"""Study files: validation errors name the file and field, and nothing is written."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from toolkit.config import default_study_path, load_study, parse_study
from toolkit.errors import StudyError
from toolkit.resources import studies_dir

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
        "estimation.samples_per_instance: Input should be greater than or equal to 1",
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
    "simulated data, a model without preset or targets": (
        DEFAULT.replace('preset = "qwen2.5-7b"', ""),
        "models[0].accuracy: no value for dataset preset 'math' (model 'qwen2.5-7b')",
    ),
    "tokens beyond 64 bits of cost": (
        DEFAULT.replace(
            'preset = "qwen2.5-7b"', 'preset = "qwen2.5-7b"\noutput_tokens = { math = 1.9e9 }'
        ),
        "models[0].output_tokens.math: Input should be less than or equal to 1000000",
    ),
    "a typo'd dataset key": (
        DEFAULT.replace(
            'preset = "qwen2.5-7b"', 'preset = "qwen2.5-7b"\naccuracy = { maths = 0.7 }'
        ),
        "models[0]: accuracy: 'maths' is not a dataset preset",
    ),
    "infinite noise": (
        DEFAULT.replace("signal_noise = [0.75, 1.5]", "signal_noise = [inf]"),
        "simulation.signal_noise[0]: Input should be a finite number",
    ),
    "infinite concentration": (
        DEFAULT.replace("wrong_concentration = 0.3", "wrong_concentration = inf"),
        "simulation.wrong_concentration: Input should be a finite number",
    ),
    "infinite slope": (
        DEFAULT.replace('preset = "qwen2.5-7b"', 'preset = "qwen2.5-7b"\nlevel_slope = inf'),
        "models[0].level_slope: Input should be a finite number",
    ),
    "infinite budget": (
        DEFAULT.replace("values = [2.0,", "values = [inf,"),
        "budgets.values[0]: Input should be a finite number",
    ),
    "a trillion instances": (
        DEFAULT.replace("instances = 5000", "instances = 1000000000000"),
        "datasets[0].instances: Input should be less than or equal to 100000000",
    ),
    "a trillion iterations": (
        DEFAULT.replace("iterations = 100", "iterations = 1000000000000"),
        "learn.iterations: Input should be less than or equal to 100000",
    ),
    "an infeasible budget": (
        DEFAULT.replace("values = [2.0,", "values = [0.5,"),
        "budgets.values[0]: budget 0.5 is infeasible: with cost in samples",
    ),
    "repeated seeds": (
        DEFAULT.replace("seeds = [0, 1, 2]", "seeds = [0, 0]"),
        "learn: seeds has repeated values: [0, 0]",
    ),
    "simulated data, a model without output tokens": (
        DEFAULT.replace('preset = "qwen2.5-7b"', "accuracy = { math = 0.6 }"),
        "models[0].output_tokens: no value for dataset preset 'math'",
    ),
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


def test_best_of_b_needs_a_score_in_every_dataset_and_no_probe():
    from toolkit.config import parse_study

    simulated = tomllib.loads(
        DEFAULT.replace('aggregation = "majority"', 'aggregation = "best_of"')
    )
    with pytest.raises(
        StudyError, match=r"actions.aggregation: .* datasets\[0\] \(simulated\) has none"
    ):
        parse_study(simulated, "best.toml")
    study = tomllib.loads((studies_dir() / "qwen25math_rm.toml").read_text())
    assert parse_study(study, "rm.toml", base_dir=studies_dir()).actions.aggregation == "best_of"
    unscored = copy.deepcopy(study)
    del unscored["datasets"][0]["columns"]["score"]
    with pytest.raises(StudyError, match=r"datasets\[0\] \(a samples log\) has none"):
        parse_study(unscored, "rm.toml", base_dir=studies_dir())
    with pytest.raises(StudyError, match="probe.samples: a probe is priced for majority"):
        parse_study({**study, "probe": {"samples": 2}}, "rm.toml", base_dir=studies_dir())
    counts = tomllib.loads((studies_dir() / "math500_llama.toml").read_text())
    counts["datasets"][0]["columns"]["score"] = "s"
    with pytest.raises(StudyError, match="columns.score: not used by source 'counts'"):
        parse_study(counts, "counts.toml", base_dir=studies_dir())


@pytest.mark.parametrize("name", ["math500_llama", "gsm8k_routing"])
def test_real_data_models_need_only_a_name_and_keep_their_config_hash(name, tmp_path):
    shipped = default_study_path().with_name(f"{name}.toml")
    text = shipped.read_text()
    assert "accuracy" not in text and "output_tokens" not in text
    study = load_study(shipped)
    assert all(m.preset is None and m.accuracy == {} for m in study.models)
    # the same study with the boilerplate it once needed: the same config, the same hash
    # (the file is written beside the shipped one, so its relative data paths resolve alike)
    data = tomllib.loads(text)
    for model in data["models"]:
        model.update(accuracy={}, output_tokens={})
    from toolkit.config import parse_study

    explicit = parse_study(data, "explicit.toml", base_dir=shipped.parent)
    assert explicit.config_hash() == study.config_hash()
    assert explicit.model_dump() == study.model_dump()


def test_simulated_data_needs_the_targets_of_every_preset_less_model():
    from toolkit.config import parse_study

    data = tomllib.loads(DEFAULT)
    data["datasets"].append(
        {"name": "real", "source": "counts", "path": "c.csv", "model": "local",
         "columns": {"id": "id", "n": "n", "n_correct": "k"}}
    )  # fmt: skip
    data["models"].append({"name": "local"})
    with pytest.raises(StudyError) as caught:
        parse_study(data, "mixed.toml")
    assert str(caught.value).splitlines()[1] == (
        "  models[1].accuracy: no value for dataset preset 'math' (model 'local'); a simulated "
        "dataset needs accuracy = { math = ... } or a model preset"
    )
    data["models"][1].update(accuracy={"math": 0.4}, output_tokens={"math": 300.0})
    study = parse_study(data, "mixed.toml")
    assert study.models[1].accuracy == {"math": 0.4}


def test_every_shipped_study_dumps_to_a_config_that_validates_to_the_same_hash():
    from toolkit.resources import studies_dir

    for path in sorted(studies_dir().glob("*.toml")):
        study = load_study(path)
        again = parse_study(study.model_dump(mode="json"), str(path))
        assert again == study, path.name
        assert again.config_hash() == study.config_hash(), path.name


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-16", "line 1: not UTF-8"), ("latin-1", "line 7: not UTF-8")],
)
def test_a_study_file_not_in_utf8_is_named_with_its_line(encoding, expected, tmp_path):
    study_file = tmp_path / "bad.toml"
    study_file.write_bytes(
        DEFAULT.replace('description = "', 'description = "caf\u00e9 ').encode(encoding)
    )
    done = run_cli("validate", str(study_file), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {study_file}: {expected}"), done.stderr
    assert "Traceback" not in done.stderr


def test_a_byte_order_mark_is_tolerated(tmp_path):
    study_file = tmp_path / "bom.toml"
    study_file.write_bytes(DEFAULT.encode("utf-8-sig"))
    done = run_cli("validate", str(study_file), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
