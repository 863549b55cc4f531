"""Outcome estimation: acc(x, a) and cost(x, a) for every instance and action.

The samples table is reduced with Ibis to one answer profile per instance and model (how many
samples, how many were correct, and the sizes of the groups of equal answers). The accuracy of
an action depends on the instance only through that profile, so it is computed once per
distinct profile with exact combinatorics (numpy) and joined back.

Majority vote over b samples drawn without replacement from n stored samples (answer groups of
sizes w_1..w_G, the correct group of size c), ties broken uniformly at random::

    acc = 1/C(n, b) * sum_{x=1..b} C(c, x) * sum_{draws y of the other groups, sum y = b - x,
                                                  all y_j <= x} prod_j C(w_j, y_j) / (1 + t(y))

where t(y) is the number of other groups tied with the correct one (y_j = x). With
1/(1+t) = int_0^1 u^t du, the inner sum is int_0^1 [z^(b-x)] prod_j (sum_{y<x} C(w_j, y) z^y +
u C(w_j, x) z^x) du: a polynomial in u, integrated exactly by Gauss-Legendre quadrature.
The same formula with C(w, y) replaced by p^y / y! and 1/C(n, b) by b! gives the accuracy
under i.i.d. sampling from a known answer distribution (the simulation's true accuracy).

pass@b (any of b correct, an oracle verifier) uses the unbiased estimator
``1 - C(n - c, b) / C(n, b)`` (Chen et al., 2021), and ``1 - (1 - p)^b`` for the truth.

Best-of-b by a score (a reward model's, a verifier's) keeps the answer of the highest-scored of
b samples drawn without replacement, ties broken uniformly at random. It depends on the instance
only through its score levels (``score_levels``): with the levels sorted ascending, ``m_s``
samples at level s of which ``c_s`` are correct and ``L_s`` samples at or below it, the best of
the b lies at level s with probability ``(C(L_s, b) - C(L_s - m_s, b)) / C(n, b)``, and is then
a uniform draw among the level's samples (those of the subset at level s are a uniform subset
of the level), so::

    acc = sum_s (C(L_s, b) - C(L_s - m_s, b)) / C(n, b) * c_s / m_s

The package: ``profiles`` (samples -> answer profiles, with Ibis), ``accuracy`` (the exact
formulas), ``actions`` (the action table and action costs), ``table`` (``estimate_outcomes``).
"""

from toolkit.outcomes.accuracy import (
    best_of_accuracy,
    majority_vote_accuracies_iid,
    majority_vote_accuracy,
    majority_vote_accuracy_iid,
    pad_groups,
    pass_at_b,
)
from toolkit.outcomes.actions import (
    MENUS,
    Prompts,
    Usage,
    action_cost,
    action_table,
    cascade_name,
)
from toolkit.outcomes.profiles import answer_counts, answer_profiles, profile_keys, score_levels
from toolkit.outcomes.table import estimate_outcomes, model_truth, nullable_floats

__all__ = [
    "MENUS",
    "Prompts",
    "Usage",
    "action_cost",
    "action_table",
    "answer_counts",
    "answer_profiles",
    "best_of_accuracy",
    "cascade_name",
    "estimate_outcomes",
    "majority_vote_accuracies_iid",
    "majority_vote_accuracy",
    "majority_vote_accuracy_iid",
    "model_truth",
    "nullable_floats",
    "pad_groups",
    "pass_at_b",
    "profile_keys",
    "score_levels",
]
