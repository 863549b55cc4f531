-- The learned policy's learning curve (toolkit/evaluate.py): the classifier of one budget and
-- CatBoost seed refitted on nested seeded shares of fold 0's training sample, each priced on
-- fold 0's test batch (learned_batch) and scored there. Training-size diagnostics only: the
-- full-size point is the stored classifier. Key: (run_id, fold, budget, seed, train_rows).
create table if not exists learning_curve (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- the fold it was fitted and scored in (0)
    budget double not null,            -- the declared budget (the middle one)
    seed bigint not null,              -- the CatBoost seed (the first of [learn] seeds)
    train_rows bigint not null,        -- training instances the classifier saw
    accuracy double not null,          -- mean expected accuracy on the fold's test split
    best_fixed_accuracy double not null, -- best_fixed's, priced at the same budget
    gain_vs_best_fixed double not null, -- accuracy - best_fixed_accuracy
    imitation_accuracy double not null -- mean weight on the oracle label
);
