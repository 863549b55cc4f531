-- policy_frontier: per run, policy and budget, every policy on the test split compared at the
-- same realised spend: each number is the mean over the policy's CatBoost seeds (one row for
-- seedless policies), intervals are paired bootstrap 95% intervals (evaluations) averaged over
-- seeds in the same way. Read one budget for the headline table, one policy for its curve.
--
-- Two allocations stand behind each row (toolkit/evaluate.py): the policy priced at B
-- (accuracy, planned_cost, cost, budget_error, imitation, regret), and the matched allocation,
-- a mix of two of its grid budgets whose realised mean cost is B exactly (matched_accuracy and
-- every gain). The oracle is solved on the test outcomes it is scored on, so it also profits
-- from their estimation noise: an upper bound no policy can reach.
--
-- Columns:
--   run_id                            the run
--   policy                            oracle | best_fixed | uniform | always_<model> | random |
--                                     prompt_length | difficulty_bins | learned_argmax |
--                                     learned_calibrated | learned_batch
--   budget                            target mean cost per instance, in runs.cost_unit
--   n_seeds                           CatBoost seeds averaged (1 for seedless policies)
--   binding                           false when the test oracle spends less than B: more
--                                     compute buys no accuracy at this budget
--   accuracy                          mean expected accuracy of the allocation priced at B
--   accuracy_ci_low                   lower end of its 95% interval
--   accuracy_ci_high                  upper end of that interval
--   planned_cost                      its mean planned cost (= B for policies priced on the batch)
--   cost                              its realised mean cost
--   budget_error                      cost / budget - 1
--   within_budget                     cost <= budget x (1 + [budgets] tolerance)
--   matched_accuracy                  accuracy at realised mean cost B (null: no two budgets of
--                                     the policy's curve bracket B)
--   matched_accuracy_ci_low           lower end of its 95% interval
--   matched_accuracy_ci_high          upper end of that interval
--   gain_vs_best_fixed                matched_accuracy - best_fixed's, paired
--   gain_vs_best_fixed_ci_low         lower end of its paired 95% interval
--   gain_vs_best_fixed_ci_high        upper end of that interval
--   verdict                           the gain over best_fixed: above zero | includes zero |
--                                     below zero (by its interval) | reference (best_fixed) |
--                                     undefined (no matched accuracy)
--   relative_gain_vs_best_fixed       gain_vs_best_fixed / best_fixed's matched accuracy
--   gain_vs_uniform                   matched_accuracy - uniform's, paired
--   gain_vs_uniform_ci_low            lower end of its paired 95% interval
--   gain_vs_uniform_ci_high           upper end of that interval
--   relative_gain_vs_uniform          gain_vs_uniform / uniform's matched accuracy (the paper's
--                                     "relative gain over uniform")
--   relative_gain_vs_uniform_ci_low   lower end of its paired 95% interval
--   relative_gain_vs_uniform_ci_high  upper end of that interval
--   oracle_share                      gain_vs_best_fixed / the oracle's (null when the oracle
--                                     gains nothing over best_fixed)
--   oracle_share_ci_low               lower end of its paired 95% interval
--   oracle_share_ci_high              upper end of that interval
--   oracle_share_heldout              gain_vs_best_fixed / the oracle's gain on held-out evidence
--                                     (acc_true, or disjoint sample halves: oracle_noise); null where
--                                     neither exists
--   oracle_share_heldout_ci_low       lower end of its paired 95% interval
--   oracle_share_heldout_ci_high      upper end of that interval
--   imitation_accuracy                mean weight on the oracle label at lambda*
--   imitation_accuracy_ci_low         lower end of its 95% interval
--   imitation_accuracy_ci_high        upper end of that interval
--   balanced_accuracy                 mean per-action recall of the oracle label
--   lagrangian_regret                 mean_i max_a L_i(a) - L_i(policy), L = acc - lambda* cost
--   regret_bound                      imitation error x Delta_max
with

evaluation_rows as (
    select * from evaluations
),

run_rows as (
    select
        run_id,
        coalesce(try_cast(json_extract(config_json, '$.budgets.tolerance') as double), 0.02)
            as tolerance
    from runs
),

test_solutions as (
    select run_id, budget, bool_and(binding) as binding
    from solutions
    where scope = 'test'
    group by run_id, budget
),

