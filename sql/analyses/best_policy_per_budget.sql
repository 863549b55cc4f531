-- Which policy to deploy at each budget? Per run and budget, every deployable policy (not the
-- oracles, not the label_known ceiling)
-- ranked by its accuracy at the same realised spend (matched_accuracy: realised mean cost = B),
-- with its paired gain over best_fixed and that gain's verdict, the share of the oracle's gain
-- it captures and the cost its own B-priced allocation actually spent (learned policies: the
-- mean over CatBoost seeds). A policy whose B-priced allocation spent more than the study's
-- [budgets] tolerance over B is ranked after every policy that kept to it (`within_budget`);
-- `binding` is false where more compute buys nothing at this budget. A policy whose accuracy at
-- realised cost B is undefined (no two of its budgets bracket B) comes last. The same ranking
-- as the report's headline and `stl run`'s summary.
--
--   stl sql sql/analyses/best_policy_per_budget.sql --db out/study.duckdb
with

frontier as (
    select * from policy_frontier
),

ranked as (
    select
        *,
        row_number() over (
            partition by run_id, budget
            order by
                matched_accuracy is null, within_budget desc, matched_accuracy desc, policy
        ) as rank
    from frontier
    where policy not like 'oracle%' and policy <> 'label_known'
),

final as (
    select
        run_id,
        budget,
        binding,
        rank,
        policy,
        round(matched_accuracy, 4) as matched_accuracy,
        round(gain_vs_best_fixed, 4) as gain_vs_best_fixed,
        round(gain_vs_best_fixed_ci_low, 4) as gain_ci_low,
        round(gain_vs_best_fixed_ci_high, 4) as gain_ci_high,
        verdict,
        round(oracle_share, 3) as oracle_share,
        round(cost, 6) as cost,
        within_budget
    from ranked
)

select * from final
order by run_id, budget, rank;
