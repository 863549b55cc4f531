"""Importers: real logs land in instances and samples with the known facts; bad input fails
with a message naming file, row and column, and leaves an existing database as it was."""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import default_study_dict, table_snapshot
from toolkit import bi, report
from toolkit.config import Study, load_study, parse_study
from toolkit.errors import StudyError
from toolkit.ingest import ingest
from toolkit.pipeline import run_study
from toolkit.resources import studies_dir

MATH500 = studies_dir() / "math500_llama.toml"
GSM8K = studies_dir() / "gsm8k_routing.toml"
MIXTRAL, GPT4 = "mixtral-8x7b", "gpt-4"


def tiny_study(base_dir: Path, dataset: dict, **sections: dict) -> Study:
    """A study over small files in ``base_dir``: one real-data model m1, pass@b, b in {1, 2}."""
    data = copy.deepcopy(default_study_dict())
    data["study"] = {"name": "tiny", "seed": 1}
    data["datasets"] = [{"name": "tiny", **dataset}]
    data["models"] = [{"name": "m1", "accuracy": {}, "output_tokens": {}}]
    data["actions"] = {"samples": [1, 2], "aggregation": "pass", "cost": "samples"}
    data["estimation"] = {"samples_per_instance": 4}
    data["budgets"] = {"values": [1.5, 2.0]}
    data.update(sections)
    return parse_study(data, "<tiny study>", base_dir=base_dir)


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


# --------------------------------------------------------------------------------------------
# The real studies: loader facts from ../shared/data/README.md
# --------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_math500_counts_match_the_known_facts(shared_data):
    (data,) = ingest(load_study(MATH500))
    instances = data.instances.to_pandas()
    samples = data.samples.to_pandas()
    assert len(instances) == 500 and instances.source_id.is_unique
    assert instances.text.notna().all() and instances.prompt_tokens.gt(0).all()
    per_instance = samples.groupby("instance_id").correct.agg(["size", "mean"])
    assert (per_instance["size"] == 1280).all()
    assert per_instance["mean"].mean() == pytest.approx(0.2386, abs=5e-5)
    by_level = per_instance.join(instances.set_index("instance_id").level).groupby("level")
    np.testing.assert_allclose(
        by_level["mean"].mean().to_numpy(), [0.499, 0.390, 0.292, 0.176, 0.0715], atol=6e-4
    )
    assert samples.answer.isna().all() and samples.tokens.isna().all()


@pytest.mark.shared_data
def test_gsm8k_routing_matches_the_known_facts(shared_data):
    (data,) = ingest(load_study(GSM8K))
    samples = data.samples.to_pandas()
    assert data.instances.num_rows == 1319
    assert samples.groupby("model").size().to_dict() == {MIXTRAL: 1319, GPT4: 1319}
    correct = samples.pivot(index="instance_id", columns="model", values="correct")
    assert correct[MIXTRAL].mean() == pytest.approx(0.638, abs=5e-4)
    assert correct[GPT4].mean() == pytest.approx(0.857, abs=5e-4)
    mixtral, gpt4 = correct[MIXTRAL], correct[GPT4]
    assert int((mixtral & gpt4).sum()) == 747
    assert int((gpt4 & ~mixtral).sum()) == 383
    assert int((mixtral & ~gpt4).sum()) == 95
    assert int((~mixtral & ~gpt4).sum()) == 94
    # every prompt joined a GSM8K test question; tokens were counted from every response
    gsm8k = [json.loads(line)["question"] for line in (shared_data / "gsm8k_test.jsonl").open()]
    assert data.instances.column("text").to_pylist() == gsm8k
    assert samples.tokens.gt(0).all()


@pytest.mark.shared_data
def test_best_of_b_by_the_logged_reward_model_gives_the_known_facts(shared_data, tmp_path):
    """The Qwen2.5-Math log with its reward-model scores: best-of-b over b-subsets of the 8,
    as the data README states it (0.9279, 0.9361, 0.94), and to 1e-12 per problem against every
    b-subset of the raw file; the halves' estimates (oracle noise) use the same rule."""
    study = load_study(studies_dir() / "qwen25math_rm.toml")
    result = run_study(study, tmp_path, stages=("ingest", "outcomes"))
    rows = [json.loads(line) for line in (shared_data / "qwen25math_math_cot_100.jsonl").open()]
    with duckdb.connect(str(result.database), read_only=True) as con:
        stored = con.execute(
            "select i.source_id, a.b, o.acc, o.acc_half_a from outcomes o "
            "join actions a using (run_id, action_id) join instances i using (run_id, instance_id)"
        ).fetchall()
        scored = con.execute("select count(*), count(score) from samples").fetchone()
    assert scored == (800, 800)
    acc = {(source, b): value for source, b, value, _ in stored}
    mean = {b: np.mean([acc[(str(r["idx"]), b)] for r in rows]) for b in (1, 2, 4, 8)}
    assert [round(mean[b], 4) for b in (1, 2, 4, 8)] == [0.91, 0.9279, 0.9361, 0.94]
    for row in rows[:25]:
        scores = [entry[0] for entry in row["pred_score"]]
        for b in (2, 4):
            subsets = list(itertools.combinations(range(8), b))
            expected = 0.0
            for subset in subsets:
                top = max(scores[i] for i in subset)
                best = [i for i in subset if scores[i] == top]
                expected += sum(bool(row["score"][i]) for i in best) / len(best) / len(subsets)
            assert acc[(str(row["idx"]), b)] == pytest.approx(expected, abs=1e-12)
    halves = [half for _, b, _, half in stored if b <= 4]
    assert all(half is not None and 0 <= half <= 1 for half in halves)


