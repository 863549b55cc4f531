-- The budget sweep for plotting: one row per policy, budget and seed with the curve's numbers
-- (the same values as evaluations, pivoted). Key: (run_id, policy, budget, seed).
create table if not exists budget_sweep (
    run_id integer not null,
    policy varchar not null,
    budget double not null,
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    accuracy double,
    accuracy_ci_low double,
    accuracy_ci_high double,
    cost double,                       -- realised mean cost
    gain double,                       -- accuracy - uniform's accuracy at the budget
    gain_ci_low double,
    gain_ci_high double,
    relative_gain double,
    relative_gain_ci_low double,
    relative_gain_ci_high double,
    oracle_share double,               -- gain / the oracle's gain
    oracle_share_ci_low double,
    oracle_share_ci_high double,
    imitation_accuracy double
);
