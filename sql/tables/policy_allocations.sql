-- Every policy's allocation of the test instances at each declared budget, as priced at B: the
-- weight on each chosen action (weights of an instance sum to 1; two rows mix two actions).
-- Rows with zero weight are left out. With cross-fitting an instance is allocated by the
-- policies of the fold it is a test instance of.
-- Key: (run_id, policy, budget, seed, instance_id, action_id).
create table if not exists policy_allocations (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    fold integer not null,             -- the fold whose policies allocated the instance
    instance_id bigint not null,       -- the test instance (instances.instance_id)
    action_id integer not null,        -- the chosen action (actions.action_id)
    weight double not null             -- share of the instance on this action; an
                                       -- instance's weights sum to 1
);