@pytest.mark.shared_data
@pytest.mark.slow
def test_run_study_on_the_real_studies_gives_the_known_outcomes(shared_data, tmp_path):
    math = run_study(load_study(MATH500), tmp_path / "math", stages=("ingest", "outcomes"))
    gsm8k = run_study(load_study(GSM8K), tmp_path / "gsm8k", stages=("ingest", "outcomes"))
    # 9 actions, and the same 9 after the study's probe of one sample (toolkit.probe)
    assert math.rows == {
        "instances": 500,
        "samples": 640_000,
        "actions": 18,
        "outcomes": 9000,
        "probes": 500,
        "reference_curves": 18,  # the published coverage and majority curves, 9 b each
    }
    assert "ingest" in math.stage_seconds

    with duckdb.connect(str(math.database), read_only=True) as con:
        pass_at = dict(
            con.execute(
                "select a.b, avg(o.acc) from outcomes o join actions a using (run_id, action_id) "
                "where a.menu = 'static' group by a.b"
            ).fetchall()
        )
        by_level = con.execute(
            "select i.level, avg(o.acc) from outcomes o join actions a using (run_id, action_id) "
            "join instances i using (run_id, instance_id) where a.b = 1 and a.menu = 'static' "
            "group by 1 order by 1"
        ).fetchall()
    assert pass_at[1] == pytest.approx(0.2386, abs=5e-5)
    np.testing.assert_allclose(
        [acc for _, acc in by_level], [0.499, 0.390, 0.292, 0.176, 0.0715], atol=6e-4
    )
    # cross-check: the same run's published coverage curve (within-session estimator, so close,
    # not equal, at small b)
    curves = json.loads((shared_data / "math500_llama32_1b_curves.json").read_text())
    coverage = dict(
        zip(curves["within_session"]["sel_grid"], curves["within_session"]["coverage"], strict=True)
    )
    for b in (1, 2, 4, 8):
        assert pass_at[b] == pytest.approx(coverage[b], abs=5e-3)
    assert all(pass_at[b] < pass_at[2 * b] for b in (1, 2, 4, 8, 16, 32, 64, 128))
    # the report's cross-check reads the same curves from reference_curves beside the run's
    # pass@b; the majority curve needs answers, which correct counts lack
    backend = bi.open_read_only(math.database)
    try:
        cross = report.build_context(backend, math.run_id, str(math.database)).reference
    finally:
        backend.disconnect()
    assert cross is not None and cross.aggregation == "pass"
    published = {(r.curve, r.b): r.published for r in cross.rows}
    assert published == {
        **{("coverage", b): coverage[b] for b in coverage},
        **dict(
            zip(
                [("majority", b) for b in curves["within_session"]["sel_grid"]],
                curves["within_session"]["selection"],
                strict=True,
            )
        ),
    }
    ours = {(r.curve, r.b): r.ours for r in cross.rows}
    assert all(ours[("majority", b)] is None for b in coverage)
    assert all(ours[("coverage", b)] == pytest.approx(pass_at[b], abs=1e-12) for b in coverage)
    assert len(cross.charts) == 1

    with duckdb.connect(str(gsm8k.database), read_only=True) as con:
        per_model = con.execute(
            "select a.model, avg(o.acc), avg(o.cost), "
            "max(abs(o.cost - (i.prompt_tokens * p.price_in + s.tokens * p.price_out) / 1e6)) "
            "from outcomes o join actions a using (run_id, action_id) "
            "join instances i using (run_id, instance_id) "
            "join samples s using (run_id, instance_id, model) "
            "join (values ('mixtral-8x7b', 0.6, 0.6), ('gpt-4', 10.0, 30.0)) "
            "    p(model, price_in, price_out) using (model) "
            "where a.menu = 'static' group by 1"
        ).fetchall()
    facts = {model: (acc, cost, error) for model, acc, cost, error in per_model}
    assert facts[MIXTRAL][0] == pytest.approx(0.638, abs=5e-4)
    assert facts[GPT4][0] == pytest.approx(0.857, abs=5e-4)
    assert max(facts[MIXTRAL][2], facts[GPT4][2]) < 1e-12
    # the declared budgets lie between all-Mixtral and all-GPT-4
    budgets = load_study(GSM8K).budgets.values
    assert facts[MIXTRAL][1] < min(budgets) and max(budgets) < facts[GPT4][1]


# --------------------------------------------------------------------------------------------
# Malformed input: a clear message, and the existing database exactly as it was
# --------------------------------------------------------------------------------------------
GOOD_COUNTS = "id,n,n_correct\nq1,4,1\nq2,4,0\nq3,4,4\n"
GOOD_METADATA = jsonl(
    [{"uid": f"q{i}", "problem": f"What is {i} + {i}?", "level": i} for i in (1, 2, 3)]
)

