-- Simulation only: how well do the stored samples estimate accuracy? Per run, level and
-- action, the mean estimated and true accuracy, the mean absolute error and the bias. Real-data
-- runs have no truth and return no rows.
--
--   stl sql sql/analyses/estimation_error_by_level.sql --db out/study.duckdb
with

outcome_rows as (
    select * from outcomes
    where acc_true is not null
),

action_rows as (
    select * from actions
),

instance_rows as (
    select * from instances
),

final as (
    select
        o.run_id,
        i.dataset,
        i.level,
        a.action_id,
        a.name as action,
        count(*) as n_instances,
        round(avg(o.acc), 4) as acc,
        round(avg(o.acc_true), 4) as acc_true,
        round(avg(abs(o.acc - o.acc_true)), 4) as mean_abs_error,
        round(avg(o.acc - o.acc_true), 4) as bias
    from outcome_rows as o
    join action_rows as a using (run_id, action_id)
    join instance_rows as i using (run_id, instance_id)
    group by o.run_id, i.dataset, i.level, a.action_id, a.name
)

select * from final
order by run_id, dataset, level, action_id;
