"""The budgets a run evaluates: the declared ones and a grid around them.

Every policy is run at every budget of ``budget_grid``: the declared budgets (``[budgets]
values``), a geometric grid of ``[budgets] grid`` budgets over the feasible range of mean cost
(every instance on its cheapest action to every instance on its dearest), and points 2% and 5%
either side of each declared budget. Each policy then has an accuracy-versus-realised-cost
curve, fine enough near each declared budget to compare policies at the same realised spend
(``toolkit.metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MATCH_OFFSETS = (0.95, 0.98, 1.02, 1.05)
"""Budgets around each declared one, as multiples of it: realised costs near B bracketed."""


def budget_grid(
    declared: Sequence[float], count: int, low: float, high: float
) -> tuple[float, ...]:
    """The declared budgets, their ``MATCH_OFFSETS`` and ``count`` geometric points between
    ``low`` and ``high``, sorted and distinct (rounded to 12 significant digits, so the same
    inputs always give the same floats)."""
    points = [float(b) for b in declared]
    points += [float(b) * m for b in declared for m in MATCH_OFFSETS]
    if count > 0 and high > low > 0:
        points += np.geomspace(low, high, count).tolist()
    elif count > 0 and high > low:
        points += np.linspace(low, high, count).tolist()
    rounded = {float(f"{p:.12g}") for p in points if p > 0}
    for b in declared:  # declared budgets exactly as given
        rounded.discard(float(f"{float(b):.12g}"))
        rounded.add(float(b))
    return tuple(sorted(rounded))


__all__ = ["MATCH_OFFSETS", "budget_grid"]
