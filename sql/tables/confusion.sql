-- Confusion matrix of every policy against the oracle labels at lambda*(B) on the test split:
-- n = sum over instances labelled true_action_id of the weight the policy put on
-- predicted_action_id (a count for hard policies). Every cell, zeros included.
-- Key: (run_id, policy, budget, seed, true_action_id, predicted_action_id).
create table if not exists confusion (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see evaluations)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    true_action_id integer not null,   -- the oracle label (actions.action_id)
    predicted_action_id integer not null, -- the action the policy chose (actions.action_id)
    n double not null                  -- weight the policy put on predicted_action_id,
                                       -- summed over the instances labelled true_action_id
);
