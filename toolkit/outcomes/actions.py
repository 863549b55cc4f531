"""Outcomes: the actions (``action_table``: every model x b, the probe's and the stopping rules'
actions) and what b samples of a model cost on each instance (``action_cost``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from toolkit.config import Study

# --------------------------------------------------------------------------------------------
# The actions and the outcomes table
# --------------------------------------------------------------------------------------------
MENUS = ("static", "probe", "adaptive")
"""The action menus: ``static`` (b samples of a model, decided before any is drawn),
``probe`` (after the probe, ``toolkit.probe``) and ``adaptive`` (a stopping rule over a model's
samples, ``toolkit.rules``). A policy chooses within one menu; the policies of the adaptive
menu choose among the static and the adaptive actions (``toolkit.run_data.action_menus``)."""


def action_table(study: Study) -> pa.Table:
    """Every model x b, cheapest first within a model (action ids in that order); with a probe
    (``[probe] samples = k``) then the probe's actions: b >= k samples of the probe model, the
    probe's k reused, and every other model's action after the probe; then each declared
    stopping rule of each of its models (``[[actions.rules]]``), b its cap, named
    ``model@esc(w=4,b<=16)``."""
    rows: list[tuple[str, str, int, str, int, str | None]] = [
        (f"{spec.name}@b={b}", spec.name, b, "static", 0, None)
        for spec in study.models
        for b in sorted(study.actions.samples)
    ]
    k, probe_model = study.probe.samples, study.probe_model
    if probe_model is not None:
        probe = f"{probe_model}@probe(k={k})"
        for spec in study.models:
            for b in sorted(study.actions.samples):
                if spec.name == probe_model and b >= k:
                    name = f"{probe}+{b - k}" if b > k else probe
                    rows.append((name, spec.name, b, "probe", k, None))
                elif spec.name != probe_model:
                    rows.append((f"{probe},then {spec.name}@b={b}", spec.name, b, "probe", k, None))
    for spec in study.models:
        for family in study.actions.rules:
            if family.models is None or spec.name in family.models:
                for rule in family.expand():
                    name = f"{spec.name}@{rule.label}"
                    rows.append((name, spec.name, rule.cap, "adaptive", 0, rule.label))
    for cascade in study.actions.cascades:
        for rule in cascade.expand():
            name, label = cascade_name(cascade.models, rule), f"cascade({rule.label})"
            rows.append((name, cascade.models[0], rule.cap, "adaptive", 0, label))
    return pa.table(
        {
            "action_id": pa.array(range(len(rows)), pa.int32()),
            "name": [row[0] for row in rows],
            "model": [row[1] for row in rows],
            "b": pa.array([row[2] for row in rows], pa.int32()),
            "aggregation": [study.actions.aggregation] * len(rows),
            "menu": [row[3] for row in rows],
            "probe_samples": pa.array([row[4] for row in rows], pa.int32()),
            "rule": pa.array([row[5] for row in rows], pa.string()),
        }
    )


def cascade_name(models: list[str], rule) -> str:
    """A cascade's action name: its models joined by ``>``, then ``@`` and the rule."""
    return f"{'>'.join(models)}@{rule.label}"


class Prompts:
    """Prompt tokens by instance id (missing: 0), looked up with a sorted array, not a dict."""

    def __init__(self, prompt_tokens: pa.Table) -> None:
        ids = prompt_tokens.column("instance_id").to_numpy()
        tokens = prompt_tokens.column("prompt_tokens").to_numpy(zero_copy_only=False)
        order = np.argsort(ids, kind="stable")
        self.ids, self.tokens = ids[order], tokens[order].astype(float)

    def lookup(self, instance_ids: np.ndarray) -> np.ndarray:
        if len(self.ids) == 0:
            return np.zeros(len(instance_ids))
        position = np.clip(np.searchsorted(self.ids, instance_ids), 0, len(self.ids) - 1)
        found = self.ids[position] == instance_ids
        return np.where(found, self.tokens[position], 0.0)


@dataclass(frozen=True)
class Usage:
    """What one sample of a model cost on each instance: mean output tokens, the prompt's tokens
    (logged, else the instance's prompt length) and the logged dollar cost (NaN where unknown)."""

    output_tokens: np.ndarray
    prompt_tokens: np.ndarray
    logged_cost: np.ndarray

    @classmethod
    def of(cls, profiles: pa.Table, instance_ids: np.ndarray, prompts: Prompts) -> Usage:
        def column(name: str) -> np.ndarray:
            if name not in profiles.column_names:  # profiles built without logged usage
                return np.full(profiles.num_rows, np.nan)
            return profiles.column(name).to_numpy(zero_copy_only=False).astype(float)

        logged_prompt = column("mean_prompt_tokens")
        prompt = np.where(np.isnan(logged_prompt), prompts.lookup(instance_ids), logged_prompt)
        return cls(column("mean_tokens"), prompt, column("mean_cost"))


def action_cost(actions, b: int | np.ndarray, usage: Usage, model) -> tuple[np.ndarray, np.ndarray]:
    """(cost, known cost) of b samples of a model on each instance, in ``actions.cost``; b may
    be an array (a stopping rule's expected samples per instance, ``toolkit.rules``).

    The known part is what is known before any sample is drawn, so a policy can plan with it:
    ``actions.fixed_cost``, and the prompt's tokens or dollars; the rest (the outputs) only the
    samples reveal. With b samples the prompt is billed once, or b times with
    ``actions.prompt = "per_sample"``::

        samples: cost = known = b + fixed
        tokens:  cost = P * prompt + b * output + fixed,        known = P * prompt + fixed
        usd:     cost = (P * prompt * in + b * output * out) / 1e6 + fixed,
                 known = P * prompt * in / 1e6 + fixed          (in, out: the model's prices)
                 or, with logged dollar costs, cost = b * logged + fixed, known = fixed

    with P = 1 (``once``) or b, and output and logged the means over the stored samples (the
    expectation over every b-subset)."""
    n = len(usage.output_tokens)
    fixed = np.full(n, float(actions.fixed_cost))
    if actions.cost == "samples":
        cost = fixed + np.asarray(b, dtype=np.float64)
        return cost, cost.copy()
    if actions.cost == "usd" and not np.isnan(usage.logged_cost).any():
        return b * usage.logged_cost + fixed, fixed
    if np.isnan(usage.output_tokens).any():
        raise ValueError(
            f"cost unit {actions.cost!r} needs output tokens for every sample of {model.name}"
        )
    billed = usage.prompt_tokens * (b if actions.prompt == "per_sample" else 1)
    if actions.cost == "tokens":
        known = billed + fixed
        return known + b * usage.output_tokens, known
    known = billed * model.price_input_per_mtok / 1e6 + fixed
    return known + b * usage.output_tokens * model.price_output_per_mtok / 1e6, known
