-- The fitted CatBoost classifiers of the learned policy: one per budget and CatBoost seed,
-- trained on the training split's oracle labels. Key: (run_id, budget, seed).
-- The model bytes are CatBoost's binary format (what a .cbm file holds; load with
-- toolkit.learn.load_model or CatBoostClassifier().load_model). Class k of the model's output
-- is the action classes[k]. The calibrated deployment picks
--   argmax_a score(a | x) - mu * action_cost[a]
-- with score = sum_k p(k | x) class_accuracy[k][a] (decoder expected_accuracy) or log p(a | x)
-- (decoder log_probability); mu and the mix are calibrated on the validation split: choices
-- at price_low (dearer) and price_high (cheaper) are mixed with weight price_mix on the first.
create table if not exists policy_models (
    run_id integer not null,           -- the run (runs.run_id)
    budget double not null,            -- target mean cost of the labels, in runs.cost_unit
    seed bigint not null,              -- CatBoost random_seed ([learn].seeds)
    lambda_star double not null,       -- lambda*(B) of the labels (training split)
    decoder varchar not null,          -- expected_accuracy | log_probability
    classes integer[] not null,        -- action ids of the classifier's classes, in output order
    class_accuracy double[][] not null, -- per class k, mean training acc of every action
    action_cost double[] not null,     -- per action id, mean training cost (the planned cost)
    feature_names varchar[] not null,  -- the classifier's input columns (feature_catalog)
    price_low double not null,         -- mu bracket meeting B on the validation split:
                                       -- the end with the dearer choices
    price_high double not null,        -- the mu bracket's other end (cheaper choices)
    price_mix double not null,         -- weight on the choices at price_low
    validation_cost double not null,   -- mean cost met on the validation split
    train_rows bigint not null,        -- training instances the classifier saw (at most
                                       -- [learn].max_train_rows)
    fit_seconds double not null,       -- wall time of the fit
    params varchar not null,           -- JSON: the CatBoost parameters
    model_format varchar not null,     -- cbm | constant (every training label the same action)
    model blob,                        -- the model; null when constant
    primary key (run_id, budget, seed)
);
