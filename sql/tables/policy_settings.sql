-- How each policy met its budget on each fold's test split, and the matched-spend mix its
-- headline numbers use. Key: (run_id, policy, budget, seed, fold); fold is null for the
-- oracle (solved on the pooled test split).
-- calibrated_on: test_outcomes (the oracle: lambda solved on the test outcomes),
--   test_features (a price, mix or scale set on the test batch's inputs: features and planned
--   costs, never its outcomes), validation (learned_calibrated), none (learned_argmax).
-- matched_*: the realised-cost match (toolkit.metrics.matched_mix): weight matched_weight on
--   the allocation at matched_low_budget, the rest at matched_high_budget, gives realised mean
--   cost = budget on the pooled test split; null when no two grid budgets bracket it.
create table if not exists policy_settings (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    fold integer,                      -- splits.fold; null for the oracle
    calibrated_on varchar not null,    -- what set the budget (see the header)
    parameter_name varchar,            -- lambda | mu | kappa | theta | tilt
    parameter double,                  -- its value
    mix double,                        -- weight on the dearer choice of switching instances
    description varchar not null,      -- how the policy chooses, in words
    matched_low_budget double,         -- the grid budget the match weighs by matched_weight
    matched_high_budget double,        -- the other grid budget of the match
    matched_weight double              -- weight on the allocation at matched_low_budget
);
