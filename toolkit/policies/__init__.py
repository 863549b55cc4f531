"""Allocation policies: objects with one interface, ``fit`` on a training split and ``allocate``
a batch of inputs at a budget, and the price calibration they share.

A policy allocates compute to n instances as a weight matrix ``W`` (n x K actions, rows summing
to 1; a row with two non-zero weights mixes two actions). Its expected accuracy is
``mean_i sum_a W_ia acc_i(a)`` and its expected cost ``mean_i sum_a W_ia cost_i(a)``.

**What a policy sees.** ``Inputs``: the instances' features and their *planned* cost of every
action (``toolkit.costs``): the part of the cost known before spending (the prompt, fixed costs)
plus a prediction of the rest. Never the outcomes. What it knows about accuracies comes from the
training split (``TrainingSet``). The Lagrangian oracle (``toolkit.solve``) is the one policy that
sees outcomes, as the upper bound.

**Meeting the budget.** A policy priced on the batch it serves meets ``B`` exactly in planned
cost: a *price* mu turns scores into a choice, ``argmax_a score_i(a) - mu * planned_i(a)`` (ties:
the cheaper action); mean planned cost falls as mu rises, in steps at the prices where an
instance's choice switches to a cheaper action (its upper concave hull in (cost, score)), so the
step that crosses B is found exactly from the sorted switch prices (a bisection where switches
lie too close together), and the instances that switch there are mixed between their two
choices in the proportion that meets B (``calibrate_price``). The realised cost then differs
from B only by how far the outputs' cost differs from its prediction. Calibrated on one set of
instances, the same price applied to another set meets B only up to sampling noise
(``priced_weights``).

Baselines (``BASELINES``), each ``fit`` on a ``TrainingSet`` and priced on the batch:

- ``uniform``: every instance the same action, mixing the two actions, in order of cost, whose
  mean planned cost on the batch brackets B (samples: the two neighbouring b, dominated or not).
- ``best_fixed``: the same, but only over the upper concave hull of the actions' training mean
  (cost, accuracy), so a dominated action (majority@2, no better than majority@1) is never
  bought: the best allocation that treats every instance alike.
- ``always_<model>``: ``uniform`` over one model's actions (studies with several models).
- ``random``: every instance draws its action from the training oracle's action mix at B (the
  oracle's spend shuffled across instances), tilted ``p_a ~ mix_a exp(-t c_a)`` so that the
  batch's mean planned cost is B; reported in expectation over the draw.
- ``prompt_length``: planned cost proportional to the prompt length, ``clip(kappa * len_i)``,
  each instance mixing its two actions around that cost; kappa bisected to meet B.
- ``difficulty_bins``: quantile bins of an observable difficulty signal (Snell et al., 2024: the
  best action per difficulty bin); a bin's accuracy curve is its training mean, and the bins'
  actions are priced to meet B.

The package: ``interface`` (``Policy``, ``Inputs``, ``TrainingSet``, ``Decision``), ``pricing``
(price calibration and price curves), ``fixed`` (the same mix for every instance, and the
mixing weights), ``heuristics`` (``random``, ``prompt_length``, ``difficulty_bins``); here, the
baselines by family name.
"""

from __future__ import annotations

from typing import Any

from toolkit.policies.fixed import (
    AlwaysModel,
    BestFixed,
    RuleFamily,
    Uniform,
    action_ladder,
    concave_hull_actions,
    fixed_mix_weights,
    rule_family,
)
from toolkit.policies.heuristics import (
    BIN_SIGNALS,
    N_BINS,
    DifficultyBins,
    PromptLength,
    RandomMix,
    ladder_weights,
)
from toolkit.policies.interface import Decision, Inputs, Policy, TrainingSet
from toolkit.policies.pricing import (
    SAME_PRICE,
    LastCurve,
    PriceCalibration,
    PriceCurve,
    bisect_increasing,
    calibrate_price,
    log_probability_scores,
    mean_cost_by_price,
    onehot,
    price_choice,
    priced_decision,
    priced_weights,
    switch_prices,
)

BASELINES: dict[str, type[Policy]] = {
    policy.name: policy
    for policy in (
        Uniform,
        BestFixed,
        AlwaysModel,
        RuleFamily,
        RandomMix,
        PromptLength,
        DifficultyBins,
    )
}
"""Every baseline by its family name (``always`` is one ``always_<model>`` per model)."""


def policy_from_state(family: str, state: dict[str, Any]) -> Policy:
    """A fitted baseline back from ``Policy.state()``."""
    return BASELINES[family].from_state(state)


__all__ = [
    "BASELINES",
    "BIN_SIGNALS",
    "N_BINS",
    "SAME_PRICE",
    "AlwaysModel",
    "BestFixed",
    "Decision",
    "DifficultyBins",
    "Inputs",
    "Policy",
    "PriceCalibration",
    "PromptLength",
    "RandomMix",
    "RuleFamily",
    "TrainingSet",
    "Uniform",
    "action_ladder",
    "bisect_increasing",
    "LastCurve",
    "PriceCurve",
    "calibrate_price",
    "concave_hull_actions",
    "fixed_mix_weights",
    "ladder_weights",
    "log_probability_scores",
    "mean_cost_by_price",
    "onehot",
    "rule_family",
    "policy_from_state",
    "price_choice",
    "priced_decision",
    "priced_weights",
    "switch_prices",
]
