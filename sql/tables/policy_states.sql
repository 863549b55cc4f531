-- Every fitted baseline policy of each fold, as the JSON of what its fit learned
-- (toolkit.policies.Policy.state; toolkit.policies.policy_from_state rebuilds it): uniform
-- and best_fixed their action steps, random the training oracle's action mix per budget,
-- difficulty_bins its signal, bin edges and per-bin accuracy curves. Key: (run_id, fold, policy).
create table if not exists policy_states (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- splits.fold
    policy varchar not null,           -- uniform | best_fixed | always_<model> | random | ...
    family varchar not null,           -- the policy class: uniform | best_fixed | always | ...
    state varchar not null,            -- JSON
    primary key (run_id, fold, policy)
);
