-- CatBoost's feature importance (PredictionValuesChange, summing to 100 per model) of each
-- fitted classifier. Key: (run_id, fold, budget, seed, feature).
create table if not exists feature_importance (
    run_id integer not null,
    fold integer not null,             -- splits.fold
    budget double not null,
    seed bigint not null,
    feature varchar not null,
    importance double not null,
    primary key (run_id, fold, budget, seed, feature)
);
