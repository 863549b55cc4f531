-- Which policy to deploy at each budget? Per run and budget, every policy except the oracle
-- ranked by test accuracy, with its paired gain over uniform, the share of the oracle's gain it
-- captures and the cost it actually spent (learned policies: the mean over CatBoost seeds).
-- A policy that spent more than 1% over the budget on the test split is ranked after every
-- policy that kept to it (`within_budget` says which): it bought its accuracy with compute the
-- others did not have.
--
--   stl sql sql/analyses/best_policy_per_budget.sql --db out/study.duckdb
with

frontier as (
    select * from policy_frontier
),

ranked as (
    select
        *,
        cost <= budget * 1.01 as within_budget,
        row_number() over (
            partition by run_id, budget
            order by (cost <= budget * 1.01) desc, accuracy desc, policy
        ) as rank
    from frontier
    where policy <> 'oracle'
),

final as (
    select
        run_id,
        budget,
        rank,
        policy,
        round(accuracy, 4) as accuracy,
        round(cost, 3) as cost,
        within_budget,
        round(gain, 4) as gain,
        round(gain_ci_low, 4) as gain_ci_low,
        round(gain_ci_high, 4) as gain_ci_high,
        round(oracle_share, 3) as oracle_share
    from ranked
)

select * from final
order by run_id, budget, rank;
