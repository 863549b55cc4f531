"""Outcome estimation: the outcomes stage on the scaled default study, against a numpy reference.

    stl bench outcomes             # N = 1e5 and 1e6, K = 8: b in {1, 2, 3, 4, 6, 8, 12, 16}
    stl bench outcomes -n 1e6

Each N simulates the default study scaled to N instances x 48 samples (``bench.scale``) into a
fresh DuckDB file, then times, on its samples:

- ``stage_s``: the outcomes stage as a run makes it (``pipeline.write_outcomes``: the profile
  query, the exact estimates, the simulation's true accuracies, the table, the append), in a
  transaction rolled back afterwards;
- ``profiles_s``: its Ibis query alone (samples -> one answer profile per instance);
- ``truth_s``: its true accuracies alone (``majority_vote_accuracies_iid``: every b in one pass);
- ``numpy_truth_s``: the same quantity by the plain numpy reference here (``reference_iid``:
  one polynomial product per b, as the toolkit computed it up to 53326ef), with
  ``truth_max_diff`` the largest difference between the two (floating-point rounding only);
- ``stage_ref_s``: the stage with the reference's truth instead (``stage_s - truth_s +
  numpy_truth_s``; every other part of the stage is the same code), and ``stage_x`` their ratio.

These are measurements, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

import ibis
import numpy as np

from toolkit import db
from toolkit.bench import peak_rss_mib
from toolkit.bench.scale import scaled_study
from toolkit.outcomes import answer_profiles, majority_vote_accuracies_iid, model_truth
from toolkit.outcomes.accuracy import iid_series, in_blocks, vote_sum
from toolkit.pipeline import RunResult, quiet, run_study, write_outcomes

DEFAULT_SIZES = (100_000, 1_000_000)
T = TypeVar("T")
ACTIONS = 8


def reference_iid(p_correct: np.ndarray, p_wrong: np.ndarray, b: int) -> np.ndarray:
    """P(a majority vote over b i.i.d. samples is correct), one b at a time: for each count x
    of the correct answer, the product of every answer's series to degree b - x
    (``accuracy.vote_sum``), on the same row blocks and threads (``accuracy.in_blocks``)."""

    def block(correct: np.ndarray, wrong: np.ndarray) -> np.ndarray:
        target = iid_series(np.maximum(correct, 1e-300), b)
        return vote_sum(target, iid_series(wrong, b), b) * math.factorial(b)

    return in_blocks(block, p_correct, p_wrong)


class _RolledBack(Exception):
    """Ends the timed transaction: the stage's writes are undone."""


def _timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def _stage_seconds(backend, study, run_id: int, database) -> float:
    """The outcomes stage as a run makes it, its writes rolled back."""
    result = RunResult(run_id=run_id, database=database)
    start = time.perf_counter()
    try:
        with db.transaction(backend):
            write_outcomes(backend, study, run_id, result, True, quiet)
            seconds = time.perf_counter() - start
            raise _RolledBack
    except _RolledBack:
        return seconds


def measure(instances: int) -> dict:
    """One row: the stage and its parts at N instances (see the module docstring)."""
    study = scaled_study(instances, ACTIONS)
    bs = sorted(set(study.actions.samples))
    with tempfile.TemporaryDirectory() as folder:
        landed = run_study(study, folder, stages=("simulate",))
        backend = db.connect(landed.database)
        try:
            run_id = landed.run_id
            stage_s = _stage_seconds(backend, study, run_id, landed.database)
            samples = backend.table("samples").filter(ibis._.run_id == run_id)
            profiles_s, _ = _timed(lambda: backend.to_pyarrow(answer_profiles(samples)))
            truth = backend.to_pyarrow(backend.table("sim_truth").filter(ibis._.run_id == run_id))
            known = model_truth(truth, study.models[0].name)
            assert known is not None
            truth_s, fast = _timed(lambda: majority_vote_accuracies_iid(*known, bs))
            numpy_s, slow = _timed(lambda: np.column_stack([reference_iid(*known, b) for b in bs]))
        finally:
            backend.disconnect()
    stage_ref_s = stage_s - truth_s + numpy_s
    return {
        "instances": instances,
        "samples": instances * study.estimation.samples_per_instance,
        "actions": len(bs),
        "stage_s": stage_s,
        "profiles_s": profiles_s,
        "truth_s": truth_s,
        "numpy_truth_s": numpy_s,
        "truth_x": numpy_s / truth_s,
        "truth_max_diff": float(np.max(np.abs(fast - slow))),
        "stage_ref_s": stage_ref_s,
        "stage_x": stage_ref_s / stage_s,
        "peak_rss_mib": peak_rss_mib(),
    }


def run(sizes: tuple[int, ...] | None = None) -> list[dict]:
    return [measure(n) for n in sizes or DEFAULT_SIZES]


if __name__ == "__main__":
    import sys

    from toolkit.bench import print_table

    print_table(run(tuple(int(float(a)) for a in sys.argv[1:]) or None))
