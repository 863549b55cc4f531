"""Solve-then-Learn: allocate LLM test-time compute per input under a budget.

The public verbs, in the order data flows through them::

    study = load_study("study.toml")
    result = run_study(study, "out/")        # simulate -> outcomes -> solve -> learn -> evaluate
"""

from toolkit.config import Study, default_study_path, load_study, parse_study
from toolkit.errors import StudyError
from toolkit.outcomes import answer_profiles, estimate_outcomes, majority_vote_accuracy
from toolkit.pipeline import RunResult, run_study
from toolkit.simulate import simulate

__all__ = [
    "RunResult",
    "Study",
    "StudyError",
    "answer_profiles",
    "default_study_path",
    "estimate_outcomes",
    "load_study",
    "majority_vote_accuracy",
    "parse_study",
    "run_study",
    "simulate",
]
