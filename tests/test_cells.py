"""A study allocated separately per dataset and model (``study.separately``, the paper's
protocol): one run per cell, all landing in one transaction, and a report comparing them with
the paper's figures beside the runs'."""

from __future__ import annotations

import json
import re

import duckdb
import pyarrow as pa
import pytest

from tests.conftest import make_study
from toolkit import pipeline
from toolkit.config import load_study, parse_study
from toolkit.errors import StudyError
from toolkit.pipeline import run_study
from toolkit.preflight import check, check_cells
from toolkit.report.paper import benchmark_of
from toolkit.resources import studies_dir
from toolkit.simulate import simulate


def cells_study(**overrides):
    sections = {
        "study": {"name": "cells", "seed": 5, "separately": ["dataset", "model"]},
        "datasets": [
            {"name": "math", "source": "simulate", "preset": "math", "instances": 300},
            {"name": "gsm", "source": "simulate", "preset": "gsm8k", "instances": 300},
        ],
        "models": [{"name": "qwen2.5-7b", "preset": "qwen2.5-7b"}],
        "learn": {"iterations": 30, "seeds": [0]},
        "budgets": {"values": [2.0, 4.0]},
    }
    return make_study(**{**sections, **overrides})


def test_cells_are_named_after_their_dataset_and_model():
    study = make_study(
        study={"name": "grid", "separately": ["dataset", "model"]},
        datasets=[
            {"name": "math", "source": "simulate", "preset": "math", "instances": 100},
            {"name": "gsm", "source": "simulate", "preset": "gsm8k", "instances": 100},
        ],
        models=[
            {"name": "qwen2.5-7b", "preset": "qwen2.5-7b"},
            {"name": "gpt-4o-mini", "preset": "gpt-4o-mini"},
        ],
    )
    cells = study.cells()
    assert [c.study.name for c in cells] == [
        "grid.math.qwen2.5-7b",
        "grid.math.gpt-4o-mini",
        "grid.gsm.qwen2.5-7b",
        "grid.gsm.gpt-4o-mini",
    ]
    assert all(len(c.datasets) == 1 and len(c.models) == 1 for c in cells)
    assert all(c.study.seed == study.study.seed and not c.study.separately for c in cells)
    # per dataset only: each cell keeps every model
    by_dataset = study.model_copy(
        update={"study": study.study.model_copy(update={"separately": ["dataset"]})}
    ).cells()
    assert [(c.study.name, len(c.models)) for c in by_dataset] == [
        ("grid.math", 2),
        ("grid.gsm", 2),
    ]


def _answers(data, model: str):
    """A simulated dataset's answers and correct flags of one model, in sample order."""
    batches = [b for b in data.sample_batches() if b.column("model")[0].as_py() == model]
    table = pa.Table.from_batches(batches)
    return table.column("answer").to_pylist(), table.column("correct").to_pylist()


def test_a_cell_draws_what_the_whole_study_draws_for_it():
    models = [
        {"name": "qwen2.5-7b", "preset": "qwen2.5-7b"},
        {"name": "gpt-4o-mini", "preset": "gpt-4o-mini"},
    ]
    datasets = [
        {"name": "math", "source": "simulate", "preset": "math", "instances": 80},
        {"name": "gsm", "source": "simulate", "preset": "gsm8k", "instances": 80},
    ]
    whole = make_study(study={"name": "grid", "seed": 3}, datasets=datasets, models=models)
    split = make_study(
        study={"name": "grid", "seed": 3, "separately": ["dataset", "model"]},
        datasets=datasets,
        models=models,
    )
    pooled = {d.name: d for d in simulate(whole)}
    cells = {(c.datasets[0].name, c.models[0].name): c for c in split.cells()}
    assert cells["gsm", "gpt-4o-mini"].study.cell == {"datasets": [1], "models": [1]}
    drawn = {key: simulate(cell)[0] for key, cell in cells.items()}
    for (dataset, model), data in drawn.items():
        assert _answers(data, model) == _answers(pooled[dataset], model), (dataset, model)
        # every model of a dataset answers the same questions
        for column in ("level", "subject"):
            assert data.instances.column(column) == pooled[dataset].instances.column(column)
    # independent draws across datasets and across models, not one stream reused
    assert _answers(drawn["math", "qwen2.5-7b"], "qwen2.5-7b") != _answers(
        drawn["gsm", "qwen2.5-7b"], "qwen2.5-7b"
    )
    first, second = (_answers(drawn["math", m["name"]], m["name"])[0] for m in models)
    assert first != second
    # a cell's stored config reruns to the same draws
    rerun = parse_study(cells["gsm", "gpt-4o-mini"].model_dump(mode="json"))
    assert _answers(simulate(rerun)[0], "gpt-4o-mini") == _answers(
        drawn["gsm", "gpt-4o-mini"], "gpt-4o-mini"
    )


