-- The action set: which model, how many samples b, and how they are aggregated.
-- Key: (run_id, action_id). Action ids order actions by cost (cheaper first).
create table if not exists actions (
    run_id integer not null,           -- the run (runs.run_id)
    action_id integer not null,        -- the action; ids order actions by cost, cheaper first
    name varchar not null,             -- e.g. qwen2.5-7b@b=4
    model varchar not null,            -- [[models]].name sampled
    b integer not null,                -- number of samples
    aggregation varchar not null,      -- majority | pass
    primary key (run_id, action_id)
);
