"""Solve-then-Learn: allocate LLM test-time compute per input under a budget.

The public verbs, in the order data flows through them::

    study = load_study("study.toml")
    result = run_study(study, "out/")   # simulate | ingest -> outcomes -> solve -> learn
                                        #   -> evaluate -> report, in one transaction

Each stage is also a verb of its own: ``simulate`` and ``ingest`` (Arrow tables),
``estimate_outcomes``, ``solve_budget`` / ``solve_budgets`` (Ibis, any backend), ``learn``,
``evaluate`` and ``write_report``.
"""

import importlib

TYPE_CHECKING = False
"""(Not ``typing.TYPE_CHECKING``: importing typing takes long enough at start that a Ctrl-C could
land in it, before ``toolkit.entry`` has its handlers in; type checkers read this name alike.)"""

_PUBLIC = {
    "Study": "toolkit.config",
    "default_study_path": "toolkit.config",
    "load_study": "toolkit.config",
    "parse_study": "toolkit.config",
    "StudyError": "toolkit.errors",
    "BudgetPolicy": "toolkit.deploy",
    "evaluate": "toolkit.evaluate",
    "ingest": "toolkit.ingest",
    "read_requests": "toolkit.ingest",
    "learn": "toolkit.learn",
    "answer_profiles": "toolkit.outcomes",
    "estimate_outcomes": "toolkit.outcomes",
    "majority_vote_accuracy": "toolkit.outcomes",
    "RunResult": "toolkit.pipeline",
    "RunResults": "toolkit.results",
    "open_run": "toolkit.results",
    "run_study": "toolkit.pipeline",
    "write_report": "toolkit.report",
    "simulate": "toolkit.simulate",
    "Allocation": "toolkit.solve",
    "oracle_actions": "toolkit.solve",
    "solve_budget": "toolkit.solve",
    "solve_budgets": "toolkit.solve",
}
"""Where each public verb lives: imported when first used (``toolkit.run_study``), so that
``import toolkit`` and the ``stl`` command start without loading CatBoost, ibis or matplotlib."""


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


if TYPE_CHECKING:  # what type checkers and editors see
    from toolkit.config import Study, default_study_path, load_study, parse_study
    from toolkit.deploy import BudgetPolicy
    from toolkit.errors import StudyError
    from toolkit.evaluate import evaluate
    from toolkit.ingest import ingest, read_requests
    from toolkit.learn import learn
    from toolkit.outcomes import answer_profiles, estimate_outcomes, majority_vote_accuracy
    from toolkit.pipeline import RunResult, run_study
    from toolkit.report import write_report
    from toolkit.results import RunResults, open_run
    from toolkit.simulate import simulate
    from toolkit.solve import Allocation, oracle_actions, solve_budget, solve_budgets

__all__ = [
    "Allocation",
    "BudgetPolicy",
    "RunResult",
    "RunResults",
    "Study",
    "StudyError",
    "answer_profiles",
    "default_study_path",
    "estimate_outcomes",
    "evaluate",
    "ingest",
    "learn",
    "load_study",
    "majority_vote_accuracy",
    "open_run",
    "oracle_actions",
    "parse_study",
    "read_requests",
    "run_study",
    "simulate",
    "solve_budget",
    "solve_budgets",
    "write_report",
]
