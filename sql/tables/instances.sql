-- One row per instance (question), with its metadata and cheap observable features.
-- Key: (run_id, instance_id). In simulation `difficulty` is the latent standardized difficulty
-- (never a feature); for real data it is null and `text` holds the question.
create table if not exists instances (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- dense id, unique within the run across datasets
    dataset varchar not null,          -- [[datasets]].name
    source_id varchar,                 -- the id in the source file (real data)
    level smallint,                    -- MATH level 1..5; GSM8K-like: reasoning steps
    subject varchar,                   -- MATH subject
    text varchar,                      -- the question, where known
    difficulty double,                 -- simulation only: latent difficulty, standardized
    prompt_tokens integer,             -- question length in tokens
    n_sentences integer,               -- sentences in the question
    n_digits integer,                  -- digits in the question
    n_math_symbols integer,            -- + - * / = < > ^ and similar
    n_latex integer,                   -- LaTeX commands (\frac, \sqrt, ...)
    n_question_words integer,          -- what, how, find, compute, ...
    difficulty_signals double[],       -- simulation: declared noisy difficulty signals
    declared_numeric double[],         -- [datasets.features] numeric values, in the study's order
    declared_categorical varchar[]     -- [datasets.features] categorical values, likewise
);
