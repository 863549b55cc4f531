-- run_overview: one row per study run: what ran (study, seed, config hash, cost unit) and how
-- much data it holds. The starting point for any dashboard: pick a run_id here.
--
-- Columns:
--   run_id                the run (every table and view keys on it)
--   study                 [study].name
--   seed                  [study].seed
--   config_hash           first 12 hex digits of the sha256 of the validated config
--   cost_unit             samples | tokens | usd: the unit of every cost and budget
--   aggregation           majority | pass
--   samples_per_instance  stored samples per instance and model
--   engine                where the queries ran
--   created_at            when the run was written (UTC)
--   n_datasets            distinct datasets
--   n_instances           instances (questions)
--   n_models              distinct models
--   n_actions             actions (model x b)
--   n_samples             stored sampled answers
with

run_rows as (
    select * from runs
),

instance_counts as (
    select run_id, count(*) as n_instances, count(distinct dataset) as n_datasets
    from instances
    group by run_id
),

action_counts as (
    select run_id, count(*) as n_actions, count(distinct model) as n_models
    from actions
    group by run_id
),

sample_counts as (
    select run_id, count(*) as n_samples
    from samples
    group by run_id
),

final as (
    select
        r.run_id,
        r.study,
        r.seed,
        r.config_hash,
        r.cost_unit,
        r.aggregation,
        r.samples_per_instance,
        r.engine,
        r.created_at,
        coalesce(i.n_datasets, 0) as n_datasets,
        coalesce(i.n_instances, 0) as n_instances,
        coalesce(a.n_models, 0) as n_models,
        coalesce(a.n_actions, 0) as n_actions,
        coalesce(s.n_samples, 0) as n_samples
    from run_rows as r
    left join instance_counts as i using (run_id)
    left join action_counts as a using (run_id)
    left join sample_counts as s using (run_id)
)

select * from final
