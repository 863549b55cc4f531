-- Every policy side by side, per run and budget: accuracy at the same realised spend
-- (matched_accuracy: realised mean cost = B) with its 95% interval, and the paired gain over
-- best_fixed with its interval. Unlike best_policy_per_budget.sql it keeps the references:
-- label_known (the classifier told each instance's oracle label, the features' ceiling) and the
-- oracles, which are solved on the outcomes they are scored on and so also profit from their
-- estimation noise (oracle_noise says how much). Policies of the probe menu (learned_probe,
-- oracle_probe) pay for the probe in their cost. Learned policies: means over CatBoost seeds.
--
--   stl sql sql/analyses/policy_comparison.sql --db out/study.duckdb
with

frontier as (
    select * from policy_frontier
),

final as (
    select
        run_id,
        budget,
        binding,
        policy,
        round(matched_accuracy, 4) as matched_accuracy,
        round(matched_accuracy_ci_low, 4) as accuracy_ci_low,
        round(matched_accuracy_ci_high, 4) as accuracy_ci_high,
        round(gain_vs_best_fixed, 4) as gain_vs_best_fixed,
        round(gain_vs_best_fixed_ci_low, 4) as gain_ci_low,
        round(gain_vs_best_fixed_ci_high, 4) as gain_ci_high,
        verdict,
        round(cost, 6) as cost
    from frontier
)

select * from final
order by run_id, budget, matched_accuracy desc nulls last, policy;
