-- One row per sampled answer: instance x model x sample index.
-- Key: (run_id, instance_id, model, sample_idx). `answer` codes distinct answers within an
-- instance (in simulation 0 is the correct answer); `correct` says whether it is right.
create table if not exists samples (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    model varchar not null,            -- the model sampled ([[models]].name)
    sample_idx integer not null,       -- per instance and model: from 0, or the
                                       -- file's own sample column (columns.sample)
    answer integer,                    -- the answer's code within the instance (in
                                       -- simulation 0 is the correct one); null when unknown
    correct boolean not null,          -- whether the answer is right
    tokens bigint,                     -- output tokens of this sample, where known
    prompt_tokens bigint,              -- the prompt's tokens for this sample, where logged
    cost double,                       -- the sample's dollar cost, where logged
    score double,                      -- a reward model's or verifier's score of the
                                       -- sample (columns.score; higher is better), where
                                       -- logged: best-of-b keeps the highest-scored answer
    verified boolean                   -- a deployable check's verdict on the sample
                                       -- (columns.check), where logged: until_verified
                                       -- stops at the first sample that passes it
);
