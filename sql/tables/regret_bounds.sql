-- The regret bound of Solve-then-Learn, checked per policy, budget and seed on the test split:
-- the Lagrangian regret is at most the imitation error times the worst per-instance gap,
--   mean_i [max_a L_i(a) - L_i(policy)] <= eps * Delta_max,
-- L_i(a) = acc_i(a) - lambda* cost_i(a), eps = 1 - mean weight on the oracle label,
-- Delta_max = max_i max_a L_i(a) - min_a L_i(a). Key: (run_id, policy, budget, seed).
create table if not exists regret_bounds (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    lambda_star double not null,       -- lambda*(B) solved on the training split
    imitation_error double not null,   -- eps
    delta_max double not null,         -- Delta_max over the test instances
    mean_gap double not null,          -- mean_i max_a L_i - min_a L_i
    regret double not null,            -- Lagrangian regret
    bound double not null,             -- eps * Delta_max
    holds boolean not null             -- regret <= bound (up to 1e-12)
);
