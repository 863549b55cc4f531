"""How much of the oracle's gain is estimation noise.

The oracle is solved and scored on the same estimated accuracies, so it profits from their
estimation noise, which no policy can: on an instance whose stored samples happen to favour
b = 4 over b = 2, the oracle buys b = 4 and is credited with the lucky estimate. Its gain is
therefore measured twice, on evidence it did not choose on:

- in simulation, on the true accuracy (``outcomes.acc_true``): the oracle's allocation, and the
  fixed allocation it is compared with, scored on ``acc_true``;
- on real logs, on disjoint halves of each instance's samples (``outcomes.acc_half_a``,
  ``acc_half_b``: every instance's and model's stored samples shuffled with a seeded
  permutation and cut in two): the oracle and the best fixed allocation are chosen on half A
  and scored on half A (apparent) and on half B (held out). Only actions that half a sample set
  can estimate (b <= n/2) take part, so these numbers are about a reduced action set.

``1 - held-out gain / apparent gain`` is the share of the oracle's apparent gain that is
estimation noise (``oracle_noise``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.config import Study
from toolkit.policies import concave_hull_actions, fixed_mix_weights
from toolkit.solve import solve_columns

if TYPE_CHECKING:
    from toolkit.run_data import OutcomeMatrix

HALF_STREAM = 1_000_004
"""SeedSequence key of the halves' permutation."""


def split_halves(samples: pa.Table, seed: int) -> tuple[pa.Table, pa.Table]:
    """Every (instance, model)'s samples in a seeded random order, cut into two halves (the
    first floor(n / 2) and the rest)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, HALF_STREAM])))
    instance = samples.column("instance_id").to_numpy()
    model = pc.dictionary_encode(samples.column("model")).combine_chunks().indices.to_numpy()
    order = np.lexsort((rng.random(len(instance)), model, instance))
    group = np.r_[
        True,
        (instance[order][1:] != instance[order][:-1]) | (model[order][1:] != model[order][:-1]),
    ]
    starts = np.flatnonzero(group)
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    first = np.zeros(len(order), dtype=bool)
    first[order] = position < np.repeat(sizes // 2, sizes)
    return samples.filter(pa.array(first)), samples.filter(pa.array(~first))


def half_outcomes(study: Study, samples: pa.Table, prompt_tokens: pa.Table) -> pa.Table | None:
    """(instance_id, action_id, acc_half_a, acc_half_b): each action's accuracy estimated on
    either half of the samples, null where a half holds fewer samples than the action's b;
    None when no model has two samples of an instance."""
    from toolkit.outcomes import answer_profiles, estimate_outcomes, score_levels
    from toolkit.scores import scored_samples

    if samples.num_rows == 0:
        return None
    halves = []
    parts = split_halves(samples, study.study.seed)
    if min(part.num_rows for part in parts) == 0:  # one sample per instance: no halves
        return None
    for half in parts:
        con = ibis.duckdb.connect()
        profiles = con.to_pyarrow(answer_profiles(ibis.memtable(half)))
        levels = scored = None
        if study.actions.aggregation == "best_of":
            levels = con.to_pyarrow(score_levels(ibis.memtable(half)))
        if study.actions.aggregation == "weighted":
            scored = con.to_pyarrow(scored_samples(ibis.memtable(half)))
        with np.errstate(divide="ignore", invalid="ignore"):  # b > n: nulled below
            outcomes = estimate_outcomes(
                study, profiles, prompt_tokens, levels=levels, scored=scored
            )
        halves.append((outcomes, profiles))
    (a, profiles_a), (b, profiles_b) = halves
    if a.num_rows == 0 or a.num_rows != b.num_rows:
        return None
    keep_a = _estimable(study, a, profiles_a)
    keep_b = _estimable(study, b, profiles_b)
    return pa.table(
        {
            "instance_id": a.column("instance_id"),
            "action_id": a.column("action_id"),
            "acc_half_a": pc.if_else(keep_a, a.column("acc"), pa.scalar(None, pa.float64())),
            "acc_half_b": pc.if_else(keep_b, b.column("acc"), pa.scalar(None, pa.float64())),
        }
    )


def _estimable(study: Study, outcomes: pa.Table, profiles: pa.Table) -> pa.Array:
    """Whether each outcome row's half holds at least b samples of its model."""
    from toolkit.outcomes import action_table

    actions = action_table(study)
    b_of = dict(
        zip(actions.column("action_id").to_pylist(), actions.column("b").to_pylist(), strict=True)
    )
    model_of = dict(
        zip(
            actions.column("action_id").to_pylist(),
            actions.column("model").to_pylist(),
            strict=True,
        )
    )
    n = {
        (i, m): count
        for i, m, count in zip(
            profiles.column("instance_id").to_pylist(),
            profiles.column("model").to_pylist(),
            profiles.column("n").to_pylist(),
            strict=True,
        )
    }
    return pa.array(
        [
            n.get((i, model_of[a]), 0) >= b_of[a]
            for i, a in zip(
                outcomes.column("instance_id").to_pylist(),
                outcomes.column("action_id").to_pylist(),
                strict=True,
            )
        ]
    )


