-- Which split each instance belongs to: train (the classifier's labels and every baseline's
-- training statistics), validation (the learned policy's budget calibration), test (every
-- reported number). By instance, seeded from the study seed, each dataset cut in the study's
-- [split] proportions. Key: (run_id, instance_id).
create table if not exists splits (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    split varchar not null,            -- train | validation | test
    primary key (run_id, instance_id)
);
