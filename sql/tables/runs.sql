-- One row per study run. Every other table keys on run_id.
-- A run is identified by (study, config_hash, seed): running the same study again replaces it.
create table if not exists runs (
    run_id integer primary key,        -- the run; every other table keys on it
    study varchar not null,            -- [study].name
    config_hash varchar not null,      -- sha256 of the validated config, first 12 hex digits
    seed bigint not null,              -- [study].seed
    config_json varchar not null,      -- the validated study, defaults filled in
    cost_unit varchar not null,        -- samples | tokens | usd
    aggregation varchar not null,      -- majority | pass
    samples_per_instance integer,      -- stored samples per instance and model
    engine varchar not null,           -- where the queries ran (duckdb, pyspark)
    versions varchar not null,         -- JSON: toolkit, python, duckdb, ibis, numpy, catboost
    created_at timestamp not null      -- when the run was written (UTC)
);
