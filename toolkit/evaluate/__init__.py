"""Evaluate: every stored policy on the test instances at every budget, compared at the same
realised spend, with paired bootstrap intervals and the regret bound.

Policies (``expand_policies``), all fitted by ``toolkit.learn`` on each fold's training split
and read back as stored; this stage only calls their ``allocate`` on the test inputs, the same
call a deployment makes:

=======================  ==================================================  ================
policy                   what it is                                          budget met on
=======================  ==================================================  ================
``oracle``               the Lagrangian oracle solved on the test outcomes:  test outcomes
                         the upper bound (it sees the outcomes it is scored
                         on, so it also profits from their estimation noise)
``best_fixed``           one mix for all, over the concave hull of actions   test inputs
``uniform``              one mix for all, the two actions around B           test inputs
``always_<model>``       uniform over one model's actions                    test inputs
``random``               the training oracle's action mix                    test inputs
``prompt_length``        planned cost proportional to prompt length          test inputs
``difficulty_bins``      best action per bin of a difficulty signal          test inputs
``learned_argmax``       the classifier's most probable action               (not priced)
``learned_calibrated``   priced decoder, mu set on the validation split      validation
``learned_batch``        the same decoder, mu set on the test batch          test inputs
=======================  ==================================================  ================

"Test inputs" means the policy sets its price on the batch it serves from the inputs only
(features and planned costs, ``toolkit.costs``), never the outcomes: its mean *planned* cost is
B exactly. With cross-fitting (``[split] folds = k``) each fold's test split is allocated by
that fold's policies and the folds are pooled: every instance is scored once.

**Two allocations per policy and budget.** The allocation priced at B (``accuracy``,
``planned_cost``, realised ``cost``, ``budget_error``, imitation and regret metrics), and the
*matched* allocation whose realised mean cost is B exactly, a mix of two of its grid budgets
(``toolkit.metrics``): every comparison between policies is made there (``matched_accuracy``
and the gains). Metrics per policy, budget and CatBoost seed (``evaluations``, long form;
seedless policies have a null seed), each with a paired bootstrap 95% interval:

- ``accuracy``, ``planned_cost``, ``cost``, ``budget_error`` = cost / B - 1;
- ``matched_accuracy``: accuracy at realised cost B; ``gain_vs_best_fixed``,
  ``relative_gain_vs_best_fixed``, ``gain_vs_uniform``, ``relative_gain_vs_uniform``: paired
  differences of matched accuracies; ``oracle_share``: gain_vs_best_fixed / the oracle's;
- ``imitation_accuracy``: mean weight on the oracle label at lambda*(B) (top-1 agreement for a
  hard policy); ``balanced_accuracy``: the mean of the per-class recalls;
- ``lagrangian_regret``: ``mean_i max_a L_i(a) - sum_a W_ia L_i(a)`` with
  ``L_i(a) = acc_i(a) - lambda* cost_i(a)``; ``regret_bound``: ``eps * Delta_max`` with eps the
  imitation error and ``Delta_max = max_i max_a L_i(a) - min_a L_i(a)``. Each mistaken instance
  loses at most its own gap, so regret <= eps * Delta_max for every policy; ``regret_bounds``
  records the check.

Undefined values (a share of an oracle gain of zero, a matched accuracy where no two budgets
bracket B) are NULL. ``policy_curves`` holds every policy's (planned cost, realised cost,
accuracy) over the grid, ``policy_summaries`` its AIQ and cost to reach the best action.

The package: ``registry`` (the policy names and menus, ``expand_policies``), ``runs`` (the
pooled test set and the stored policies), ``compare`` (curves, matched spend, the references),
``measures`` (the metrics of one allocation), ``rows`` (the tables' rows), ``learning`` (the
learning curve) and ``stage`` (``evaluate``).
"""

from toolkit.evaluate.measures import METRICS
from toolkit.evaluate.registry import LEARNED, POLICIES, expand_policies
from toolkit.evaluate.runs import PolicyRun, TestSet
from toolkit.evaluate.stage import EvaluationSummary, evaluate

__all__ = [
    "LEARNED",
    "METRICS",
    "POLICIES",
    "EvaluationSummary",
    "PolicyRun",
    "TestSet",
    "evaluate",
    "expand_policies",
]
