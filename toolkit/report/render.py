"""Rendering the Jinja templates of ``reports/`` and writing the HTML files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import ibis
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from toolkit import bi
from toolkit.errors import StudyError
from toolkit.files import written_whole
from toolkit.formatting import DASH, budget_label, format_cost, percent, points, significant
from toolkit.report.build import build_context, comparison_context
from toolkit.report.context import ComparisonContext, ReportContext
from toolkit.report.read import _scalar
from toolkit.resources import reports_dir


# --------------------------------------------------------------------------------------------
# Rendering and writing
# --------------------------------------------------------------------------------------------
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(reports_dir()),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # every number filter prints an undefined value (None) as a dash, never nan or inf
    environment.filters["pct"] = percent
    environment.filters["pts"] = points
    environment.filters["num"] = lambda value, digits=3: (
        DASH if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"
    )
    environment.filters["sig"] = lambda value: DASH if value is None else significant(value)
    environment.filters["count"] = lambda value: f"{value:,}"
    environment.filters["cost"] = format_cost
    environment.filters["budget"] = budget_label
    return environment


def render(context: ReportContext | ComparisonContext) -> str:
    """The HTML page for a context (``study.html.j2`` or ``compare.html.j2``)."""
    template = "compare.html.j2" if isinstance(context, ComparisonContext) else "study.html.j2"
    return _environment().get_template(template).render(ctx=context)


def latest_run(backend: ibis.BaseBackend, database: str) -> int:
    """The most recent run in a database."""
    return bi.run_row(backend, database)["run_id"]


def _write(context: ReportContext | ComparisonContext, out: Path) -> Path:
    """The page into ``out`` whole: written beside it, then renamed over it, so a reader
    never sees half a report and a failed write leaves the old one."""
    page = render(context)
    try:
        with written_whole(out) as part:
            part.write_text(page, encoding="utf-8")
    except OSError as error:
        files = [folder for folder in out.parents if folder.is_file()]
        reason = f"{files[0]} is a file, not a folder" if files else error.strerror
        raise StudyError(f"{out}: cannot write the report: {reason}") from None
    return out


def write_report(database: str | Path, out: str | Path, run_id: int | None = None) -> Path:
    """Render one run's report (the latest run by default) into ``out``; the path."""
    backend = bi.open_read_only(database)
    try:
        chosen = run_id if run_id is not None else latest_run(backend, str(database))
        context = build_context(backend, chosen, str(database))
    finally:
        backend.disconnect()
    return _write(context, Path(out))


def write_comparison(
    databases: Sequence[str | Path], out: str | Path, run_ids: Sequence[int] = ()
) -> Path:
    """Render several runs side by side into ``out``; the path.

    Several databases: each contributes its latest run. One database: the runs ``run_ids``
    (every run in it when empty)."""
    if len(databases) > 1 and run_ids:
        raise StudyError("compare several databases (their latest runs) or runs of one database")
    reports: list[ReportContext] = []
    for database in databases:
        backend = bi.open_read_only(database)
        try:
            if len(databases) > 1:
                wanted = [latest_run(backend, str(database))]
            else:
                wanted = list(run_ids) or sorted(_scalar(backend.table("runs").run_id.collect()))
            for run_id in wanted:
                prefix = f"run{len(reports)}-"
                reports.append(build_context(backend, run_id, str(database), prefix))
        finally:
            backend.disconnect()
    if len(reports) < 2:
        raise StudyError("a comparison needs at least two runs")
    return _write(comparison_context(reports), Path(out))


def write(
    databases: Sequence[str | Path], out: str | Path | None = None, run_ids: Sequence[int] = ()
) -> Path:
    """The report the ``report`` command asks for: one run (one database and at most one run
    id; written as ``report.html`` next to the database by default), or a side-by-side
    comparison (several databases or run ids; ``compare.html`` by default)."""
    if not databases:
        raise StudyError("name at least one study database")
    folder = Path(databases[0]).parent
    if len(databases) == 1 and len(run_ids) <= 1:
        return write_report(
            databases[0], out or folder / "report.html", run_ids[0] if run_ids else None
        )
    return write_comparison(databases, out or folder / "compare.html", run_ids)


__all__ = ["latest_run", "render", "write", "write_comparison", "write_report"]
