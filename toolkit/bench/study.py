"""The whole default study, stage by stage: simulate, outcomes, solve, learn, evaluate (and
whatever later stages ``run_study`` runs by default, such as the report).

    python -m toolkit.bench.study              # the default study
    python -m toolkit.bench.study STUDY.toml

One row per stage with its wall seconds and share of the total, then the total against the
target: the default study (5,000 instances x 48 samples, 5 budgets x 3 CatBoost seeds) runs
in under 60 s on 2 cores. The learn row also says how many CatBoost fits it made and their mean
seconds: they are most of the run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb

from toolkit.bench import peak_rss_mib, print_table
from toolkit.config import Study, default_study_path, load_study
from toolkit.pipeline import run_study

TARGET_SECONDS = 60.0


def run(study: Study | None = None) -> list[dict]:
    """Run the study into a fresh temporary folder; one row per stage, then the total."""
    study = study or load_study(default_study_path())
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = run_study(study, folder)
        total = time.perf_counter() - start
        with duckdb.connect(str(result.database), read_only=True) as con:
            ((fits, fit_seconds),) = con.execute(
                "select count(*), coalesce(avg(fit_seconds), 0) from policy_models "
                "where run_id = ?",
                [result.run_id],
            ).fetchall()
    rows = []
    for stage, seconds in result.stage_seconds.items():
        note = f"{fits} CatBoost fits, {fit_seconds:.2f} s each" if stage == "learn" else ""
        rows.append({"stage": stage, "seconds": seconds, "share": seconds / total, "note": note})
    verdict = "met" if total < TARGET_SECONDS else "MISSED"
    rows.append(
        {
            "stage": "total (with schema, commit)",
            "seconds": total,
            "share": 1.0,
            "note": f"target < {TARGET_SECONDS:g} s: {verdict}; peak RSS {peak_rss_mib():,.0f} MiB",
        }
    )
    return rows


if __name__ == "__main__":
    print_table(run(load_study(Path(sys.argv[1])) if len(sys.argv) > 1 else None))
