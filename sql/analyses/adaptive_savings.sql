-- Adaptive compute's headline figure (the Adaptive-Consistency and ESC papers'): the samples a
-- stopping rule needs to match the accuracy of the largest static vote. Per run, model, rule
-- family and tolerance, the static action with the largest b (e.g. majority@16) as the
-- reference, and of the family's settings the one with the fewest mean samples whose mean
-- accuracy is at least the reference's minus the tolerance: 0 (at least as accurate) or 0.001
-- (within 0.1 points, Adaptive-Consistency's "less than 0.1% drop"); null when none of the
-- declared settings does. Means over every instance, and the setting is chosen on those same
-- instances (among the few declared): an in-sample figure, as in those papers. Runs without
-- [[actions.rules]] return no rows (cascades span models: they are left out).
--
--   stl sql sql/analyses/adaptive_savings.sql --db out/study.duckdb
with

per_action as (
    select * from action_accuracy
),

reference as (
    select run_id, model, action as reference, b as reference_b, mean_acc as reference_acc,
        mean_samples as reference_samples
    from per_action
    where menu = 'static'
    qualify row_number() over (partition by run_id, model order by b desc) = 1
),

rules as (
    select run_id, model, split_part(rule, '(', 1) as family, action, mean_acc, mean_samples
    from per_action
    where menu = 'adaptive' and rule not like 'cascade(%'  -- one model's rules, not cascades
),

tolerances as (
    select * from (values (0.0), (0.001)) as t (tolerance)
),

families as (
    select distinct run_id, model, family, tolerance from rules cross join tolerances
),

matching as (
    select r.run_id, r.model, r.family, t.tolerance, r.action, r.mean_acc, r.mean_samples
    from rules as r
    join reference as f using (run_id, model)
    cross join tolerances as t
    where r.mean_acc >= f.reference_acc - t.tolerance
    qualify row_number() over (
        partition by r.run_id, r.model, r.family, t.tolerance order by r.mean_samples, r.action
    ) = 1
),

final as (
    select
        f.run_id,
        f.model,
        f.family,
        f.tolerance,
        x.reference,
        round(x.reference_acc, 4) as reference_acc,
        x.reference_samples,
        m.action as matching_rule,
        round(m.mean_acc, 4) as rule_acc,
        round(m.mean_samples, 3) as rule_samples,
        round(x.reference_samples / m.mean_samples, 2) as samples_saved_factor
    from families as f
    join reference as x using (run_id, model)
    left join matching as m using (run_id, model, family, tolerance)
)

select * from final
order by run_id, model, family, tolerance;
