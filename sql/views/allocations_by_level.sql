-- allocations_by_level: which actions each policy chooses, by difficulty level, on the test
-- split: per run, policy, budget, dataset, level and action, the mean weight the policy puts on
-- the action (its share of the level's instances) and what that costs, averaged over the
-- policy's CatBoost seeds. Actions a policy never chooses at a level have no row.
--
-- Columns:
--   run_id             the run
--   policy             the policy (see policy_frontier)
--   budget             target mean cost per instance
--   dataset            [[datasets]].name
--   level              MATH level 1..5; GSM8K-like: reasoning steps; null when unknown
--   action_id          the action
--   action             its name, e.g. qwen2.5-7b@b=4
--   b                  the number of samples
--   n_instances        test instances of this dataset and level
--   n_seeds            CatBoost seeds averaged (1 for seedless policies)
--   share              mean weight on the action; the shares of a level sum to 1
--   cost_contribution  mean of weight x cost over the level's instances; these sum over the
--                      level's actions to the level's mean cost
with

allocation_rows as (
    select * from policy_allocations
),

instance_rows as (
    select * from instances
),

outcome_rows as (
    select * from outcomes
),

action_rows as (
    select * from actions
),

split_rows as (
    select * from splits
),

level_sizes as (
    select i.run_id, i.dataset, i.level, count(*) as n_instances
    from instance_rows as i
    join split_rows as s using (run_id, instance_id)
    where s.split = 'test'
    group by i.run_id, i.dataset, i.level
),

seed_counts as (
    select run_id, policy, budget, count(distinct coalesce(seed, -1)) as n_seeds
    from allocation_rows
    group by run_id, policy, budget
),

weighted as (
    select
        p.run_id,
        p.policy,
        p.budget,
        i.dataset,
        i.level,
        p.action_id,
        sum(p.weight) as weight,
        sum(p.weight * o.cost) as weighted_cost
    from allocation_rows as p
    join instance_rows as i using (run_id, instance_id)
    join outcome_rows as o using (run_id, instance_id, action_id)
    group by p.run_id, p.policy, p.budget, i.dataset, i.level, p.action_id
),

final as (
    select
        w.run_id,
        w.policy,
        w.budget,
        w.dataset,
        w.level,
        w.action_id,
        a.name as action,
        a.b,
        l.n_instances,
        c.n_seeds,
        w.weight / (l.n_instances * c.n_seeds) as share,
        w.weighted_cost / (l.n_instances * c.n_seeds) as cost_contribution
    from weighted as w
    join level_sizes as l
        on l.run_id = w.run_id and l.dataset = w.dataset and l.level is not distinct from w.level
    join seed_counts as c
        on c.run_id = w.run_id and c.policy = w.policy and c.budget = w.budget
    join action_rows as a
        on a.run_id = w.run_id and a.action_id = w.action_id
)

select * from final