per_seed as (
    select
        run_id,
        policy,
        budget,
        seed,
        max(value) filter (where metric = 'accuracy') as accuracy_value,
        max(ci_low) filter (where metric = 'accuracy') as accuracy_low,
        max(ci_high) filter (where metric = 'accuracy') as accuracy_high,
        max(value) filter (where metric = 'planned_cost') as planned_cost_value,
        max(ci_low) filter (where metric = 'planned_cost') as planned_cost_low,
        max(ci_high) filter (where metric = 'planned_cost') as planned_cost_high,
        max(value) filter (where metric = 'cost') as cost_value,
        max(ci_low) filter (where metric = 'cost') as cost_low,
        max(ci_high) filter (where metric = 'cost') as cost_high,
        max(value) filter (where metric = 'budget_error') as budget_error_value,
        max(ci_low) filter (where metric = 'budget_error') as budget_error_low,
        max(ci_high) filter (where metric = 'budget_error') as budget_error_high,
        max(value) filter (where metric = 'matched_accuracy') as matched_accuracy_value,
        max(ci_low) filter (where metric = 'matched_accuracy') as matched_accuracy_low,
        max(ci_high) filter (where metric = 'matched_accuracy') as matched_accuracy_high,
        max(value) filter (where metric = 'gain_vs_best_fixed') as gain_vs_best_fixed_value,
        max(ci_low) filter (where metric = 'gain_vs_best_fixed') as gain_vs_best_fixed_low,
        max(ci_high) filter (where metric = 'gain_vs_best_fixed') as gain_vs_best_fixed_high,
        max(value) filter (where metric = 'relative_gain_vs_best_fixed') as relative_gain_vs_best_fixed_value,
        max(ci_low) filter (where metric = 'relative_gain_vs_best_fixed') as relative_gain_vs_best_fixed_low,
        max(ci_high) filter (where metric = 'relative_gain_vs_best_fixed') as relative_gain_vs_best_fixed_high,
        max(value) filter (where metric = 'gain_vs_uniform') as gain_vs_uniform_value,
        max(ci_low) filter (where metric = 'gain_vs_uniform') as gain_vs_uniform_low,
        max(ci_high) filter (where metric = 'gain_vs_uniform') as gain_vs_uniform_high,
        max(value) filter (where metric = 'relative_gain_vs_uniform') as relative_gain_vs_uniform_value,
        max(ci_low) filter (where metric = 'relative_gain_vs_uniform') as relative_gain_vs_uniform_low,
        max(ci_high) filter (where metric = 'relative_gain_vs_uniform') as relative_gain_vs_uniform_high,
        max(value) filter (where metric = 'oracle_share_heldout') as oracle_share_heldout_value,
        max(ci_low) filter (where metric = 'oracle_share_heldout') as oracle_share_heldout_low,
        max(ci_high) filter (where metric = 'oracle_share_heldout') as oracle_share_heldout_high,
        max(value) filter (where metric = 'oracle_share') as oracle_share_value,
        max(ci_low) filter (where metric = 'oracle_share') as oracle_share_low,
        max(ci_high) filter (where metric = 'oracle_share') as oracle_share_high,
        max(value) filter (where metric = 'imitation_accuracy') as imitation_accuracy_value,
        max(ci_low) filter (where metric = 'imitation_accuracy') as imitation_accuracy_low,
        max(ci_high) filter (where metric = 'imitation_accuracy') as imitation_accuracy_high,
        max(value) filter (where metric = 'balanced_accuracy') as balanced_accuracy_value,
        max(ci_low) filter (where metric = 'balanced_accuracy') as balanced_accuracy_low,
        max(ci_high) filter (where metric = 'balanced_accuracy') as balanced_accuracy_high,
        max(value) filter (where metric = 'lagrangian_regret') as lagrangian_regret_value,
        max(ci_low) filter (where metric = 'lagrangian_regret') as lagrangian_regret_low,
        max(ci_high) filter (where metric = 'lagrangian_regret') as lagrangian_regret_high,
        max(value) filter (where metric = 'regret_bound') as regret_bound_value,
        max(ci_low) filter (where metric = 'regret_bound') as regret_bound_low,
        max(ci_high) filter (where metric = 'regret_bound') as regret_bound_high
    from evaluation_rows
    group by run_id, policy, budget, seed
),

