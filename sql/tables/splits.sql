-- Which split each instance belongs to in each fold: train (the classifier's labels and every
-- baseline's training statistics), validation (the learned policy's budget calibration), test
-- (every reported number). By instance, seeded from the study seed, each dataset cut alike
-- (toolkit/splits.py). With [split] folds = 1 there is one fold, 0, cut in the [split]
-- proportions; with folds = k every instance is test in exactly one fold (cross-fitting).
-- Key: (run_id, fold, instance_id).
create table if not exists splits (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- 0 .. folds - 1
    instance_id bigint not null,       -- the instance (instances.instance_id)
    split varchar not null,            -- train | validation | test
    primary key (run_id, fold, instance_id)
);
