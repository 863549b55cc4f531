-- policy_frontier: per run, policy and budget, the numbers of the accuracy-budget frontier on
-- the test split: accuracy, realised cost, gain over uniform, share of the oracle's gain and
-- imitation of the oracle, each the mean over the policy's CatBoost seeds (one row for
-- seedless policies). Intervals are paired bootstrap 95% intervals (evaluations), averaged over
-- seeds in the same way. Read one budget for the headline table, one policy for its curve.
--
-- Columns:
--   run_id                 the run
--   policy                 oracle | uniform | random | prompt_length | difficulty_bins |
--                          learned_argmax | learned_calibrated | learned_batch
--   budget                 target mean cost per instance, in runs.cost_unit
--   n_seeds                CatBoost seeds averaged (1 for seedless policies)
--   accuracy               mean expected accuracy on the test split
--   accuracy_ci_low        lower end of its paired bootstrap 95% interval
--   accuracy_ci_high       upper end of that interval
--   cost                   realised mean cost
--   budget_error           cost / budget - 1
--   gain                   accuracy - uniform's accuracy at the budget
--   gain_ci_low            lower end of its paired 95% interval
--   gain_ci_high           upper end of that interval
--   relative_gain          gain / uniform's accuracy
--   relative_gain_ci_low   lower end of its paired 95% interval
--   relative_gain_ci_high  upper end of that interval
--   gain_at_cost           accuracy - uniform's accuracy at the realised cost
--   oracle_share           gain / the oracle's gain
--   oracle_share_ci_low    lower end of its paired 95% interval
--   oracle_share_ci_high   upper end of that interval
--   imitation_accuracy     mean weight on the oracle label at lambda*
--   balanced_accuracy      mean per-action recall of the oracle label
--   lagrangian_regret      mean_i max_a L_i(a) - L_i(policy), L = acc - lambda* cost
--   regret_bound           imitation error x Delta_max
with

evaluation_rows as (
    select * from evaluations
),

per_seed as (
    select
        run_id,
        policy,
        budget,
        seed,
        max(value) filter (where metric = 'accuracy') as accuracy,
        max(ci_low) filter (where metric = 'accuracy') as accuracy_ci_low,
        max(ci_high) filter (where metric = 'accuracy') as accuracy_ci_high,
        max(value) filter (where metric = 'cost') as cost,
        max(value) filter (where metric = 'budget_error') as budget_error,
        max(value) filter (where metric = 'gain') as gain,
        max(ci_low) filter (where metric = 'gain') as gain_ci_low,
        max(ci_high) filter (where metric = 'gain') as gain_ci_high,
        max(value) filter (where metric = 'relative_gain') as relative_gain,
        max(ci_low) filter (where metric = 'relative_gain') as relative_gain_ci_low,
        max(ci_high) filter (where metric = 'relative_gain') as relative_gain_ci_high,
        max(value) filter (where metric = 'gain_at_cost') as gain_at_cost,
        max(value) filter (where metric = 'oracle_share') as oracle_share,
        max(ci_low) filter (where metric = 'oracle_share') as oracle_share_ci_low,
        max(ci_high) filter (where metric = 'oracle_share') as oracle_share_ci_high,
        max(value) filter (where metric = 'imitation_accuracy') as imitation_accuracy,
        max(value) filter (where metric = 'balanced_accuracy') as balanced_accuracy,
        max(value) filter (where metric = 'lagrangian_regret') as lagrangian_regret,
        max(value) filter (where metric = 'regret_bound') as regret_bound
    from evaluation_rows
    group by run_id, policy, budget, seed
),

final as (
    select
        run_id,
        policy,
        budget,
        count(*) as n_seeds,
        avg(accuracy) as accuracy,
        avg(accuracy_ci_low) as accuracy_ci_low,
        avg(accuracy_ci_high) as accuracy_ci_high,
        avg(cost) as cost,
        avg(budget_error) as budget_error,
        avg(gain) as gain,
        avg(gain_ci_low) as gain_ci_low,
        avg(gain_ci_high) as gain_ci_high,
        avg(relative_gain) as relative_gain,
        avg(relative_gain_ci_low) as relative_gain_ci_low,
        avg(relative_gain_ci_high) as relative_gain_ci_high,
        avg(gain_at_cost) as gain_at_cost,
        avg(oracle_share) as oracle_share,
        avg(oracle_share_ci_low) as oracle_share_ci_low,
        avg(oracle_share_ci_high) as oracle_share_ci_high,
        avg(imitation_accuracy) as imitation_accuracy,
        avg(balanced_accuracy) as balanced_accuracy,
        avg(lagrangian_regret) as lagrangian_regret,
        avg(regret_bound) as regret_bound
    from per_seed
    group by run_id, policy, budget
)

select * from final
