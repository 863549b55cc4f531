-- The budget sweep for plotting: one row per policy, budget and seed with the curve's numbers
-- (the same values as evaluations, pivoted). Key: (run_id, policy, budget, seed).
create table if not exists budget_sweep (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance, in runs.cost_unit
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    accuracy double,                   -- mean expected accuracy on the test split
    accuracy_ci_low double,            -- lower end of its paired bootstrap 95% interval
    accuracy_ci_high double,           -- upper end of that interval
    cost double,                       -- realised mean cost
    gain double,                       -- accuracy - uniform's accuracy at the budget
    gain_ci_low double,                -- lower end of its paired bootstrap 95% interval
    gain_ci_high double,               -- upper end of that interval
    relative_gain double,              -- gain / uniform's accuracy
    relative_gain_ci_low double,       -- lower end of its paired bootstrap 95% interval
    relative_gain_ci_high double,      -- upper end of that interval
    oracle_share double,               -- gain / the oracle's gain
    oracle_share_ci_low double,        -- lower end of its paired bootstrap 95% interval
    oracle_share_ci_high double,       -- upper end of that interval
    imitation_accuracy double          -- mean weight on the oracle label at lambda*
);
