-- What the probe (toolkit/probe.py, [probe] samples = k) saw of every instance: its first k
-- stored samples of the probe model in a seeded order. Features of the group probe, seen only
-- by the policies that pay for the probe (the probe menu). Key: (run_id, instance_id).
create table if not exists probes (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    probe_entropy double,              -- entropy (nats) of the probe's answers
    probe_agreement double,            -- share of the probe's samples on its top answer
    probe_margin double,               -- that share minus the second answer's
    probe_answered double,             -- share of the probe's samples that gave an answer
    probe_tokens double,               -- mean output tokens of the probe's samples
    probe_correct double,              -- with a verifier (pass): 1 if a probe sample succeeded
    primary key (run_id, instance_id)
);
