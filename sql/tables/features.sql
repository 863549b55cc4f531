-- The cheap input features of every instance, long form: one row per instance and feature.
-- Key: (run_id, instance_id, feature). Built by toolkit.features.instance_features (mirrored by
-- sql/features/instance_features.sql); feature_catalog says what each feature means.
-- A numeric feature fills `value`, a categorical one `category`; null where unknown (real data
-- has no probe or difficulty signals). instances.difficulty (the simulator's latent truth) is
-- never a feature.
create table if not exists features (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    feature varchar not null,          -- e.g. prompt_tokens, signal_1, probe_entropy
    value double,                      -- numeric features
    category varchar                   -- categorical features (dataset, subject)
);
