-- Simulation only: each instance's true answer distribution per model, so that reports can
-- show the error of the accuracy estimated from finitely many samples.
-- Key: (run_id, instance_id, model).
create table if not exists sim_truth (
    run_id integer not null,
    instance_id bigint not null,
    model varchar not null,
    p_correct double not null,         -- probability a sample is correct
    p_wrong double[] not null          -- probability of each distinct wrong answer
);