@dataclass(frozen=True)
class OracleNoise:
    """The oracle's gain over a fixed allocation at one budget, on the evidence it was chosen
    on (apparent) and on evidence it was not (held out), per test instance."""

    budget: float
    evidence: str
    """true (simulation: acc_true) | halves (real data: chosen on half A, scored on half B)."""
    actions: str
    """The actions taken part: all, or those a half can estimate (b <= n/2)."""
    apparent: np.ndarray
    heldout: np.ndarray


def oracle_noise(
    outcomes: OutcomeMatrix,
    budget: float,
    oracle_weights: np.ndarray,
    fixed_weights: np.ndarray | None,
    action_names: Sequence[str],
) -> OracleNoise | None:
    """The oracle's gain on the test instances at ``budget``, apparent and held out (see the
    module docstring); None when the run has neither truth nor two samples per half."""
    o = outcomes
    if o.acc_true is not None:
        if fixed_weights is None:
            return None
        diff = oracle_weights - fixed_weights
        return OracleNoise(
            budget, "true", "all", (diff * o.acc).sum(axis=1), (diff * o.acc_true).sum(axis=1)
        )
    if o.acc_half_a is None or o.acc_half_b is None:
        return None
    usable = ~np.isnan(o.acc_half_a).any(axis=0) & ~np.isnan(o.acc_half_b).any(axis=0)
    if usable.sum() < 2:
        return None
    columns = np.flatnonzero(usable)
    acc_a, acc_b, cost = o.acc_half_a[:, columns], o.acc_half_b[:, columns], o.cost[:, columns]
    n, k = acc_a.shape
    long = {
        "instance_id": np.repeat(o.instance_ids, k),
        "action_id": np.tile(o.action_ids[columns], n),
        "acc": acc_a.ravel(),
        "cost": cost.ravel(),
    }
    (allocation,) = solve_columns(long, [budget], clip=True)
    chosen = outcomes.subset(o.instance_ids).weights(allocation.assignment)[:, columns]
    mean_cost = cost.mean(axis=0)
    steps = [int(a) for a in concave_hull_actions(mean_cost, acc_a.mean(axis=0))]
    fixed, _ = fixed_mix_weights(n, k, steps, mean_cost[steps], allocation.mean_cost)
    diff = chosen - fixed
    names = ", ".join(action_names[int(c)] for c in columns)
    return OracleNoise(
        budget, "halves", names, (diff * acc_a).sum(axis=1), (diff * acc_b).sum(axis=1)
    )


__all__ = ["HALF_STREAM", "OracleNoise", "half_outcomes", "oracle_noise", "split_halves"]
