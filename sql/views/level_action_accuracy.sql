-- level_action_accuracy: per run, dataset, difficulty level and action, the mean accuracy and
-- cost: where extra samples pay off (the marginal gain of b differs by level).
--
-- Columns:
--   run_id          the run
--   dataset         [[datasets]].name
--   level           MATH level 1..5; GSM8K-like: reasoning steps; null when unknown
--   action_id       the action
--   action          its name, e.g. qwen2.5-7b@b=4
--   model           the model sampled
--   b               the number of samples
--   menu            static | probe: probe actions follow [probe]'s k samples and include them
--   n_instances     instances of this dataset and level
--   mean_acc        mean estimated accuracy
--   mean_acc_true   mean true accuracy (null for real data)
--   mean_cost       mean cost, in runs.cost_unit
with

action_rows as (
    select * from actions
),

instance_rows as (
    select * from instances
),

outcome_rows as (
    select * from outcomes
),

per_level as (
    select
        o.run_id,
        i.dataset,
        i.level,
        o.action_id,
        count(*) as n_instances,
        avg(o.acc) as mean_acc,
        avg(o.acc_true) as mean_acc_true,
        avg(o.cost) as mean_cost
    from outcome_rows as o
    join instance_rows as i using (run_id, instance_id)
    group by o.run_id, i.dataset, i.level, o.action_id
),

final as (
    select
        p.run_id,
        p.dataset,
        p.level,
        p.action_id,
        a.name as action,
        a.model,
        a.b,
        a.menu,
        p.n_instances,
        p.mean_acc,
        p.mean_acc_true,
        p.mean_cost
    from per_level as p
    join action_rows as a using (run_id, action_id)
)

select * from final