MALFORMED = {
    "missing column": (
        "counts.csv",
        "id,n\nq1,4\n",
        "counts.csv: no column 'n_correct' (named by datasets[0].columns.n_correct); it has: id, n",
    ),
    "wrong type": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,4,two\n",
        "counts.csv: row 2, column 'n_correct': expected a whole number, got 'two'",
    ),
    "fraction for a count": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,4.5,1\n",
        "counts.csv: row 2, column 'n': expected a whole number, got '4.5'",
    ),
    "missing value": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,,1\n",
        "counts.csv: row 2, column 'n': missing value",
    ),
    "empty file": ("counts.csv", "", "counts.csv: the file is empty"),
    "header only": ("counts.csv", "id,n,n_correct\n", "counts.csv: no rows"),
    "duplicate id": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,4,0\nq1,4,2\n",
        "counts.csv: rows 1 and 3 repeat the key id = 'q1', model = 'm1' (columns 'id')",
    ),
    "negative count": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,4,-1\n",
        "counts.csv: row 2, column 'n_correct': cannot be negative, got -1",
    ),
    "n_correct above n": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,4,5\n",
        "counts.csv: row 2: n_correct = 5 (column 'n_correct') exceeds n = 4 (column 'n')",
    ),
    "fewer samples than b": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,1,0\n",
        "counts.csv: id 'q2' has 1 sample(s) from model 'm1'; actions.samples needs at least b = 2",
    ),
    "fewer samples than declared": (
        "counts.csv",
        "id,n,n_correct\nq1,3,1\nq2,3,0\nq3,2,1\n",
        "counts.csv (dataset 'tiny') holds at most 3 samples per instance and model (id 'q1', "
        "model 'm1'): declare 3",
    ),
    "a count beyond 64 bits": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,99999999999999999999,1\n",
        "counts.csv: row 2, column 'n': expected a whole number, got '99999999999999999999'",
    ),
    "a count beyond the declared samples": (
        "counts.csv",
        "id,n,n_correct\nq1,4,1\nq2,1000000000,1\n",
        "counts.csv: row 2: n = 1000000000 (column 'n') is more than "
        "estimation.samples_per_instance = 4 samples",
    ),
    "metadata without an id": (
        "meta.jsonl",
        GOOD_METADATA.splitlines(keepends=True)[0],
        "meta.jsonl: no row with id 'q2' (column 'uid'), which",
    ),
    "metadata duplicate id": (
        "meta.jsonl",
        GOOD_METADATA + jsonl([{"uid": "q2", "problem": "again", "level": 1}]),
        "meta.jsonl: rows 2 and 4 repeat the key id = 'q2' (columns 'uid')",
    ),
    "metadata wrong type": (
        "meta.jsonl",
        GOOD_METADATA.replace('"level": 2', '"level": "hard"'),
        "meta.jsonl: row 2, column 'level': expected a level (a whole number, or text ending "
        "in one), got 'hard'",
    ),
    "metadata level beyond 16 bits": (
        "meta.jsonl",
        GOOD_METADATA.replace('"level": 2', '"level": 99999'),
        "meta.jsonl: row 2, column 'level': at most 32,767, got 99999",
    ),
    "not JSON": ("meta.jsonl", "{not json\n", "meta.jsonl: cannot read it as jsonl"),
    "JSONL broken on line 3": (
        "meta.jsonl",
        GOOD_METADATA.replace('"level": 3}', '"level": 3'),
        "meta.jsonl: cannot read it as jsonl: malformed JSON at line 3",
    ),
    "a CSV field longer than a line may be": (
        "counts.csv",
        GOOD_COUNTS + 'q4,4,"' + "x" * 3_000_000 + '"\n',
        "counts.csv: cannot read it as csv: Maximum line size of 2000000 bytes exceeded",
    ),
}


def counts_study(base_dir: Path) -> Study:
    return tiny_study(
        base_dir,
        {
            "source": "counts",
            "path": "counts.csv",
            "model": "m1",
            "columns": {"id": "id", "n": "n", "n_correct": "n_correct"},
            "metadata": {
                "path": "meta.jsonl",
                "columns": {"id": "uid", "text": "problem", "level": "level"},
            },
        },
    )


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_names_the_problem_and_leaves_the_database(case, tmp_path):
    file_name, text, expected = MALFORMED[case]
    (tmp_path / "counts.csv").write_text(GOOD_COUNTS)
    (tmp_path / "meta.jsonl").write_text(GOOD_METADATA)
    study = counts_study(tmp_path)
    good = run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    before = table_snapshot(good.database)
    assert before["samples"][0] == 12 and before["outcomes"][0] == 6

    # the same study (same config hash, so the run would replace the good one) on a bad file
    (tmp_path / file_name).write_text(text)
    with pytest.raises(StudyError) as error:
        run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    assert f"{tmp_path}/{expected}" in str(error.value)
    assert table_snapshot(good.database) == before


def test_a_failed_import_into_a_new_folder_leaves_no_database(tmp_path):
    (tmp_path / "counts.csv").write_text("id,n,n_correct\nq1,4,9\n")
    (tmp_path / "meta.jsonl").write_text(GOOD_METADATA)
    with pytest.raises(StudyError, match="exceeds n = 4"):
        run_study(counts_study(tmp_path), tmp_path / "out", stages=("ingest", "outcomes"))
    assert not (tmp_path / "out" / "study.duckdb").exists()


def test_a_missing_file_names_the_study_key(tmp_path):
    (tmp_path / "meta.jsonl").write_text(GOOD_METADATA)
    with pytest.raises(StudyError, match=r"datasets\[0\]\.path: no such file: .*counts\.csv"):
        ingest(counts_study(tmp_path))


CURVES = {"grid": {"b": [1, 2], "coverage": [0.5, 0.75], "majority": [0.5, 0.6]}}
REFERENCE = {"path": "curves.json", "b": "grid.b", "coverage": "grid.coverage"}
BAD_REFERENCES = {
    "a missing key": ({**REFERENCE, "coverage": "grid.pass"}, "the file has no key 'grid.pass'"),
    "a count that is not one": (
        {**REFERENCE, "b": "grid.coverage"},
        "grid.coverage[0] is 0.5, not a sample count in 1..2,147,483,647",
    ),
    "an accuracy above one": (
        {**REFERENCE, "coverage": "grid.b"},
        "grid.b[1] is 2, not an accuracy in [0, 1]",
    ),
    "lengths that differ": (
        {**REFERENCE, "majority": "grid.short"},
        "'grid.short' has 1 values and 'grid.b' 2 sample counts",
    ),
    "a count no table holds": (
        {**REFERENCE, "b": "grid.huge"},
        "grid.huge[1] is 2147483648, not a sample count in 1..2,147,483,647",
    ),
}


