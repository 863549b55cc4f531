-- Every policy's metrics on the test split, long form: one row per policy, budget, CatBoost
-- seed and metric. Key: (run_id, policy, budget, seed, metric); seed is null for policies
-- without one (every policy but learned_*). With cross-fitting the test split is every
-- instance, each allocated by the policies of its fold (toolkit/evaluate.py).
-- Policies: oracle (solved on the test outcomes: the upper bound), best_fixed, uniform,
--   always_<model>, random, prompt_length, difficulty_bins, learned_argmax (raw argmax),
--   learned_calibrated (price bisected on the validation split), learned_batch (price
--   bisected on the test batch's inputs); policy_settings says how each met its budget.
-- Metrics of the allocation priced at B (lambda* solved on the fold's training split):
--   accuracy                     mean expected accuracy
--   planned_cost                 mean planned cost (toolkit/costs.py); B when priced on the batch
--   cost                         realised mean cost (runs.cost_unit)
--   budget_error                 cost / budget - 1
--   imitation_accuracy           mean weight on the oracle label at lambda* (oracle_labels)
--   balanced_accuracy            mean over actions of the recall of that label
--   lagrangian_regret            mean_i max_a L_i(a) - L_i(chosen), L = acc - lambda* cost
--   regret_bound                 (1 - imitation_accuracy) * max_i (max_a L_i - min_a L_i);
--                                no interval
-- Metrics at matched spend (a mix of two grid budgets with realised mean cost = B):
--   matched_accuracy             mean expected accuracy
--   gain_vs_best_fixed           matched_accuracy - best_fixed's, paired
--   relative_gain_vs_best_fixed  gain_vs_best_fixed / best_fixed's matched accuracy
--   gain_vs_uniform              matched_accuracy - uniform's, paired
--   relative_gain_vs_uniform     gain_vs_uniform / uniform's matched accuracy
--   oracle_share                 gain_vs_best_fixed / the oracle's: the share of its gain
--   oracle_share_heldout         the same over the oracle's gain on held-out evidence
--                                (acc_true, or disjoint sample halves: oracle_noise)
-- value is null where a metric is undefined (a ratio over zero; no two budgets bracket B).
-- ci_low, ci_high: paired bootstrap 95% percentile interval over test instances (1000
-- resamples, stratified by fold, seeded from the study seed, the same resamples for every
-- policy); null where the value is.
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
