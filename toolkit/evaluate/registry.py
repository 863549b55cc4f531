"""The evaluated policies: their names in evaluation order, the menu each chooses in, and a
study's ``policies.compare`` list expanded into them (``expand_policies``)."""

from __future__ import annotations

from toolkit.config import Study
from toolkit.learned import DEPLOYMENTS

BASELINE_ORDER = (
    "best_fixed",
    "uniform",
    "random",
    "prompt_length",
    "difficulty_bins",
)
LEARNED = DEPLOYMENTS
PROBED = ("oracle_probe", "learned_probe")
"""The policies that see the probe and choose among its actions (runs with a probe)."""
ADAPTIVE = ("oracle_adaptive", "learned_adaptive")
"""The policies that choose among the static and the adaptive actions (runs with
``[[actions.rules]]``); each rule family on its own is a ``rule_<family>`` policy."""
CEILING = ("label_known",)
"""Reference policies that see something no deployment can (the oracle label)."""
POLICIES = ("oracle", *BASELINE_ORDER, *LEARNED, *PROBED, *ADAPTIVE, *CEILING)
"""Every policy name but the ``always_<model>`` and ``rule_<family>`` rows, in evaluation
order."""
MENU_OF = {
    "oracle_probe": "probe",
    "learned_probe": "probe",
    "oracle_adaptive": "adaptive",
    "learned_adaptive": "adaptive",
}
"""The menu of each policy that does not choose among the static actions (and every
``rule_<family>``: the adaptive menu, ``menu_of``)."""


def menu_of(policy: str) -> str:
    """The menu a policy chooses in."""
    return "adaptive" if policy.startswith("rule_") else MENU_OF.get(policy, "static")


REFERENCES = ("oracle", "best_fixed", "uniform")
"""Always evaluated: every gain is measured against them."""


def expand_policies(
    compare: list[str],
    models: tuple[str, ...] = (),
    probe: bool = False,
    families: tuple[str, ...] = (),
) -> list[str]:
    """The study's ``policies.compare`` names as evaluated policies: ``learned`` is its three
    deployments (and ``learned_probe`` with a probe, ``learned_adaptive`` with stopping rules),
    ``always`` one ``always_<model>`` per model (with more than one model); the references
    (with a probe ``oracle_probe``; with stopping rules ``oracle_adaptive`` and each rule
    ``families``' ``rule_<family>``) are always evaluated."""
    wanted = set(compare) | set(REFERENCES)
    if "learned" in wanted:
        wanted |= set(LEARNED) | set(CEILING) | ({"learned_probe"} if probe else set())
        wanted |= {"learned_adaptive"} if families else set()
    if probe:
        wanted.add("oracle_probe")
    if families:
        wanted.add("oracle_adaptive")
    names = [p for p in POLICIES if p in wanted]
    names += [f"rule_{family}" for family in families]
    distinct = list(dict.fromkeys(models))
    if "always" in wanted and len(distinct) > 1:
        names[names.index("uniform") + 1 : names.index("uniform") + 1] = [
            f"always_{m}" for m in distinct
        ]
    return names


def rule_families(study: Study) -> tuple[str, ...]:
    """The study's stopping-rule families, in action order (``esc``, ``ac``, ..., ``cascade``)."""
    from toolkit.outcomes import action_table
    from toolkit.policies import rule_family

    labels = action_table(study).column("rule").to_pylist()
    return tuple(dict.fromkeys(f for f in map(rule_family, labels) if f))
