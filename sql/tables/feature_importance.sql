-- CatBoost's feature importance (PredictionValuesChange, summing to 100 per model) of each
-- fitted classifier. Key: (run_id, fold, menu, budget, seed, feature).
create table if not exists feature_importance (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- splits.fold
    menu varchar not null,             -- the actions chosen among: static | probe (actions.menu)
    budget double not null,            -- target mean cost of the classifier's labels
    seed bigint not null,              -- CatBoost random_seed ([learn].seeds)
    feature varchar not null,          -- the input feature (feature_catalog.feature)
    importance double not null,        -- PredictionValuesChange; sums to 100 per classifier
    primary key (run_id, fold, menu, budget, seed, feature)
);