def test_declared_reference_curves_land_with_the_run(tmp_path):
    (tmp_path / "counts.csv").write_text(GOOD_COUNTS)
    (tmp_path / "meta.jsonl").write_text(GOOD_METADATA)
    (tmp_path / "curves.json").write_text(json.dumps(CURVES))
    spec = {**counts_study(tmp_path).datasets[0].model_dump(), "benchmark": "math"}
    spec["reference"] = {**REFERENCE, "majority": "grid.majority", "source": "a paper"}
    study = tiny_study(tmp_path, spec)
    result = run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    assert result.rows["reference_curves"] == 4
    with duckdb.connect(str(result.database), read_only=True) as con:
        rows = con.execute(
            "select dataset, model, curve, b, value, source from reference_curves order by curve, b"
        ).fetchall()
    model = study.models[0].name
    assert rows == [
        ("tiny", model, "coverage", 1, 0.5, "a paper"),
        ("tiny", model, "coverage", 2, 0.75, "a paper"),
        ("tiny", model, "majority", 1, 0.5, "a paper"),
        ("tiny", model, "majority", 2, 0.6, "a paper"),
    ]


@pytest.mark.parametrize(
    ("reference", "models", "message"),
    [
        ({"model": "m9"}, ["m1"], "datasets[0].reference.model: 'm9' is not declared"),
        ({}, ["m1", "m2"], "datasets[0].reference.model: the study has several models (m1, m2)"),
    ],
)
def test_reference_curves_are_of_a_declared_model(reference, models, message, tmp_path):
    spec = counts_study(tmp_path).datasets[0].model_dump()
    spec["reference"] = {**REFERENCE, **reference}
    if len(models) > 1:  # a file of several models: its model column says whose a row is
        spec["model"], spec["columns"] = None, {**spec["columns"], "model": "model"}
    with pytest.raises(StudyError, match=re.escape(message)):
        tiny_study(tmp_path, spec, models=[{"name": m} for m in models])


@pytest.mark.parametrize("case", sorted(BAD_REFERENCES))
def test_a_bad_reference_file_is_refused_before_any_write(case, tmp_path):
    declared, expected = BAD_REFERENCES[case]
    (tmp_path / "counts.csv").write_text(GOOD_COUNTS)
    (tmp_path / "meta.jsonl").write_text(GOOD_METADATA)
    grid = {**CURVES["grid"], "short": [0.5], "huge": [1, 2**31]}
    (tmp_path / "curves.json").write_text(json.dumps({"grid": grid}))
    spec = {**counts_study(tmp_path).datasets[0].model_dump(), "reference": declared}
    with pytest.raises(StudyError) as error:
        run_study(tiny_study(tmp_path, spec), tmp_path / "out", stages=("ingest", "outcomes"))
    assert f"datasets ('tiny').reference ({tmp_path}/curves.json): {expected}" in str(error.value)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# The sources and formats on small files
# --------------------------------------------------------------------------------------------
SAMPLES_CSV = """qid,model,pred,gold,resp
a,m1,42,42,The answer is 42.
a,m1,41,42,"It is 41, I think."
a,m1,42,42,42
a,m1,,42,no idea
b,m1,x,y,x
b,m1,z,y,z
b,m1,y,y,y!
"""


def test_long_samples_code_answers_per_instance_and_count_tokens(tmp_path):
    (tmp_path / "samples.csv").write_text(SAMPLES_CSV)
    study = tiny_study(
        tmp_path,
        {
            "source": "samples",
            "path": "samples.csv",
            "columns": {
                "id": "qid",
                "model": "model",
                "answer": "pred",
                "reference": "gold",
                "response": "resp",
            },
            # the prompt's tokens: a template of 10 around a question this log does not hold
            "prompt_overhead_tokens": 10,
        },
        actions={"samples": [1, 3], "aggregation": "majority", "cost": "tokens"},
        estimation={"samples_per_instance": 4, "tokenizer": "approx"},
    )
    (data,) = ingest(study)
    assert data.instances.column("source_id").to_pylist() == ["a", "b"]
    rows = data.samples.to_pylist()
    assert [r["instance_id"] for r in rows] == [0, 0, 0, 0, 1, 1, 1]
    assert [r["sample_idx"] for r in rows] == [0, 1, 2, 3, 0, 1, 2]
    # dense rank of the distinct answers per instance, as text; a missing answer stays null
    assert [r["answer"] for r in rows] == [1, 0, 1, None, 0, 2, 1]
    assert [r["correct"] for r in rows] == [True, False, True, False, False, False, True]
    # letters runs, digit groups of up to 3, other non-space characters
    assert [r["tokens"] for r in rows] == [5, 7, 1, 2, 1, 1, 2]

    result = run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    with duckdb.connect(str(result.database), read_only=True) as con:
        acc = con.execute(
            "select o.instance_id, a.b, o.acc, o.cost from outcomes o "
            "join actions a using (run_id, action_id) order by 1, 2"
        ).fetchall()
    # a: votes over 3 of [42, 41, 42, none]; b: 3 distinct answers, one right, a 3-way tie
    assert acc[0][2] == pytest.approx(0.5) and acc[2][2] == pytest.approx(1 / 3)
    assert acc[1][2] == pytest.approx(0.5 + 0.5 * (1 / 3))
    assert acc[3][2] == pytest.approx(1 / 3)
    # the prompt once, plus b times the mean output tokens
    assert acc[0][3] == pytest.approx(10 + 15 / 4) and acc[1][3] == pytest.approx(10 + 3 * 15 / 4)


