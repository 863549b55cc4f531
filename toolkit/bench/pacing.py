"""Online pacing against the batch price on a drifting stream, for a few horizons.

    stl bench pacing

A policy is trained here on 2,000 problems of every level (``toolkit.bench.serve``'s study);
a stream of 20,000 new ones is mostly easy (levels 1-2) in its first half and mostly hard
(4-5) in its second, each with its true pass@b. For each horizon (window 1,000), one request at
a time: the worst running mean planned cost error after the first 1,000 requests and where it
was, the second half's mean cost, and the accuracy against the batch-priced policy on the same
stream (which sees all 20,000 before deciding), in points. The reference row is a price frozen
after the first 1,000 requests (no pacing): it spends off B, so its accuracy is not at the same
spend and is no comparison.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import numpy as np

from toolkit.bench.serve import _COLUMNS, _problems, _trained

STREAM = 20_000
HORIZONS = (50, 100, 200, 400)


def _stream(rng: random.Random) -> tuple[list[dict], np.ndarray]:
    pool = _problems(rng, 40_000)
    by_level: dict[str, list] = {}
    for record, p in pool:
        by_level.setdefault(record["level"], []).append((record, p))
    records, chance = [], []
    for i in range(STREAM):
        mix = [5, 4, 2, 1, 1] if i < STREAM // 2 else [1, 1, 2, 4, 5]
        level = rng.choices(sorted(by_level), mix)[0]
        record, p = rng.choice(by_level[level])
        records.append({**record, "uid": f"s{i}"})
        chance.append(p)
    return records, np.asarray(chance)


def run(budget: float = 4.0) -> list[dict]:
    from toolkit.deploy import BudgetPolicy
    from toolkit.ingest import read_requests
    from toolkit.pacing import BudgetPacer, PriceWindow
    from toolkit.policies import priced_weights

    with tempfile.TemporaryDirectory() as folder:
        arguments, _ = _trained(Path(folder))
        policy = BudgetPolicy.from_run(arguments[1])
        records, chance = _stream(random.Random(9))
        path = Path(folder) / "stream.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        requests = read_requests(policy.study, path, _COLUMNS)
    b = policy.actions.column("b").to_numpy()
    accuracy = 1.0 - (1.0 - chance[:, None]) ** b[None, :]
    inputs = policy.inputs(requests)
    planned = inputs.planned_cost
    weights, _ = policy.weights(requests, budget)
    batch = float((weights * accuracy).sum(axis=1).mean())
    rows = np.arange(STREAM)
    half = STREAM // 2
    out = []
    for horizon in HORIZONS:
        pacer = BudgetPacer(policy, budget, horizon=horizon)
        classifier = pacer._classifier
        scores = classifier.scores(classifier.probabilities(inputs.frame))
        chosen = np.array(
            [pacer.decide(scores[i : i + 1], planned[i : i + 1])[1][0] for i in range(STREAM)]
        )
        cost = planned[rows, chosen]
        error = np.abs(np.cumsum(cost) / np.arange(1, STREAM + 1) / budget - 1.0)
        out.append(
            {
                "pacing": f"window 1,000, horizon {horizon}",
                "worst_error_%_after_1000": 100 * float(error[1_000:].max()),
                "at_request": 1_000 + int(error[1_000:].argmax()) + 1,
                "mean_cost": float(cost.mean()),
                "second_half_mean_cost": float(cost[half:].mean()),
                "cost_sd_over_B": float(cost.std() / budget),
                "accuracy_vs_batch_points": 100 * (float(accuracy[rows, chosen].mean()) - batch),
            }
        )
    frozen = PriceWindow(1_000, planned.shape[1], classifier.min_price())
    frozen.add(scores[:1_000], planned[:1_000])
    late = priced_weights(scores, planned, frozen.calibrate(budget))
    cost = (late * planned).sum(axis=1)
    error = np.abs(np.cumsum(cost) / np.arange(1, STREAM + 1) / budget - 1.0)
    out.append(
        {
            "pacing": "none: price frozen after 1,000 (reference)",
            "worst_error_%_after_1000": 100 * float(error[1_000:].max()),
            "at_request": 1_000 + int(error[1_000:].argmax()) + 1,
            "mean_cost": float(cost.mean()),
            "second_half_mean_cost": float(cost[half:].mean()),
            "cost_sd_over_B": float(cost.std() / budget),
            # not at the same spend: it overspends, so its accuracy is no comparison
            "accuracy_vs_batch_points": 100 * (float((late * accuracy).sum(axis=1).mean()) - batch),
        }
    )
    return out


__all__ = ["run"]