def test_a_study_run_as_one_dumps_and_hashes_as_before():
    study = make_study()
    assert {"separately", "cell"}.isdisjoint(study.model_dump(mode="json")["study"])
    assert study.cells() == [study]


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {
                "budgets": {"values": [2.0]},
                "actions": {
                    "samples": [1, 2],
                    "cascades": [
                        {
                            "models": ["qwen2.5-7b", "gpt-4o-mini"],
                            "rule": "first_agree",
                            "cap": 2,
                            "k": [2],
                        }
                    ],
                },
            },
            "study.separately: a run per model has one model, and actions.cascades[0] names models",
        ),
        ({"probe": {"samples": 1, "model": "qwen2.5-7b"}}, "leave probe.model out"),
        ({"study": {"name": "x" * 60, "separately": ["dataset", "model"]}}, "longer than 64"),
    ],
)
def test_what_a_run_per_model_cannot_hold_is_refused(sections, message):
    base = {
        "study": {"name": "grid", "separately": ["model"]},
        "models": [
            {"name": "qwen2.5-7b", "preset": "qwen2.5-7b"},
            {"name": "gpt-4o-mini", "preset": "gpt-4o-mini"},
        ],
    }
    with pytest.raises(StudyError, match=re.escape(message)):
        make_study(**{**base, **sections})


def _counts(name: str, model: str | None = None) -> dict:
    dataset = {
        "name": name,
        "source": "counts",
        "path": f"/nonexistent/{name}.csv",
        "columns": {"id": "id", "n": "n", "n_correct": "k"},
    }
    if model is None:  # the file's model column says whose each row is
        return {**dataset, "columns": {**dataset["columns"], "model": "model"}}
    return {**dataset, "model": model}


def _file_study(separately: list[str], datasets: list[dict], models=("a", "b")):
    return make_study(
        study={"name": "grid", "separately": separately},
        datasets=datasets,
        models=[{"name": m} for m in models],
        actions={"samples": [1, 2], "aggregation": "pass"},
        budgets={"values": [1.5]},
    )


def test_a_file_of_one_model_goes_to_that_models_cells():
    study = _file_study(["dataset", "model"], [_counts("la", "a"), _counts("lb", "b")])
    cells = [(c.study.name, [d.name for d in c.datasets], c.study.cell) for c in study.cells()]
    assert cells == [
        ("grid.la.a", ["la"], {"datasets": [0], "models": [0]}),
        ("grid.lb.b", ["lb"], {"datasets": [1], "models": [1]}),
    ]
    by_model = _file_study(["model"], [_counts("la", "a"), _counts("lb", "b")]).cells()
    assert [[d.name for d in c.datasets] for c in by_model] == [["la"], ["lb"]]


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        ([_counts("log")], "datasets[0] ('log') is a file of several models' outcomes"),
        ([_counts("la", "a")], "models[1] ('b') has no dataset"),
    ],
)
def test_a_run_per_model_refuses_what_it_cannot_split(datasets, message):
    with pytest.raises(StudyError, match=re.escape(message)):
        _file_study(["model"], datasets)


def test_every_cell_is_checked_before_the_run_begins():
    """A split too small for one cell passes the study's check as a whole, not the cell's."""
    study = cells_study(
        datasets=[
            {"name": "math", "source": "simulate", "preset": "math", "instances": 300},
            {"name": "gsm", "source": "simulate", "preset": "gsm8k", "instances": 1},
        ]
    )
    whole = study.model_copy(update={"study": study.study.model_copy(update={"separately": []})})
    check(whole)
    with pytest.raises(
        StudyError, match=re.escape("run 'cells.gsm.qwen2.5-7b' (study.separately): split:")
    ):
        check_cells(study)


def test_benchmark_of_a_run_is_its_presets_or_declared_benchmark():
    assert benchmark_of({"datasets": [{"source": "simulate", "preset": "gsm8k"}]}) == "gsm8k"
    assert benchmark_of({"datasets": [{"source": "counts", "benchmark": "math"}]}) == "math"
    assert benchmark_of({"datasets": [{"source": "counts"}]}) is None
    mixed = [{"source": "simulate", "preset": "math"}, {"source": "simulate", "preset": "gsm8k"}]
    assert benchmark_of({"datasets": mixed}) is None


