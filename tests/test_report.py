"""The HTML report: its numbers equal the database's, every section and chart renders, and the
page opens offline in a real headless Chromium without a single network request."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from toolkit import bi, report
from toolkit.pipeline import STAGES, RunResult, run_study

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECTIONS = (
    "study",
    "outcomes",
    "frontier",
    "headline",
    "allocation",
    "imitation",
    "regret",
    "learned",
    "paper",
    "estimation",
)
"""Every section of an evaluated simulated run's report, in page order (a MATH run: beside
the paper's figures)."""
CHARTS = (
    "level-accuracy-0",
    "frontier",
    "allocation",
    "level-cost",
    "confusion",
    "regret",
    "learning-curve",
    "estimation",
)
"""Every chart of that report, in page order."""


@pytest.fixture(scope="module")
def study_run(tmp_path_factory) -> RunResult:
    """The default-style study, small: 1,500 simulated MATH instances, every stage."""
    from conftest import make_study

    study = make_study(
        study={"name": "report-small", "seed": 7},
        datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 1500}],
    )
    return run_study(study, tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def study_db(study_run) -> Path:
    return study_run.database


@pytest.fixture(scope="module")
def context(study_db) -> report.ReportContext:
    backend = bi.open_read_only(study_db)
    try:
        return report.build_context(backend, 1, str(study_db))
    finally:
        backend.disconnect()


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


class Outline(HTMLParser):
    """Section ids, chart ids and external references of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.charts: list[str] = []
        self.charts_with_svg: set[str] = set()
        self.external: list[str] = []
        self._open_chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "section":
            self.sections.append(named["id"] or "")
        if tag == "figure" and "data-chart" in named:
            self._open_chart = named["data-chart"]
            self.charts.append(self._open_chart or "")
        if tag == "svg" and self._open_chart is not None:
            self.charts_with_svg.add(self._open_chart)
        for key in ("src", "href"):
            value = named.get(key)
            if value and not value.startswith("#"):
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._open_chart = None


def outline(html: str) -> Outline:
    parsed = Outline()
    parsed.feed(html)
    return parsed


# --------------------------------------------------------------------------------------------
# The numbers
# --------------------------------------------------------------------------------------------
def test_run_info_matches_the_runs_table(context, study_db):
    (seed, config_hash, cost_unit) = query(
        study_db, "select seed, config_hash, cost_unit from runs where run_id = 1"
    )[0]
    run = context.run
    assert (run.seed, run.config_hash, run.cost_unit) == (seed, config_hash, cost_unit)
    sizes = {size.table: size.rows for size in run.sizes}
    assert sizes["instances"] == 1500
    assert sizes["samples"] == 1500 * 48
    assert run.budgets == (2.0, 3.0, 4.0, 6.0, 8.0)


def test_level_accuracy_info_matches_the_outcomes(context, study_db):
    expected = {
        (level, b): acc
        for level, b, acc in query(
            study_db,
            "select i.level, a.b, avg(o.acc) from outcomes o "
            "join instances i using (run_id, instance_id) "
            "join actions a using (run_id, action_id) group by all",
        )
    }
    (info,) = context.outcomes.level_accuracy
    assert [s.label for s in info.series] == [f"level {level}" for level in range(1, 6)]
    for series in info.series:
        level = int(series.label.split()[1])
        assert series.x == (1.0, 2.0, 4.0, 8.0, 16.0)
        for b, acc in zip(series.x, series.y, strict=True):
            assert acc == pytest.approx(expected[(level, int(b))], rel=1e-12)


def test_estimation_info_counts_every_pair(context, study_db):
    info = context.estimation.info
    assert sum(map(sum, info.counts)) == 1500 * 5
    (mae, rmse) = query(
        study_db, "select avg(abs(acc - acc_true)), sqrt(avg((acc - acc_true)^2)) from outcomes"
    )[0]
    assert info.mean_abs_error == pytest.approx(mae)
    assert info.rmse == pytest.approx(rmse)
    # the estimate tracks the truth: most mass sits on the diagonal band
    near = sum(
        info.counts[i][j] for i in range(info.bins) for j in range(info.bins) if abs(i - j) <= 2
    )
    assert near / (1500 * 5) > 0.8


def test_frontier_info_is_the_mean_over_seeds_of_the_curves_and_gains(context, study_db):
    curves = {
        (policy, budget): (cost, accuracy)
        for policy, budget, cost, accuracy in query(
            study_db,
            "select policy, budget, avg(cost), avg(accuracy) from policy_curves group by all",
        )
    }
    gains = {
        (policy, budget): (value, low, high)
        for policy, budget, value, low, high in query(
            study_db,
            "select policy, budget, avg(value), avg(ci_low), avg(ci_high) from evaluations "
            "where metric = 'gain_vs_best_fixed' group by all",
        )
    }
    info = context.frontier.info
    present = {p for p, _ in curves}
    assert [s.label for s in info.curves] == [p for p in report.read.POLICY_ORDER if p in present]
    grid = sorted({b for _, b in curves})
    for series in info.curves:
        expected = [curves[(series.label, b)] for b in grid]
        assert series.x == pytest.approx([c for c, _ in expected])
        assert series.y == pytest.approx([a for _, a in expected])
    assert "best_fixed" not in [s.label for s in info.gain]  # the reference itself
    for series in info.gain:
        # every budget where the policy's accuracy at matched spend is defined
        assert series.x == tuple(
            b for p, b in sorted(gains) if p == series.label and gains[(p, b)][0] is not None
        )
        for budget, value, low, high in zip(
            series.x, series.y, series.low, series.high, strict=True
        ):
            assert (value, low, high) == pytest.approx(gains[(series.label, budget)])
    assert context.frontier.n_seeds == 3 and context.frontier.folds == 1
    summary = {row.policy: row for row in context.frontier.summary.rows}
    assert summary["oracle"].aiq == max(row.aiq for row in summary.values())


def test_headline_ranks_as_the_analysis_does_with_verdicts(context, study_db):
    ranked = query(
        study_db,
        "select budget, policy, rank from (" + bi.headline_sql() + ") order by budget, rank",
    )
    assert [block.budget for block in context.headline] == [2.0, 3.0, 4.0, 6.0, 8.0]
    for block in context.headline:
        assert block.label == f"B = {block.budget:g} samples"
        unranked = [row for row in block.rows if row.rank is None]
        rest = [row for row in block.rows if row.rank is not None]
        assert list(block.rows[: len(unranked)]) == unranked, "references come first"
        assert [row.point.policy for row in unranked] == ["oracle", "label_known"]
        assert unranked[0].point.oracle_share == pytest.approx(1.0)
        expected = [p for b, p, _ in ranked if b == block.budget]
        assert [row.point.policy for row in rest] == expected
        within = [row.point.within_budget for row in rest]
        assert within == sorted(within, reverse=True), "over budget ranks last"
        best = next(row.point for row in block.rows if row.point.policy == "best_fixed")
        assert best.verdict == "reference" and best.gain_vs_best_fixed == 0.0
        for row in rest:
            p = row.point
            if p.gain_vs_best_fixed_ci_low is not None and p.policy != "best_fixed":
                verdict = (
                    "above zero"
                    if p.gain_vs_best_fixed_ci_low > 1e-12
                    else "below zero"
                    if p.gain_vs_best_fixed_ci_high < -1e-12
                    else "includes zero"
                )
                assert p.verdict == verdict
            assert p.within_budget is (p.cost <= block.budget * 1.02)


def test_allocation_shares_match_the_policy_allocations(context, study_db):
    info = context.allocation.info
    assert info.policies == ("oracle", "learned_batch")
    assert info.budget == 4.0
    assert info.levels == tuple(f"level {level}" for level in range(1, 6))
    assert info.actions == ("b=1", "b=2", "b=4", "b=8", "b=16")
    for policy_shares in info.shares:
        for level in range(len(info.levels)):
            assert sum(action[level] for action in policy_shares) == pytest.approx(1.0)
    expected = dict(
        query(
            study_db,
            "with sizes as (select i.level, count(*) as n from instances i "
            "join splits s using (run_id, instance_id) where s.split = 'test' group by all) "
            "select i.level * 100 + p.action_id, sum(p.weight) / any_value(sizes.n) "
            "from policy_allocations p join instances i using (run_id, instance_id) "
            "join sizes using (level) "
            "where p.policy = 'oracle' and p.budget = 4 group by all",
        )
    )
    for action_index, shares in enumerate(info.shares[0]):
        for level_index, share in enumerate(shares):
            key = (level_index + 1) * 100 + action_index
            assert share == pytest.approx(expected.get(key, 0.0))


def test_level_cost_matches_the_allocations_at_every_budget(context, study_db):
    info = context.allocation.level_cost
    expected = {
        (policy, budget, level): cost
        for policy, budget, level, cost in query(
            study_db,
            "select p.policy, p.budget, i.level, sum(p.weight * o.cost) / count(distinct "
            "(p.instance_id, p.seed)) from policy_allocations p "
            "join instances i using (run_id, instance_id) "
            "join outcomes o using (run_id, instance_id, action_id) group by all",
        )
    }
    for panel in info.panels:
        assert [s.label for s in panel.series] == [f"B = {b:g}" for b in (2, 3, 4, 6, 8)]
        for series in panel.series:
            budget = float(series.label.removeprefix("B = "))
            for x, cost in zip(series.x, series.y, strict=True):
                level = int(info.levels[int(x)].split()[1])
                assert cost == pytest.approx(expected[(panel.title, budget, level)])
    oracle = info.panels[0].series
    # the oracle spends more on a bigger budget, level by level
    for smaller, larger in zip(oracle, oracle[1:], strict=False):
        assert all(a <= b + 1e-9 for a, b in zip(smaller.y, larger.y, strict=True))


def test_imitation_numbers_match_the_evaluation_tables(context, study_db):
    section = context.imitation
    assert section.policy == "learned_batch"
    expected = dict(
        query(
            study_db,
            "select budget, avg(value) from evaluations where policy = 'learned_batch' "
            "and metric = 'imitation_accuracy' group by all",
        )
    )
    n_test = query(study_db, "select count(*) from splits where split = 'test'")[0][0]
    for row, counts in zip(section.rows, section.confusion.counts, strict=True):
        assert row.imitation_accuracy == pytest.approx(expected[row.budget])
        assert sum(map(sum, counts)) == pytest.approx(n_test)
        diagonal = sum(counts[k][k] for k in range(len(counts)))
        assert diagonal / n_test == pytest.approx(row.imitation_accuracy)
        for k, recall in enumerate(row.recall):
            if row.support[k] > 0:
                assert recall == pytest.approx(counts[k][k] / sum(counts[k]))
            else:
                assert recall is None


def test_regret_rows_match_the_regret_bounds(context, study_db):
    expected = {
        (policy, budget): (eps, regret, bound, holds)
        for policy, budget, eps, regret, bound, holds in query(
            study_db,
            "select policy, budget, avg(imitation_error), avg(regret), avg(bound), "
            "bool_and(holds) from regret_bounds group by all",
        )
    }
    section = context.regret
    assert {(r.policy, r.budget) for r in section.info.rows} == set(expected)
    for row in section.info.rows:
        eps, regret, bound, holds = expected[(row.policy, row.budget)]
        assert (row.imitation_error, row.regret, row.bound) == pytest.approx((eps, regret, bound))
        assert row.holds is holds
        if bound > 0:
            assert row.bound_used == pytest.approx(regret / bound)
        if regret > 0:
            assert row.bound_over_regret == pytest.approx(bound / regret)
        assert row.vacuous is (row.bound >= row.mean_gap)
    assert [r.policy for r in section.rows] == ["learned_batch"] * 5
    assert section.all_hold is all(holds for *_, holds in expected.values())


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------
def test_the_paper_section_reads_the_frontier(context, study_db):
    paper = context.paper
    assert paper is not None and paper.policy == "learned_batch"
    rows = query(
        study_db,
        "select budget, relative_gain_vs_uniform, relative_gain_vs_uniform_ci_low, "
        "imitation_accuracy, imitation_accuracy_ci_low, imitation_accuracy_ci_high "
        "from policy_frontier where policy = 'learned_batch' order by budget",
    )
    oracle = query(
        study_db,
        "select max(relative_gain_vs_uniform) from policy_frontier where policy = 'oracle'",
    )[0][0]
    assert len(paper.rows) == len(rows) == 5
    for row, (_budget, gain, gain_low, imitation, low, high) in zip(paper.rows, rows, strict=True):
        assert row.benchmark == "MATH"
        assert (row.relative_gain, row.relative_gain_ci_low) == pytest.approx((gain, gain_low))
        assert (row.imitation, row.imitation_ci_low, row.imitation_ci_high) == pytest.approx(
            (imitation, low, high)
        )
        assert row.imitation_ci_low <= row.imitation <= row.imitation_ci_high
    gain, imitation = paper.figures
    assert (gain.paper, imitation.paper) == ("up to 12.8%", "over 91.0%")
    assert gain.ours == pytest.approx(max(r[1] for r in rows))  # "up to": our best
    assert imitation.ours == pytest.approx(min(r[3] for r in rows))  # "over": our lowest
    assert gain.ceiling == pytest.approx(oracle) and imitation.ceiling is None
    assert "simulated" in paper.differs[0]
    assert dict((a, p) for a, p, _ in paper.setting)["estimation"] == "48 samples per question"


def test_render_has_every_section_and_chart_inline(context):
    html = report.render(context)
    page = outline(html)
    assert page.sections == list(SECTIONS)
    assert page.charts == list(CHARTS)
    assert set(page.charts) == page.charts_with_svg, "every chart is an inline <svg>"
    assert len(set(page.charts)) == len(page.charts), "chart ids are unique"
    assert page.external == [], "no link or source outside the page"
    assert "http://" not in html.replace("http://www.w3.org/", "")
    assert "https://" not in html


@pytest.mark.parametrize(
    ("value", "percent", "points"),
    [
        (-0.00004, "0.0%", "+0.0"),
        (-0.0004, "0.0%", "+0.0"),
        (-0.004, "-0.4%", "-0.4"),
        (0.0, "0.0%", "+0.0"),
        (0.1234, "12.3%", "+12.3"),
    ],
)
def test_numbers_that_round_to_zero_carry_no_minus_sign(value, percent, points):
    from toolkit.formatting import percent as format_percent
    from toolkit.formatting import points as format_points

    assert (format_percent(value), format_points(value)) == (percent, points)


@pytest.mark.parametrize(
    ("ticks", "labels"),
    [
        ([0.0, 0.0005, 0.001, 0.0015], ["0", "+0.05", "+0.10", "+0.15"]),
        ([-0.01, 0.0, 0.01, 0.02], ["-1.0", "0", "+1.0", "+2.0"]),
        ([0.0, 0.05, 0.1], ["0", "+5.0", "+10.0"]),
    ],
)
def test_point_ticks_carry_the_decimals_their_spacing_needs(ticks, labels):
    from toolkit.report.charts import _Points

    assert _Points().format_ticks(ticks) == labels


def test_templates_escape_what_they_show(context):
    hostile = context.run.__class__(
        **{**context.run.__dict__, "description": "<script>alert(1)</script>"}
    )
    html = report.render(context.__class__(**{**context.__dict__, "run": hostile}))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_run_study_writes_the_report_next_to_the_database(study_run):
    assert study_run.report == study_run.database.with_name("report.html")
    assert outline(study_run.report.read_text()).sections == list(SECTIONS)
    assert "report" in study_run.stage_seconds


def test_a_run_without_evaluations_renders_what_it_has(tmp_path):
    from conftest import make_study

    result = run_study(
        make_study(
            study={"name": "report-partial", "seed": 3},
            datasets=[{"name": "math", "source": "simulate", "preset": "math", "instances": 300}],
        ),
        tmp_path,
        stages=("simulate", "outcomes"),
    )
    assert result.report is None
    page = outline(report.write_report(result.database, tmp_path / "partial.html").read_text())
    assert page.sections == ["study", "outcomes", "evaluation", "estimation"]
    assert page.charts == ["level-accuracy-0", "estimation"]


@pytest.mark.slow
def test_report_command_writes_next_to_the_database(study_db, tmp_path):
    database = tmp_path / "study.duckdb"
    shutil.copy(study_db, database)
    done = subprocess.run(
        [sys.executable, "-m", "toolkit", "report", "--db", str(database)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    written = tmp_path / "report.html"
    assert outline(written.read_text()).sections == list(SECTIONS)


@pytest.mark.slow
def test_compare_two_studies_side_by_side(study_db, tmp_path):
    from conftest import make_study

    other = run_study(
        make_study(
            study={"name": "report-other", "seed": 8},
            datasets=[{"name": "gsm", "source": "simulate", "preset": "gsm8k", "instances": 1000}],
            learn={"iterations": 60, "seeds": [0]},
        ),
        tmp_path / "other",
        stages=tuple(stage for stage in STAGES if stage != "report"),
    ).database
    out = tmp_path / "compare.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "report",
            "--db",
            str(study_db),
            "--db",
            str(other),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    page = outline(html)
    assert len(set(page.charts)) == len(page.charts), "chart ids are unique across runs"
    assert re.findall(r'data-run="(\d+)"', html) == ["1", "1"]
    assert "report-small" in html and "report-other" in html
    assert page.sections[:3] == ["comparison", "paper", "runs"]
    assert page.charts[0] == "comparison"
    assert len(re.findall(r"<tr data-compare-row", html)) == 2 * 5


# --------------------------------------------------------------------------------------------
# In a real browser
# --------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
def test_report_opens_offline_in_headless_chromium(context, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "report.html"
    page_file.write_text(report.render(context), encoding="utf-8")

    requests: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            tmp_path / "profile",  # a fresh user data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri(), wait_until="networkidle")
            sections = page.eval_on_selector_all("main > section", "s => s.map(e => e.id)")
            charts = page.eval_on_selector_all(
                "figure.chart",
                "fs => fs.map(f => { const s = f.querySelector('svg');"
                " const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};"
                " return [f.dataset.chart, r.width, r.height]; })",
            )
            page.screenshot(path=tmp_path / "report.png", full_page=True)
        finally:
            browser.close()

    assert sections == list(SECTIONS)
    assert [name for name, _width, _height in charts] == list(CHARTS)
    for name, width, height in charts:
        assert width > 200 and height > 150, f"chart {name} is drawn ({width} x {height})"
    assert requests == [page_file.as_uri()], "the page loads nothing but itself"
    assert (tmp_path / "report.png").stat().st_size > 50_000
