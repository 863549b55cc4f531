"""Simulation throughput: draw N instances x 48 samples and land them in a DuckDB file.

    python -m toolkit.bench.simulate            # N = 1e5 and 1e6
    stl bench simulate -n 100000 -n 1000000

Each row times the simulator alone (drawing every batch, writing nothing) and then simulate +
land (the same batches appended into a fresh DuckDB file inside one transaction, as a run does),
and prints samples per second for both; the ratio shows what storage costs on top of drawing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from toolkit import db
from toolkit.bench import peak_rss_mib, print_table
from toolkit.config import default_study_path, load_study
from toolkit.simulate import simulate


def _study(instances: int):
    base = load_study(default_study_path())
    data = base.model_dump()
    data["study"]["name"] = f"bench-simulate-{instances}"
    data["datasets"][0]["instances"] = instances
    return type(base).model_validate(data)


def run(sizes: tuple[int, ...] = (100_000, 1_000_000)) -> list[dict]:
    rows = []
    for n in sizes:
        study = _study(n)
        start = time.perf_counter()
        drawn = 0
        for data in simulate(study):
            for batch in data.sample_batches():
                drawn += batch.num_rows
        draw_seconds = time.perf_counter() - start

        with tempfile.TemporaryDirectory() as tmp:
            backend = db.connect(Path(tmp) / "bench.duckdb")
            start = time.perf_counter()
            with db.transaction(backend):
                db.create_schema(backend)
                for data in simulate(study):
                    db.append(backend, "instances", data.instances, 1)
                    db.append(backend, "sim_truth", data.truth, 1)
                    landed = db.append(backend, "samples", data.sample_batches(), 1)
            land_seconds = time.perf_counter() - start
            backend.disconnect()
        assert landed == drawn
        rows.append(
            {
                "instances": n,
                "samples": drawn,
                "draw_s": draw_seconds,
                "draw_samples_per_s": drawn / draw_seconds,
                "draw_and_land_s": land_seconds,
                "land_samples_per_s": drawn / land_seconds,
                "land/draw": land_seconds / draw_seconds,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    return rows


if __name__ == "__main__":
    sizes = tuple(int(float(a)) for a in sys.argv[1:]) or (100_000, 1_000_000)
    print_table(run(sizes))
