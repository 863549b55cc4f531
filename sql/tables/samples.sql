-- One row per sampled answer: instance x model x sample index.
-- Key: (run_id, instance_id, model, sample_idx). `answer` codes distinct answers within an
-- instance (in simulation 0 is the correct answer); `correct` says whether it is right.
create table if not exists samples (
    run_id integer not null,
    instance_id bigint not null,
    model varchar not null,
    sample_idx integer not null,
    answer integer,
    correct boolean not null,
    tokens bigint,                     -- output tokens of this sample, where known
    prompt_tokens bigint,              -- the prompt's tokens for this sample, where logged
    cost double                        -- the sample's dollar cost, where logged
);
