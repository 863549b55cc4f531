-- The features the learned policy sees: name, kind and meaning, in the classifier's column
-- order. Key: (run_id, feature).
create table if not exists feature_catalog (
    run_id integer not null,
    feature varchar not null,
    position integer not null,         -- column position in the classifier's input
    kind varchar not null,             -- numeric | categorical
    description varchar not null,
    primary key (run_id, feature)
);
