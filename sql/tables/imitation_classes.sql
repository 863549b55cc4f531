-- Per-class imitation of the oracle labels on the test split, per policy, budget and seed.
-- Key: (run_id, policy, budget, seed, action_id).
create table if not exists imitation_classes (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    action_id integer not null,        -- the oracle label (actions.action_id)
    support double not null,           -- test instances whose oracle label is this action
    predicted double not null,         -- weight the policy put on this action
    correct double not null,           -- of it, on instances labelled this action
    recall double,                     -- correct / support; null without support
    precision double                   -- correct / predicted; null when never chosen
);
