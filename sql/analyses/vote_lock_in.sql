-- Majority-vote lock-in: instances whose accuracy falls as b grows, because a dominant wrong
-- answer wins the vote more surely the more samples vote. Per run, level and model, how many
-- instances lose accuracy going from the cheapest to the largest b, and how much on average.
--
--   stl sql sql/analyses/vote_lock_in.sql --db out/study.duckdb
with

action_rows as (
    select * from actions
    where menu = 'static'  -- b samples decided up front (probe and adaptive actions differ)
),

outcome_rows as (
    select * from outcomes
),

instance_rows as (
    select * from instances
),

b_range as (
    select run_id, model, min(b) as b_min, max(b) as b_max
    from action_rows
    group by run_id, model
),

ends as (
    select
        o.run_id,
        o.instance_id,
        a.model,
        max(case when a.b = r.b_min then o.acc end) as acc_first,
        max(case when a.b = r.b_max then o.acc end) as acc_last
    from outcome_rows as o
    join action_rows as a using (run_id, action_id)
    join b_range as r on r.run_id = a.run_id and r.model = a.model
    where a.b in (r.b_min, r.b_max)
    group by o.run_id, o.instance_id, a.model
),

final as (
    select
        e.run_id,
        i.dataset,
        i.level,
        e.model,
        count(*) as n_instances,
        count(*) filter (where e.acc_last < e.acc_first) as n_losing,
        round(avg(e.acc_last - e.acc_first) filter (where e.acc_last < e.acc_first), 4)
            as mean_loss,
        round(avg(e.acc_last - e.acc_first), 4) as mean_change
    from ends as e
    join instance_rows as i using (run_id, instance_id)
    group by e.run_id, i.dataset, i.level, e.model
)

select * from final
order by run_id, dataset, level, model;
