-- The features the learned policy sees: name, kind and meaning, in the classifier's column
-- order. Key: (run_id, feature).
create table if not exists feature_catalog (
    run_id integer not null,           -- the run (runs.run_id)
    feature varchar not null,          -- the feature's name (features.feature)
    position integer not null,         -- column position in the classifier's input
    kind varchar not null,             -- numeric | categorical | text
    feature_group varchar not null,    -- metadata | text_counts | text | signals | probe | declared
    description varchar not null,      -- what the feature measures
    primary key (run_id, feature)
);
