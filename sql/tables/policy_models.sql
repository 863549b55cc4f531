-- The fitted CatBoost classifiers of the learned policy: one per fold, budget and CatBoost
-- seed, trained on the fold's training oracle labels. Key: (run_id, fold, menu, budget, seed).
-- The model bytes are CatBoost's binary format (what a .cbm file holds; load with
-- toolkit.learned.load_model or CatBoostClassifier().load_model). Class k of the model's
-- output is the action classes[k]. The priced deployments pick
--   argmax_a score(a | x) - mu * planned_cost(a)        (planned cost: cost_planners)
-- with score = sum_k p(k | x) class_accuracy[k][a] (decoder expected_accuracy) or log p(a | x)
-- (decoder log_probability). learned_calibrated takes mu from the validation split: for each
-- budget in calibration_budgets (the declared budget and the grid budgets it serves) the
-- choices at price_low (dearer) and price_high (cheaper) are mixed with weight price_mix on
-- the first, which met the budget on validation (validation_cost).
create table if not exists policy_models (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- splits.fold
    menu varchar not null,             -- the actions chosen among: static | probe (actions.menu)
    budget double not null,            -- target mean cost of the labels, in runs.cost_unit
    seed bigint not null,              -- CatBoost random_seed ([learn].seeds)
    lambda_star double not null,       -- lambda*(B) of the labels (the fold's training split)
    decoder varchar not null,          -- expected_accuracy | log_probability
    classes integer[] not null,        -- action ids of the classifier's classes, in output order
    class_accuracy double[][] not null, -- per class k, mean training acc of every action
    feature_names varchar[] not null,  -- the classifier's input columns (feature_catalog)
    calibration_budgets double[] not null, -- budgets with a validation price, ascending
    price_low double[] not null,       -- per calibration budget: the mu bracket and mix
    price_high double[] not null,      -- the mu bracket's other end (cheaper choices)
    price_mix double[] not null,       -- weight on the choices at price_low
    validation_cost double[] not null, -- mean planned cost met on the validation split
    train_rows bigint not null,        -- training instances CatBoost saw
    fit_seconds double not null,       -- wall time of the fit
    params varchar not null,           -- JSON: the CatBoost parameters
    model_format varchar not null,     -- cbm | constant (every training label the same action)
    model blob,                        -- the model; null when constant
    primary key (run_id, fold, menu, budget, seed)
);