def test_parquet_samples_with_one_model_and_flags(tmp_path):
    pq.write_table(
        pa.table(
            {
                "id": [7, 7, 8, 8],
                "ok": [1, 0, 0, 0],
                "n_tokens": [10, 20, 30, 40],
                "question": ["Find x.", "Find x.", "Why?", "Why?"],
            }
        ),
        tmp_path / "log.parquet",
    )
    study = tiny_study(
        tmp_path,
        {
            "source": "samples",
            "path": "log.parquet",
            "model": "m1",
            "columns": {"id": "id", "correct": "ok", "tokens": "n_tokens", "text": "question"},
        },
        estimation={"samples_per_instance": 2},
    )
    (data,) = ingest(study)
    assert data.instances.column("source_id").to_pylist() == ["7", "8"]
    assert data.instances.column("text").to_pylist() == ["Find x.", "Why?"]
    assert data.samples.column("correct").to_pylist() == [True, False, False, False]
    assert data.samples.column("tokens").to_pylist() == [10, 20, 30, 40]


def log_study(base_dir: Path, **dataset) -> Study:
    """``tiny_study`` over log.jsonl in ``base_dir``: samples of model m1 with columns id and
    ok (whether correct), 2 per instance."""
    return tiny_study(
        base_dir,
        {
            "source": "samples",
            "path": "log.jsonl",
            "model": "m1",
            "columns": {"id": "id", "correct": "ok"},
            **dataset,
        },
        estimation={"samples_per_instance": 2},
    )


def test_ids_written_as_whole_floats_are_the_integer_ids(tmp_path):
    """A JSON column holding 7 and 7.0 is read as floats: 7.0 is id "7", as in the metadata's
    integer column, not "7.0" (and a column of such ids does not turn every id into "N.0")."""
    (tmp_path / "log.jsonl").write_text(
        jsonl(
            [{"id": 7, "ok": 1}, {"id": 7.0, "ok": 0}, {"id": 8.0, "ok": 0}, {"id": 8, "ok": 1}]
            + [{"id": 8.5, "ok": 1}, {"id": 8.5, "ok": 0}]
        )
    )
    (tmp_path / "meta.jsonl").write_text(
        jsonl([{"uid": 7, "q": "Find x."}, {"uid": 8, "q": "Why?"}, {"uid": 8.5, "q": "Half?"}])
    )
    study = log_study(
        tmp_path, metadata={"path": "meta.jsonl", "columns": {"id": "uid", "text": "q"}}
    )
    (data,) = ingest(study)
    assert data.instances.column("source_id").to_pylist() == ["7", "8", "8.5"]
    assert data.instances.column("text").to_pylist() == ["Find x.", "Why?", "Half?"]
    assert data.samples.column("instance_id").to_pylist() == [0, 0, 1, 1, 2, 2]


def test_a_duplicated_row_without_a_sample_column_is_named(tmp_path):
    """Without a sample number a repeated row is a repeated sample (real logs repeat answers:
    76 of the 800 Qwen2.5-Math responses repeat one of the same problem word for word), so it
    is caught as one sample more than the log's others, naming the instance."""
    rows = [{"id": q, "ok": k % 2} for q in ("a", "b") for k in range(2)]
    (tmp_path / "log.jsonl").write_text(jsonl([*rows, rows[2]]))
    study = log_study(tmp_path)
    with pytest.raises(StudyError) as error:
        ingest(study)
    assert (
        "holds at most 3 samples per instance and model (id 'b', model 'm1'): declare 3; with no "
        "columns.sample each row is one sample, so a duplicated row is counted twice"
    ) in str(error.value)


def test_a_sample_number_beyond_32_bits_is_named(tmp_path):
    (tmp_path / "log.csv").write_text("id,sample,ok\na,0,1\na,1000000000000,0\n")
    study = tiny_study(
        tmp_path,
        {
            "source": "samples",
            "path": "log.csv",
            "model": "m1",
            "columns": {"id": "id", "sample": "sample", "correct": "ok"},
        },
        estimation={"samples_per_instance": 2},
    )
    with pytest.raises(
        StudyError, match=r"log\.csv: row 2, column 'sample': at most 2,147,483,647"
    ):
        ingest(study)


def test_text_features_follow_the_documented_rules(tmp_path):
    text = r"What is $\frac{1}{2} + 3.5$? Find x. Then compute 12345 ≤ y!"
    (tmp_path / "counts.jsonl").write_text(jsonl([{"id": "t", "n": 2, "c": 1, "q": text}]))
    study = tiny_study(
        tmp_path,
        {
            "source": "counts",
            "path": "counts.jsonl",
            "model": "m1",
            "columns": {"id": "id", "n": "n", "n_correct": "c", "text": "q"},
        },
        estimation={"samples_per_instance": 2},
    )
    (data,) = ingest(study)
    features = data.instances.select(
        [
            "prompt_tokens",
            "n_sentences",
            "n_digits",
            "n_math_symbols",
            "n_latex",
            "n_question_words",
        ]
    ).to_pylist()[0]
    assert features == {
        "prompt_tokens": 27,
        "n_sentences": 3,
        "n_digits": 9,
        "n_math_symbols": 2,
        "n_latex": 1,
        "n_question_words": 3,
    }


def test_json_columns_sum_nested_counts_and_check_lengths(tmp_path):
    document = {"ids": ["a", "b"], "n": [[2, 2], [2, 2]], "c": [[1, 0], [2, 2]]}
    (tmp_path / "counts.json").write_text(json.dumps(document))
    spec = {
        "source": "counts",
        "path": "counts.json",
        "format": "json_columns",
        "model": "m1",
        "columns": {"id": "ids", "n": "n", "n_correct": "c"},
    }
    (data,) = ingest(tiny_study(tmp_path, spec))
    assert data.samples.num_rows == 8
    assert data.samples.column("correct").to_pylist() == [True] + [False] * 3 + [True] * 4

    (tmp_path / "counts.json").write_text(json.dumps({**document, "c": [[1, 0]]}))
    with pytest.raises(StudyError, match=r"counts\.json: the arrays differ in length"):
        ingest(tiny_study(tmp_path, spec))
    (tmp_path / "counts.json").write_text(json.dumps({**document, "c": [[1, -1], [2, 2]]}))
    with pytest.raises(StudyError, match=r"entry 1, column 'c': cannot be negative"):
        ingest(tiny_study(tmp_path, spec))


