-- Published curves of one model on the same questions, declared per dataset
-- ([datasets.reference], toolkit/reference.py) and read from their file when the run began:
-- the report sets the run's own pass@b and majority-vote accuracies beside them.
-- Key: (run_id, dataset, model, curve, b).
create table if not exists reference_curves (
    run_id integer not null,           -- the run (runs.run_id)
    dataset varchar not null,          -- the dataset the curves are declared for (instances.dataset)
    model varchar not null,            -- the model the curves are of (samples.model; [datasets.reference] model)
    curve varchar not null,            -- coverage (pass@b) | majority (majority vote over b)
    b integer not null,                -- samples per question
    value double not null,             -- the published accuracy at b, in [0, 1]
    source varchar not null            -- where the curves are from: the declared source, else the file
);
