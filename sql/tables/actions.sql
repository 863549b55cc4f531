-- The action set: which model, how many samples b, and how they are aggregated. Key:
-- (run_id, action_id). Static actions first, by model then b; with a probe ([probe]), then the
-- probe's actions (toolkit/probe.py): b >= k of the probe model with its k samples reused, and
-- every other model's action after the probe; their cost includes the probe's; then the
-- adaptive actions ([[actions.rules]], toolkit/rules.py): a stopping rule over one model's
-- samples, b its cap, its cost the expected samples it draws.
create table if not exists actions (
    run_id integer not null,           -- the run (runs.run_id)
    action_id integer not null,        -- the action; ids order actions by cost, cheaper first
    name varchar not null,             -- e.g. qwen2.5-7b@b=4, qwen2.5-7b@esc(w=4,b<=16)
    model varchar not null,            -- [[models]].name sampled
    b integer not null,                -- number of samples (adaptive: the most it draws)
    aggregation varchar not null,      -- majority | pass | best_of | weighted
    menu varchar not null,             -- static | probe | adaptive: the policies that may
                                       -- choose it (adaptive-menu policies: static too)
    probe_samples integer not null,    -- k samples of the probe this action follows; 0 static
    rule varchar,                      -- adaptive: the stopping rule, e.g. esc(w=4,b<=16)
    primary key (run_id, action_id)
);