def test_runs_on_other_actions_than_the_papers_are_said_to_differ():
    from toolkit.report.paper import _differs

    def config(name, **actions):
        return {"study": {"name": name}, "datasets": [], "models": [], "actions": actions}

    same = _differs([config("a", aggregation="majority", cost="samples")], "learned_batch")
    assert not any(s.startswith("Not the paper's actions") for s in same)
    other = _differs(
        [config("a", aggregation="majority"), config("m500", aggregation="pass")], "learned_batch"
    )
    assert other[-1].startswith(
        "Not the paper's actions: m500 (pass@b, a verifier picking any correct sample, cost in "
        "samples)"
    )


def test_the_paper_protocol_study_is_the_papers_setting():
    study = load_study(studies_dir() / "paper_protocol.toml")
    assert [c.study.name for c in study.cells()] == [
        f"paper-protocol.{d}.{m}"
        for d in ("math", "gsm8k")
        for m in ("deepseek-v3", "gpt-4o-mini", "qwen2.5-7b")
    ]
    assert {d.instances for d in study.datasets} == {200}
    assert study.actions.samples == [1, 2, 4, 8, 16] and study.actions.aggregation == "majority"
    assert study.estimation.samples_per_instance == 48
    assert study.split.folds == 5 and len(study.learn.seeds) == 3


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    return run_study(cells_study(), tmp_path_factory.mktemp("cells"))


def test_each_cell_is_a_run_of_its_own_data(landed):
    assert landed.run_ids == [1, 2]
    assert [c.name for c in landed.cells] == ["cells.math.qwen2.5-7b", "cells.gsm.qwen2.5-7b"]
    with duckdb.connect(str(landed.database), read_only=True) as con:
        runs = con.execute("select run_id, study from runs order by run_id").fetchall()
        datasets = con.execute(
            "select run_id, dataset, count(*) from instances group by all order by run_id"
        ).fetchall()
        evaluated = con.execute("select distinct run_id from evaluations order by 1").fetchall()
    assert runs == [(1, "cells.math.qwen2.5-7b"), (2, "cells.gsm.qwen2.5-7b")]
    assert datasets == [(1, "math", 300), (2, "gsm", 300)]
    assert evaluated == [(1,), (2,)]
    # the study's rows are the cells' sums
    assert landed.rows["instances"] == 600
    assert all(cell.headline for cell in landed.cells)


def test_the_report_compares_the_cells_beside_the_paper(landed):
    html = landed.report.read_text()
    assert landed.report.name == "report.html"
    assert re.findall(r'data-run="(\d+)"', html) == ["1", "2"]
    assert 'id="paper"' in html
    assert "up to 12.8%" in html and "over 91.0%" in html
    # one row per cell and budget
    assert len(re.findall(r"<tr data-paper-row", html)) == 2 * 2


def test_a_failing_cell_lands_no_run(tmp_path, monkeypatch):
    calls = []
    evaluate_into = pipeline.evaluate_into

    def failing_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise StudyError("the second cell failed")
        return evaluate_into(*args, **kwargs)

    monkeypatch.setattr(pipeline, "evaluate_into", failing_second)
    with pytest.raises(StudyError, match="the second cell failed"):
        run_study(cells_study(learn={"iterations": 10, "seeds": [0]}), tmp_path / "out")
    assert len(calls) == 2
    assert not (tmp_path / "out").exists(), "nothing of the first cell is left"


def test_a_report_that_fails_after_the_cells_landed_says_how_to_write_it(tmp_path, monkeypatch):
    import toolkit.report

    def failing(*args, **kwargs):
        raise StudyError("no report today")

    monkeypatch.setattr(toolkit.report, "write_comparison", failing)
    study = cells_study(learn={"iterations": 10, "seeds": [0]})
    with pytest.raises(StudyError) as error:
        run_study(study, tmp_path / "out")
    database = tmp_path / "out" / "study.duckdb"
    assert str(error.value) == (
        f"runs 1, 2 landed in {database}, but their report did not: no report today "
        f"(`stl report --db {database} --run 1 --run 2` writes it)"
    )
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone() == (2,)


def test_the_command_prints_each_cells_run_and_ranking(landed, tmp_path):
    from toolkit.cli import summary_lines

    text = "\n".join(summary_lines(landed))
    assert text.startswith(f"runs 1, 2 -> {landed.database}")
    assert "  run 1: cells.math.qwen2.5-7b" in text
    assert "\nrun 2: cells.gsm.qwen2.5-7b\nB = 2 samples per question" in text
    assert json.dumps(landed.rows)  # plain numbers