per_policy as (
    select
        run_id,
        policy,
        budget,
        count(*) as n_seeds,
        avg(accuracy_value) as accuracy,
        avg(accuracy_low) as accuracy_ci_low,
        avg(accuracy_high) as accuracy_ci_high,
        avg(planned_cost_value) as planned_cost,
        avg(cost_value) as cost,
        avg(budget_error_value) as budget_error,
        avg(matched_accuracy_value) as matched_accuracy,
        avg(matched_accuracy_low) as matched_accuracy_ci_low,
        avg(matched_accuracy_high) as matched_accuracy_ci_high,
        avg(gain_vs_best_fixed_value) as gain_vs_best_fixed,
        avg(gain_vs_best_fixed_low) as gain_vs_best_fixed_ci_low,
        avg(gain_vs_best_fixed_high) as gain_vs_best_fixed_ci_high,
        avg(relative_gain_vs_best_fixed_value) as relative_gain_vs_best_fixed,
        avg(gain_vs_uniform_value) as gain_vs_uniform,
        avg(gain_vs_uniform_low) as gain_vs_uniform_ci_low,
        avg(gain_vs_uniform_high) as gain_vs_uniform_ci_high,
        avg(relative_gain_vs_uniform_value) as relative_gain_vs_uniform,
        avg(relative_gain_vs_uniform_low) as relative_gain_vs_uniform_ci_low,
        avg(relative_gain_vs_uniform_high) as relative_gain_vs_uniform_ci_high,
        avg(oracle_share_value) as oracle_share,
        avg(oracle_share_low) as oracle_share_ci_low,
        avg(oracle_share_high) as oracle_share_ci_high,
        avg(oracle_share_heldout_value) as oracle_share_heldout,
        avg(oracle_share_heldout_low) as oracle_share_heldout_ci_low,
        avg(oracle_share_heldout_high) as oracle_share_heldout_ci_high,
        avg(imitation_accuracy_value) as imitation_accuracy,
        avg(imitation_accuracy_low) as imitation_accuracy_ci_low,
        avg(imitation_accuracy_high) as imitation_accuracy_ci_high,
        avg(balanced_accuracy_value) as balanced_accuracy,
        avg(lagrangian_regret_value) as lagrangian_regret,
        avg(regret_bound_value) as regret_bound
    from per_seed
    group by run_id, policy, budget
),

final as (
    select
        p.run_id,
        p.policy,
        p.budget,
        p.n_seeds,
        coalesce(s.binding, true) as binding,
        p.accuracy,
        p.accuracy_ci_low,
        p.accuracy_ci_high,
        p.planned_cost,
        p.cost,
        p.budget_error,
        p.cost <= p.budget * (1 + r.tolerance) as within_budget,
        p.matched_accuracy,
        p.matched_accuracy_ci_low,
        p.matched_accuracy_ci_high,
        p.gain_vs_best_fixed,
        p.gain_vs_best_fixed_ci_low,
        p.gain_vs_best_fixed_ci_high,
        case
            when p.policy = 'best_fixed' then 'reference'
            when p.gain_vs_best_fixed is null then 'undefined'
            -- a gain within rounding of zero (1e-12) is zero: identical allocations
            when p.gain_vs_best_fixed_ci_low > 1e-12 then 'above zero'
            when p.gain_vs_best_fixed_ci_high < -1e-12 then 'below zero'
            else 'includes zero'
        end as verdict,
        p.relative_gain_vs_best_fixed,
        p.gain_vs_uniform,
        p.gain_vs_uniform_ci_low,
        p.gain_vs_uniform_ci_high,
        p.relative_gain_vs_uniform,
        p.relative_gain_vs_uniform_ci_low,
        p.relative_gain_vs_uniform_ci_high,
        p.oracle_share,
        p.oracle_share_ci_low,
        p.oracle_share_ci_high,
        p.oracle_share_heldout,
        p.oracle_share_heldout_ci_low,
        p.oracle_share_heldout_ci_high,
        p.imitation_accuracy,
        p.imitation_accuracy_ci_low,
        p.imitation_accuracy_ci_high,
        p.balanced_accuracy,
        p.lagrangian_regret,
        p.regret_bound
    from per_policy as p
    join run_rows as r using (run_id)
    left join test_solutions as s using (run_id, budget)
)

select * from final
