-- Every policy's metrics on the test split, long form: one row per policy, budget, CatBoost
-- seed and metric. Key: (run_id, policy, budget, seed, metric); seed is null for policies
-- without one (oracle, uniform, random, prompt_length, difficulty_bins).
-- Policies: oracle (solved on the test split: the upper bound), uniform, random,
--   prompt_length, difficulty_bins, learned_argmax (raw argmax), learned_calibrated (price
--   bisected on the validation split), learned_batch (price bisected on the test batch's
--   inputs); policy_settings says how each met its budget.
-- Metrics (acc, cost of the chosen actions, weights allowed; lambda* solved on train):
--   accuracy            mean expected accuracy
--   cost                realised mean cost (runs.cost_unit); budget_error = cost / budget - 1
--   gain                accuracy - uniform's accuracy at the budget
--   relative_gain       gain / uniform's accuracy
--   gain_at_cost        accuracy - uniform's accuracy at this policy's realised cost
--   oracle_share        gain / the oracle's gain: the share of the oracle's gain captured
--   imitation_accuracy  mean weight on the oracle label at lambda* (oracle_labels)
--   balanced_accuracy   mean over actions of the recall of that label
--   lagrangian_regret   mean_i max_a L_i(a) - L_i(chosen), L = acc - lambda* cost
--   regret_bound        (1 - imitation_accuracy) * max_i (max_a L_i - min_a L_i); no interval
-- ci_low, ci_high: paired bootstrap 95% percentile interval over test instances (1000
-- resamples, seeded from the study seed, the same resamples for every policy).
create table if not exists evaluations (
    run_id integer not null,           -- the run (runs.run_id)
    policy varchar not null,           -- the policy (see the header)
    budget double not null,            -- target mean cost per instance
    seed bigint,                       -- CatBoost seed of learned_*; null otherwise
    metric varchar not null,           -- the metric's name (see the header)
    value double,                      -- the metric on the test split
    ci_low double,                     -- lower end of its paired bootstrap 95% interval;
                                       -- null without one (regret_bound)
    ci_high double                     -- upper end of that interval
);
