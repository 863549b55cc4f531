-- imitation_by_action: how well each policy imitates the oracle, per action, on the test split:
-- per run, policy, budget and action, how many test instances the oracle labels with the
-- action, how much weight the policy puts on it, and the recall and precision of that label,
-- the mean over the policy's CatBoost seeds.
--
-- Columns:
--   run_id      the run
--   policy      the policy (see policy_frontier)
--   budget      target mean cost per instance
--   action_id   the action (the oracle label)
--   action      its name, e.g. qwen2.5-7b@b=4
--   b           the number of samples
--   n_seeds     CatBoost seeds averaged (1 for seedless policies)
--   support     test instances whose oracle label is this action
--   predicted   mean weight the policy put on this action
--   correct     mean weight put on it where the oracle label is this action
--   recall      mean of correct / support over seeds; null without support
--   precision   mean of correct / predicted over seeds; null when never chosen
with

class_rows as (
    select * from imitation_classes
),

action_rows as (
    select * from actions
),

per_action as (
    select
        run_id,
        policy,
        budget,
        action_id,
        count(*) as n_seeds,
        avg(support) as support,
        avg(predicted) as predicted,
        avg(correct) as correct,
        avg(recall) as recall,
        avg(precision) as precision
    from class_rows
    group by run_id, policy, budget, action_id
),

final as (
    select
        p.run_id,
        p.policy,
        p.budget,
        p.action_id,
        a.name as action,
        a.b,
        p.n_seeds,
        p.support,
        p.predicted,
        p.correct,
        p.recall,
        p.precision
    from per_action as p
    join action_rows as a using (run_id, action_id)
)

select * from final
