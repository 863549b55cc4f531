-- One number per policy for its whole curve (toolkit/metrics.py): the area under its
-- accuracy-cost envelope (AIQ, RouterBench) and the realised cost at which it reaches the
-- accuracy of the best single action (target_action_id for every instance). The envelope
-- includes the cheapest action's point, which any policy can be mixed with.
-- Key: (run_id, policy, seed).
create table if not exists policy_summaries (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    aiq double,                        -- mean envelope accuracy over [cost_low, cost_high]
    cost_to_reach double,              -- least realised cost reaching target_accuracy; null: never
    saving double,                     -- 1 - cost_to_reach / target_cost
    cost_low double not null,          -- the cheapest action's mean cost
    cost_high double not null,         -- the best action's mean cost
    target_action_id integer not null, -- the most accurate single action on the test split
    target_accuracy double not null,   -- the target action's mean accuracy on the test split
    target_cost double not null        -- its mean realised cost on the test split
);
