-- action_accuracy: per run and action, the mean accuracy and cost over all instances: what
-- spending the same action on every input (the uniform policy) buys, and, in simulation, how
-- far the accuracy estimated from the stored samples is from the truth.
--
-- Columns:
--   run_id          the run
--   action_id       the action (ids order actions by cost, cheaper first)
--   action          its name, e.g. qwen2.5-7b@b=4
--   model           the model sampled
--   b               the number of samples (adaptive: the most the rule draws)
--   aggregation     majority | pass | best_of | weighted
--   menu            static | probe | adaptive: probe actions follow [probe]'s k samples and
--                   include them; adaptive actions are stopping rules ([[actions.rules]])
--   rule            the stopping rule of an adaptive action, e.g. esc(w=4,b<=16); else null
--   n_instances     instances with an outcome for this action
--   mean_acc        mean of outcomes.acc, the accuracy estimated from the stored samples
--   mean_acc_true   mean of outcomes.acc_true, the true accuracy (null for real data)
--   mean_abs_error  mean of |acc - acc_true| (null for real data)
--   mean_cost       mean of outcomes.cost, in runs.cost_unit
--   mean_samples    mean of outcomes.samples: the samples drawn (a rule's expected number)
with

action_rows as (
    select * from actions
),

outcome_rows as (
    select * from outcomes
),

per_action as (
    select
        run_id,
        action_id,
        count(*) as n_instances,
        avg(acc) as mean_acc,
        avg(acc_true) as mean_acc_true,
        avg(abs(acc - acc_true)) as mean_abs_error,
        avg(cost) as mean_cost,
        avg(samples) as mean_samples
    from outcome_rows
    group by run_id, action_id
),

final as (
    select
        a.run_id,
        a.action_id,
        a.name as action,
        a.model,
        a.b,
        a.aggregation,
        a.menu,
        a.rule,
        p.n_instances,
        p.mean_acc,
        p.mean_acc_true,
        p.mean_abs_error,
        p.mean_cost,
        p.mean_samples
    from action_rows as a
    join per_action as p using (run_id, action_id)
)

select * from final
