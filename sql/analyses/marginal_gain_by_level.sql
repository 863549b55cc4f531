-- Where does compute pay off? Per run, model and difficulty level, the accuracy gained by each
-- step up in b, per unit of extra cost. The oracle spends where this is largest; a flat or
-- negative gain (hard levels, where the vote locks onto a wrong answer) is compute wasted.
--
--   stl sql sql/analyses/marginal_gain_by_level.sql --db out/study.duckdb
--   duckdb out/study.duckdb < sql/analyses/marginal_gain_by_level.sql
with

level_rows as (
    select * from level_action_accuracy
    where menu = 'static'  -- b samples decided up front (probe and adaptive actions differ)
),

steps as (
    select
        run_id,
        dataset,
        level,
        model,
        b,
        mean_acc,
        mean_cost,
        lag(mean_acc) over w as previous_acc,
        lag(mean_cost) over w as previous_cost
    from level_rows
    window w as (partition by run_id, dataset, level, model order by b)
),

final as (
    select
        run_id,
        dataset,
        level,
        model,
        b,
        round(mean_acc, 4) as acc,
        round(mean_acc - previous_acc, 4) as gain,
        round((mean_acc - previous_acc) / (mean_cost - previous_cost), 5) as gain_per_cost
    from steps
    where previous_acc is not null
)

select * from final
order by run_id, dataset, level, model, b;
