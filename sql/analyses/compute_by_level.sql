-- Where does each policy spend its budget? Per run, budget and difficulty level, the mean cost
-- per test question of the oracle and of the learned policy (calibrated on validation), side by
-- side: the oracle's profile is what the classifier tries to reproduce.
--
--   stl sql sql/analyses/compute_by_level.sql --db out/study.duckdb
with

allocation_rows as (
    select * from allocations_by_level
),

level_cost as (
    select run_id, policy, budget, dataset, level, sum(cost_contribution) as mean_cost
    from allocation_rows
    group by run_id, policy, budget, dataset, level
),

final as (
    select
        run_id,
        budget,
        dataset,
        level,
        round(max(mean_cost) filter (where policy = 'oracle'), 3) as oracle_cost,
        round(max(mean_cost) filter (where policy = 'learned_calibrated'), 3) as learned_cost,
        round(max(mean_cost) filter (where policy = 'uniform'), 3) as uniform_cost
    from level_cost
    group by run_id, budget, dataset, level
)

select * from final
order by run_id, budget, dataset, level;
