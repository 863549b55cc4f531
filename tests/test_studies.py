"""Every shipped study runs whole on its data (the real ones read ../shared/data), lands no NaN
or inf anywhere, prices every batch-priced policy at B exactly in planned cost, and its report
prints no nan% or inf%. CatBoost is cut short (one seed, few iterations) to keep this quick:
what is checked does not depend on how well the classifier learns."""

from __future__ import annotations

import re

import duckdb
import pytest

from toolkit.config import load_study, parse_study
from toolkit.pipeline import run_study
from toolkit.resources import studies_dir

BATCH_PRICED = (
    "best_fixed",
    "uniform",
    "random",
    "prompt_length",
    "difficulty_bins",
    "learned_batch",
)
REAL = (
    "gsm8k_routing",
    "gsm8k_cascade",
    "math500_llama",
    "qwen25math_cot",
    "qwen25math_rm",
    "qwen25math_adaptive",
)
SIMULATED = (
    "default",
    "default_tokens",
    "default_adaptive",
    "paper_models_cascade",
    "paper_protocol",
)


def quick(name: str, **changes):
    study = load_study(studies_dir() / f"{name}.toml")
    data = study.model_dump(mode="json")
    data["learn"] = {**data["learn"], "iterations": 20, "seeds": [0]}
    for section, values in changes.items():
        data[section] = {**data[section], **values}
    return parse_study(data, f"<quick {name}>")


def float_columns(con) -> list[tuple[str, str]]:
    return con.execute(
        "select table_name, column_name from information_schema.columns "
        "where data_type = 'DOUBLE' and table_schema = 'main' and table_name in "
        "(select table_name from information_schema.tables where table_type = 'BASE TABLE')"
    ).fetchall()


def check_run(result) -> None:
    with duckdb.connect(str(result.database), read_only=True) as con:
        for table, column in float_columns(con):
            bad = con.execute(
                f'select count(*) from "{table}" where isnan("{column}") or isinf("{column}")'
            ).fetchone()[0]
            assert bad == 0, (table, column)
        # a priced policy leaves budget unspent only where, by its own scores, more compute
        # buys nothing: its price is then 0 in some fold (a fixed mix: all on the top of its
        # training hull, theta = 1, where a dearer action is no more accurate)
        planned = con.execute(
            "select e.policy, e.budget, e.value, "
            "bool_or(s.parameter = 0 or (s.parameter_name = 'theta' and s.parameter = 1)) "
            "from evaluations e join policy_settings s using (run_id, policy, budget) "
            "where e.metric = 'planned_cost' and s.seed is not distinct from e.seed "
            "group by all"
        ).fetchall()
    checked = 0
    for policy, budget, value, unpriced in planned:
        if policy in BATCH_PRICED:
            assert value <= budget * (1 + 1e-9), (policy, budget)
            if not unpriced:
                assert value == pytest.approx(budget, rel=1e-9), (policy, budget)
                checked += 1
    assert checked > 0
    page = result.report.read_text()
    assert len(re.findall(r"nan%|inf%", page, flags=re.IGNORECASE)) == 0
    assert not re.search(r">\s*-?(nan|inf)\b", page, flags=re.IGNORECASE)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", REAL)
def test_a_real_study_runs_clean(name, shared_data, tmp_path):
    result = run_study(quick(name), tmp_path)
    check_run(result)
    page = result.report.read_text()
    if name == "gsm8k_routing":  # one action per model, no levels: single-point charts
        assert 'data-chart="level-accuracy-0"' not in page
        assert 'data-chart="level-cost"' not in page
        assert page.count("is not drawn") == 3  # each of the two models, and cost by level
        assert "$0.0005" in page and "0.00 usd" not in page


@pytest.mark.slow
@pytest.mark.parametrize("name", SIMULATED)
def test_a_simulated_study_runs_clean(name, tmp_path):
    check_run(run_study(quick(name), tmp_path))
