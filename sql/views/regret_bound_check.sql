-- regret_bound_check: the Solve-then-Learn guarantee, checked per run, policy and budget on the
-- test split: the Lagrangian regret is at most the imitation error times the worst per-instance
-- gap, regret <= eps * Delta_max (regret_bounds holds one row per CatBoost seed; here the mean
-- over seeds, and whether the bound held for every seed). Regret, bound and gaps are in the
-- units of L = acc - lambda* cost: accuracy (x 100: points).
--
-- Columns:
--   run_id             the run
--   policy             the policy (see policy_frontier)
--   budget             target mean cost per instance
--   n_seeds            CatBoost seeds (1 for seedless policies)
--   lambda_star        lambda*(B) solved on the training split (mean over folds)
--   imitation_error    eps = 1 - mean weight on the oracle label (mean over seeds)
--   delta_max          Delta_max = max_i max_a L_i(a) - min_a L_i(a) on the test split
--   mean_gap           mean_i max_a L_i(a) - min_a L_i(a)
--   regret             the realised Lagrangian regret (mean over seeds)
--   bound              eps * Delta_max (mean over seeds)
--   max_bound_used     the largest regret / bound over seeds: how tight the bound is
--   bound_over_regret  bound / regret: how many times the realised regret the bound allows
--                      (null when the regret is 0)
--   vacuous            true when the bound is at least mean_gap, the regret of the worst
--                      possible allocation: then it says nothing about this policy
--   holds              true when regret <= bound for every seed
with

bound_rows as (
    select * from regret_bounds
),

final as (
    select
        run_id,
        policy,
        budget,
        count(*) as n_seeds,
        avg(lambda_star) as lambda_star,
        avg(imitation_error) as imitation_error,
        avg(delta_max) as delta_max,
        avg(mean_gap) as mean_gap,
        avg(regret) as regret,
        avg(bound) as bound,
        max(regret / nullif(bound, 0)) as max_bound_used,
        avg(bound) / nullif(avg(regret), 0) as bound_over_regret,
        avg(bound) >= avg(mean_gap) as vacuous,
        bool_and(holds) as holds
    from bound_rows
    group by run_id, policy, budget
)

select * from final
