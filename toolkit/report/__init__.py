"""The HTML report: one self-contained file per run, or several runs side by side.

A package: ``context`` the typed objects, ``read`` the database readers, ``charts`` the
drawing, ``build`` the context, ``render`` the pages.

``build_context(backend, run_id)`` reads a study database (through the views of ``sql/views``)
into one frozen ``ReportContext``; ``render`` fills the Jinja templates of ``reports/`` with it.
Templates format, they do not compute.

Charts are inline SVG drawn with matplotlib, so the file opens offline. Each chart has a typed
*info* object of plain numbers, built from the database by a ``*_info`` function; the
``plot_*`` function only draws it. Tests check the numbers in the info, not the picture.

Policies with several CatBoost seeds (``learned_*``) are shown as the mean over their seeds,
intervals included (the views say how). The learned policy the allocation, imitation and
regret sections feature is ``learned_batch``, priced on the batch it serves.
"""

from toolkit.report.build import build_context, comparison_context
from toolkit.report.context import ComparisonContext, ReportContext
from toolkit.report.render import render, write, write_comparison, write_report

__all__ = [
    "ComparisonContext",
    "ReportContext",
    "build_context",
    "comparison_context",
    "render",
    "write",
    "write_comparison",
    "write_report",
]
