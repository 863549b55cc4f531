-- The oracle allocation per solved budget and instance (toolkit/solve.py), one row per action
-- with a positive weight: one row per instance, two for the instances mixed at lambda*.
-- Key: (run_id, scope, solver, budget, instance_id, action_id); the budget's row is in `solutions`.
create table if not exists allocations (
    run_id integer not null,           -- the run (runs.run_id)
    scope varchar not null,            -- the instances solved: all | train | test | ...
    solver varchar not null,           -- hull | bisection
    budget double not null,            -- target mean cost per instance, in runs.cost_unit
    instance_id bigint not null,       -- the instance (instances.instance_id)
    action_id integer not null,        -- the action (actions.action_id)
    weight double not null             -- share of the instance on this action; 1 unless mixed
);
