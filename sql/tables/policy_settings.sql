-- How each policy met its budget on the test split. Key: (run_id, policy, budget, seed).
-- calibrated_on: test_outcomes (the oracle: lambda solved on the test split), exact (uniform),
--   train (random: the training oracle's action mix), test_features (a price or scale set on
--   the test batch's inputs, never its outcomes), validation (learned_calibrated), none
--   (learned_argmax).
create table if not exists policy_settings (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    calibrated_on varchar not null,    -- what set the budget (see the header)
    parameter_name varchar,            -- lambda | mu | kappa
    parameter double,                  -- its value
    mix double,                        -- weight on the dearer choice of switching instances
    description varchar not null       -- how the policy chooses, in words
);
