-- Simulation only: each instance's true answer distribution per model, so that reports can
-- show the error of the accuracy estimated from finitely many samples.
-- Key: (run_id, instance_id, model).
create table if not exists sim_truth (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    model varchar not null,            -- the model ([[models]].name)
    p_correct double not null,         -- probability a sample is correct
    p_wrong double[] not null          -- probability of each distinct wrong answer
);
