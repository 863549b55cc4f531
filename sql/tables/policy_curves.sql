-- Every policy's accuracy-versus-cost curve on the pooled test split: one point per budget of
-- the run's grid (toolkit/budgets.py: the declared budgets, 2% and 5% around each, and a
-- geometric grid over the feasible range). Key: (run_id, policy, seed, budget).
create table if not exists policy_curves (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    budget double not null,            -- the budget the policy was priced at
    planned_cost double not null,      -- mean planned cost (= budget where priced on the batch)
    cost double not null,              -- realised mean cost
    accuracy double not null,          -- mean expected accuracy (estimated from the samples)
    accuracy_true double               -- simulation: the same allocation on the true accuracy
);