WIDE_CSV = "prompt,a_ok,a_text,b_ok,b_text\nq1,True,one two,False,three\nq2,maybe,x,True,y\n"


def wide_study(base_dir: Path, **sections: dict) -> Study:
    data = {
        "source": "wide",
        "path": "wide.csv",
        "columns": {"id": "prompt", "text": "prompt"},
        "models": {
            "m1": {"correct": "a_ok", "response": "a_text"},
            "m2": {"correct": "b_ok", "response": "b_text"},
        },
    }
    models = [{"name": name, "accuracy": {}, "output_tokens": {}} for name in ("m1", "m2")]
    actions = {"samples": [1], "aggregation": "pass", "cost": "usd"}
    sections = {"estimation": {"samples_per_instance": 1}, **sections}
    return tiny_study(base_dir, data, models=models, actions=actions, **sections)


def test_wide_logs_check_every_model_column(tmp_path):
    (tmp_path / "wide.csv").write_text(WIDE_CSV)
    with pytest.raises(
        StudyError,
        match=r"wide\.csv: row 2, column 'a_ok': expected a flag "
        r"\(true/false, 1/0\), got 'maybe' \(named by "
        r"datasets\[0\]\.models\.m1\.correct\)",
    ):
        ingest(wide_study(tmp_path))
    (tmp_path / "wide.csv").write_text(WIDE_CSV.replace("maybe", "1"))
    (data,) = ingest(wide_study(tmp_path))
    rows = [
        (r["instance_id"], r["model"], r["correct"], r["tokens"]) for r in data.samples.to_pylist()
    ]
    assert rows == [(0, "m1", True, 2), (0, "m2", False, 1), (1, "m1", True, 1), (1, "m2", True, 1)]


def action_outcomes(database: Path, action: str, extra: str) -> list[tuple]:
    """(source id, acc, cost, ``extra``) of one action's outcome rows, by source id."""
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(
            f"select i.source_id, o.acc, o.cost, {extra} from outcomes o "
            "join actions a using (run_id, action_id) join instances i using (run_id, instance_id) "
            "where a.name = ? order by i.source_id",
            [action],
        ).fetchall()


def routing_study(base_dir: Path, id_column: str, models: dict, **sections: dict) -> Study:
    """A study over ``wide.csv``, one answer per declared model (``models``: its columns)."""
    dataset = {"source": "wide", "path": "wide.csv", "columns": {"id": id_column}, "models": models}
    entries = [{"name": name, "accuracy": {}, "output_tokens": {}} for name in models]
    estimation = {"samples_per_instance": 1}
    return tiny_study(base_dir, dataset, models=entries, estimation=estimation, **sections)


CHECKED_CSV = (
    "prompt,a_ok,a_check,b_ok,b_check\n"
    "q1,True,True,True,False\n"  # A passes its check and is right: B is never asked
    "q2,False,True,True,True\n"  # A passes wrongly: the check was wrong, A's answer stands
    "q3,False,False,True,True\n"  # A fails: B is asked and right
    "q4,True,False,False,False\n"  # A fails although right: B is asked and wrong
)


def test_a_cascade_escalates_on_the_logged_check(tmp_path):
    """A routing log with a check column per model: the cascade A > B until_verified asks B
    exactly where A's answer fails A's check, pays both there, and is right when the answer
    that stands is; without aggregation = "pass" a check on every dataset is required."""
    (tmp_path / "wide.csv").write_text(CHECKED_CSV)
    models = {
        "m1": {"correct": "a_ok", "check": "a_check"},
        "m2": {"correct": "b_ok", "check": "b_check"},
    }
    cascade = {"models": ["m1", "m2"], "rule": "until_verified", "cap": 1}
    study = routing_study(
        tmp_path,
        "prompt",
        models,
        actions={
            "samples": [1],
            "aggregation": "majority",
            "cost": "samples",
            "cascades": [cascade],
        },
        budgets={"values": [1.25, 1.5]},
    )
    result = run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    rows = action_outcomes(result.database, "m1>m2@verify(b<=1)", "o.samples")
    with duckdb.connect(str(result.database), read_only=True) as con:
        verified = con.execute("select count(verified), count(*) from samples").fetchone()
    assert verified == (8, 8)
    assert rows == [
        ("q1", 1.0, 1.0, 1.0),
        ("q2", 0.0, 1.0, 1.0),
        ("q3", 1.0, 2.0, 2.0),
        ("q4", 0.0, 2.0, 2.0),
    ]
    data = study.model_dump(mode="json")
    del data["datasets"][0]["models"]["m2"]["check"]
    with pytest.raises(StudyError, match=r"'until_verified' needs a verifier.*datasets\[0\]"):
        parse_study(data, "<checked>", base_dir=tmp_path)
    data["datasets"][0]["models"]["m2"]["check"] = "b_check"
    (tmp_path / "wide.csv").write_text(CHECKED_CSV.replace("q3,False,False", "q3,False,perhaps"))
    with pytest.raises(StudyError, match=r"row 3, column 'a_check': expected a flag"):
        ingest(parse_study(data, "<checked>", base_dir=tmp_path))


