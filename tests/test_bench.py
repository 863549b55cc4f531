"""The benchmarks' own logic (``toolkit.bench``): what they compare against and how they read
their options, and one command's output. Their timings are measurements, never asserted."""

import io
import math

import pytest

from toolkit.bench import print_table
from toolkit.bench.scale import (
    DEFAULT_ACTIONS,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SIZES,
    DEFAULT_STAGES,
    add_growth,
    options,
    parse_size,
    scaled_study,
)
from toolkit.bench.solve import numpy_bisection, synthetic_outcomes
from toolkit.errors import StudyError
from toolkit.solve import solve_columns


def test_scale_options_default_to_the_bench_constants():
    chosen = options()
    assert chosen.sizes == DEFAULT_SIZES
    assert chosen.engines == ("duckdb",)
    assert (chosen.actions, chosen.memory_limit) == (DEFAULT_ACTIONS, DEFAULT_MEMORY_LIMIT)
    assert chosen.stages == DEFAULT_STAGES and "report" not in chosen.stages
    assert chosen.arguments()["sizes"] == DEFAULT_SIZES


def test_scale_options_read_the_command_line():
    chosen = options(["1e5", "2_000"], ["pyspark://local[2]"], 5, "1GB", "simulate, outcomes")
    assert chosen.sizes == (100_000, 2_000)
    assert chosen.engines == ("pyspark://local[2]",)
    assert chosen.stages == ("simulate", "outcomes")
    assert "K = 5" in chosen.header() and "memory_limit = 1GB" in chosen.header()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"instances": ["1.5"]}, "positive whole number"),
        ({"instances": ["0"]}, "positive whole number"),
        ({"actions": 7}, "--actions: one of"),
        ({"stages": "simulate,fly"}, "--stages: some of"),
        ({"stages": " , "}, "--stages: some of"),
    ],
)
def test_scale_options_refuse_bad_values(given, message):
    with pytest.raises(StudyError, match=message):
        options(**given)


def test_parse_size_reads_the_spellings():
    assert parse_size("1e6") == parse_size("1000000") == parse_size("1_000_000") == 1_000_000


def test_scaled_study_has_n_instances_and_k_actions():
    study = scaled_study(12_345, actions=5)
    assert study.datasets[0].instances == 12_345
    assert sorted(study.actions.samples) == [1, 2, 4, 8, 16]


def test_growth_is_the_exponent_against_the_previous_size():
    rows = [
        {"engine": "duckdb", "K": 8, "stage": "learn", "instances": 1_000, "seconds": 2.0},
        {"engine": "duckdb", "K": 8, "stage": "solve", "instances": 1_000, "seconds": 1.0},
        {"engine": "duckdb", "K": 8, "stage": "learn", "instances": 10_000, "seconds": 20.0},
        {"engine": "duckdb", "K": 8, "stage": "solve", "instances": 10_000, "seconds": 100.0},
    ]
    grown = add_growth([dict(r, growth="") for r in rows])
    assert grown[0]["growth"] == "" and grown[1]["growth"] == ""
    assert math.isclose(grown[2]["growth"], 1.0)  # linear
    assert math.isclose(grown[3]["growth"], 2.0)  # quadratic


def test_the_numpy_reference_bisection_meets_the_budget_as_the_solver_does():
    """``stl bench solve`` times the solver against this reference: both must find the same
    price, and the reference's Lagrangian bound is the solver's exact (mixed) accuracy."""
    n, k = 2_000, 5
    table = synthetic_outcomes(n, actions=k, seed=3)
    acc = table.column("acc").to_numpy().reshape(n, k)
    cost = table.column("cost").to_numpy().reshape(n, k)
    budget = float(cost.mean(axis=0)[2])
    reference = numpy_bisection(acc, cost, budget, tol=1e-12)
    (solved,) = solve_columns(table, [budget], clip=True)
    assert reference["cost_hi"] <= budget <= reference["cost_lo"]
    assert solved.mean_cost == pytest.approx(budget, rel=1e-9)
    assert reference["lambda"] == pytest.approx(solved.lambda_, rel=1e-6)
    assert reference["bound"] == pytest.approx(solved.mean_acc, rel=1e-6)


def test_print_table_aligns_columns_and_formats_numbers():
    out = io.StringIO()
    print_table([{"name": "a", "n": 22_000, "x": None}, {"name": "bb", "n": 3, "x": 0.5}], out)
    header, rule, first, second = out.getvalue().splitlines()
    assert len(header) == len(rule) == len(first) == len(second)
    assert first.split() == ["a", "22,000", "-"] and second.split() == ["bb", "3", "0.500"]


def test_stl_bench_outcomes_prints_the_stage_against_its_numpy_reference():
    """``stl bench outcomes`` at a small N: one row, its truth the numpy reference's to
    rounding, and its ratios those of its own columns."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "toolkit", "bench", "outcomes", "-n", "3e3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, _, row = out.strip().splitlines()
    values = dict(zip(header.split(), row.split(), strict=True))
    number = {k: float(v.replace(",", "")) for k, v in values.items()}
    assert number["instances"] == 3000 and number["samples"] == 3000 * 48
    assert number["actions"] == 8 and number["truth_max_diff"] < 1e-12


def test_bench_outcomes_ratios_are_its_columns():
    from toolkit.bench.outcomes import measure

    row = measure(2_000)
    assert row["truth_max_diff"] < 1e-12
    assert row["truth_x"] == row["numpy_truth_s"] / row["truth_s"]
    assert row["stage_ref_s"] == row["stage_s"] - row["truth_s"] + row["numpy_truth_s"]
    assert row["stage_x"] == row["stage_ref_s"] / row["stage_s"]
    assert 0 < row["truth_s"] < row["stage_s"]