AGREEMENT_LOG = {  # instance: model -> answers (the right answer is "7")
    "q1": {"m1": ["7", "7", "3"], "m2": ["7", "3"], "m3": ["7", "7"]},
    "q2": {"m1": ["3", "4", None], "m2": ["4", "3"], "m3": ["7", "5"]},
    "q3": {"m1": ["5"], "m2": ["6", "6"], "m3": ["6", "7", "7"]},
}


def test_an_agreement_cascade_matches_every_draw_of_three_answers(tmp_path):
    """m1 > m2 > m3 @agreement on a samples log with answers: to 1e-12 against every triple of
    one stored answer per model (m1's and m2's answers stand when they agree, else m3's); a
    missing answer agrees with nothing; a study without answers is refused."""
    rows = [
        {"id": q, "model": m, "answer": a, "ok": a == "7"}
        for q, models in AGREEMENT_LOG.items()
        for m, answers in models.items()
        for a in answers
    ]
    (tmp_path / "log.jsonl").write_text(jsonl(rows))
    dataset = {
        "source": "samples",
        "path": "log.jsonl",
        "columns": {"id": "id", "model": "model", "answer": "answer", "correct": "ok"},
    }
    cascade = {"models": ["m1", "m2", "m3"], "rule": "agreement", "cap": 1}
    study = tiny_study(
        tmp_path,
        dataset,
        models=[{"name": m, "accuracy": {}, "output_tokens": {}} for m in ("m1", "m2", "m3")],
        actions={
            "samples": [1],
            "aggregation": "majority",
            "cost": "samples",
            "cascades": [cascade],
        },
        estimation={"samples_per_instance": 3},
        budgets={"values": [2.0, 2.5]},
    )
    result = run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    stored = action_outcomes(result.database, "m1>m2>m3@agreement", "o.known_cost")
    for (source, acc, cost, known), (q, models) in zip(stored, AGREEMENT_LOG.items(), strict=True):
        triples = list(itertools.product(models["m1"], models["m2"], models["m3"]))
        right = spent = 0.0
        for a, b, c in triples:
            agree = a is not None and a == b
            right += (a if agree else c) == "7"
            spent += 2 if agree else 3
        assert source == q and known == 2.0
        assert acc == pytest.approx(right / len(triples), abs=1e-12)
        assert cost == pytest.approx(spent / len(triples), abs=1e-12)
    data = study.model_dump(mode="json")
    data["datasets"][0]["columns"].pop("answer")
    with pytest.raises(
        StudyError, match=r"cascades\[0\]\.rule: 'agreement' needs the samples' answers"
    ):
        parse_study(data, "<no answers>", base_dir=tmp_path)


def test_a_wide_log_codes_answers_across_its_models(tmp_path):
    """A routing log's answer columns: equal text (trimmed) is one code within an instance,
    whichever model gave it; a missing answer stays null."""
    (tmp_path / "wide.csv").write_text("q,a,a_ok,b,b_ok\nq1,42 ,1,42,1\nq2,7,0,,0\nq3,x,0,y,1\n")
    models = {"m1": {"correct": "a_ok", "answer": "a"}, "m2": {"correct": "b_ok", "answer": "b"}}
    study = routing_study(
        tmp_path,
        "q",
        models,
        actions={"samples": [1], "aggregation": "pass", "cost": "samples"},
        budgets={"values": [1.0]},
    )
    (data,) = ingest(study)
    codes = [(r["instance_id"], r["model"], r["answer"]) for r in data.samples.to_pylist()]
    assert codes == [
        (0, "m1", 0),
        (0, "m2", 0),
        (1, "m1", 0),
        (1, "m2", None),
        (2, "m1", 0),
        (2, "m2", 1),
    ]


@pytest.mark.parametrize(
    ("cascade", "message"),
    [
        ({"models": ["m1", "m2"], "rule": "agreement", "cap": 1}, "with two, the second's answer"),
        ({"models": ["m1", "m2", "m3"], "rule": "agreement", "cap": 2}, "one answer per model"),
    ],
)
def test_an_agreement_cascade_asks_three_models_once(cascade, message, tmp_path):
    with pytest.raises(StudyError, match=message):
        tiny_study(
            tmp_path,
            {"source": "samples", "path": "log.jsonl", "columns": {"id": "id", "answer": "a"}},
            models=[{"name": m, "accuracy": {}, "output_tokens": {}} for m in ("m1", "m2", "m3")],
            actions={"samples": [1], "aggregation": "majority", "cascades": [cascade]},
        )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {
                "actions": {"samples": [1, 2], "aggregation": "majority", "cost": "samples"},
                "estimation": {"samples_per_instance": 2},
            },
            "a majority vote over b = 2 samples needs their answers",
        ),
        (
            {"models": [{"name": "m1", "accuracy": {}, "output_tokens": {}}]},
            "datasets[0].models.m2: not declared in [[models]]",
        ),
    ],
)
def test_what_the_data_cannot_support_is_refused_before_reading(change, expected, tmp_path):
    data = wide_study(tmp_path).model_dump(mode="json")
    data.update(change)
    with pytest.raises(StudyError) as error:
        ingest(parse_study(data, "<tiny study>", base_dir=tmp_path))
    assert expected in str(error.value)


# --------------------------------------------------------------------------------------------
# The study file
# --------------------------------------------------------------------------------------------
def test_relative_paths_resolve_against_the_study_file(tmp_path):
    data = wide_study(Path("/elsewhere")).model_dump(mode="json")
    data["datasets"][0]["path"] = "logs/wide.csv"
    data["datasets"][0]["metadata"] = {"path": "../meta.jsonl", "columns": {"id": "q"}}
    data["datasets"][0]["columns"] = {"id": "prompt"}
    study = parse_study(data, "<tiny study>", base_dir=tmp_path / "studies")
    assert study.datasets[0].path == str(tmp_path / "studies" / "logs" / "wide.csv")
    assert study.datasets[0].metadata.path == str(tmp_path / "meta.jsonl")
    assert study.datasets[0].format == "csv" and study.datasets[0].metadata.format == "jsonl"


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        (
            {
                "source": "counts",
                "preset": "math",
                "path": "c.csv",
                "model": "m1",
                "columns": {"id": "i", "n": "n", "n_correct": "c"},
            },
            "datasets[0]: preset: not used by source 'counts'",
        ),
        (
            {
                "source": "counts",
                "path": "c.txt",
                "model": "m1",
                "columns": {"id": "i", "n": "n", "n_correct": "c"},
            },
            "datasets[0]: format: cannot tell the format of",
        ),
        (
            {"source": "counts", "path": "c.csv", "columns": {"id": "i", "n": "n"}},
            "datasets[0]: columns: source 'counts' needs n_correct",
        ),
        (
            {"source": "samples", "path": "s.csv", "model": "m1", "columns": {"id": "i"}},
            "datasets[0]: declare columns.correct or columns.reference, exactly one",
        ),
        (
            {"source": "samples", "path": "s.csv", "columns": {"id": "i", "correct": "c"}},
            "datasets[0]: declare the model as model",
        ),
        (
            {"source": "wide", "path": "w.csv", "columns": {"id": "i", "answr": "a"}},
            "datasets[0].columns.answr: unknown key",
        ),
    ],
)
def test_dataset_keys_are_checked_per_source(dataset, expected, tmp_path):
    with pytest.raises(StudyError) as error:
        tiny_study(tmp_path, dataset)
    assert expected in str(error.value)


def test_simulated_datasets_dump_as_before():
    dataset = default_study_dict()["datasets"][0]
    study = parse_study({**default_study_dict(), "datasets": [dataset]})
    assert study.datasets[0].model_dump() == {
        "name": "math",
        "source": "simulate",
        "preset": "math",
        "instances": 5000,
    }
    without_count = {key: value for key, value in dataset.items() if key != "instances"}
    assert (
        parse_study({**default_study_dict(), "datasets": [without_count]}).datasets[0].instances
        == 5000
    )


VALIDATED_STUDY = """\
[study]
name = "validate-reads"

[[datasets]]
name = "tiny"
source = "counts"
path = "counts.csv"
model = "m1"
columns = {{ id = "id", n = "n", n_correct = "n_correct" }}

[[models]]
name = "m1"

[actions]
samples = [1, 2]
aggregation = "pass"

[estimation]
samples_per_instance = {declared}

[budgets]
values = [1.5]
"""


@pytest.mark.parametrize(
    ("counts", "declared", "expected"),
    [
        (None, 4, "datasets[0].path: no such file"),
        ("id,n,n_correct\nq1,4,1\nq2,4,9\n", 4, "row 2: n_correct = 9"),
        (GOOD_COUNTS, 8, "estimation.samples_per_instance = 8, but"),
    ],
)
@pytest.mark.slow
def test_validate_reads_the_data_as_run_does(counts, declared, expected, tmp_path):
    """`stl validate` and `stl run` never disagree: both read the data before writing."""
    study_file = tmp_path / "study.toml"
    study_file.write_text(VALIDATED_STUDY.format(declared=declared))
    if counts is not None:
        (tmp_path / "counts.csv").write_text(counts)
    for command in (["validate", str(study_file)], ["run", str(study_file), "--out", "out"]):
        done = subprocess.run(
            [sys.executable, "-m", "toolkit", *command],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "counts.csv").write_text(GOOD_COUNTS + "q4,4,2\nq5,4,3\n")  # 5: one to score
    study_file.write_text(VALIDATED_STUDY.format(declared=4))
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "validate", str(study_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "read 1 data file(s), 5 instances" in done.stderr


def test_a_samples_log_check_decides_until_verified_and_must_cover_the_model(tmp_path):
    """Two logs of one model, one with a check column and one without: until_verified would
    stop on the check for some instances and on the correct flag for others, so the run is
    refused naming the model, and nothing lands."""
    (tmp_path / "a.jsonl").write_text(
        jsonl([{"id": "q1", "ok": True, "pass": True}, {"id": "q1", "ok": False, "pass": False}])
    )
    (tmp_path / "b.jsonl").write_text(jsonl([{"id": "q2", "ok": True}, {"id": "q2", "ok": False}]))
    columns = {"id": "id", "correct": "ok"}
    study = tiny_study(
        tmp_path,
        {
            "source": "samples",
            "path": "a.jsonl",
            "model": "m1",
            "columns": {**columns, "check": "pass"},
        },
        actions={
            "samples": [1, 2],
            "aggregation": "pass",
            "cost": "samples",
            "rules": [{"rule": "until_verified", "cap": 2}],
        },
        estimation={"samples_per_instance": 2},
    )
    alone = run_study(study, tmp_path / "alone", stages=("ingest", "outcomes"))
    # q1: a right sample that passes and a wrong one that fails: right whichever comes first,
    # after 1 or 2 samples
    assert action_outcomes(alone.database, "m1@verify(b<=2)", "o.samples") == [
        ("q1", 1.0, 1.5, 1.5)
    ]
    data = study.model_dump(mode="json")
    data["datasets"].append(
        {"name": "other", "source": "samples", "path": "b.jsonl", "model": "m1", "columns": columns}
    )
    study = parse_study(data, "<two logs>", base_dir=tmp_path)
    with pytest.raises(StudyError, match="model 'm1': a check is logged for some of its samples"):
        run_study(study, tmp_path / "out", stages=("ingest", "outcomes"))
    assert not (tmp_path / "out" / "study.duckdb").exists()
