-- The oracle action of every instance at the price lambda*(B) solved on a fold's training
-- split, per fold and budget: the classifier's training labels (train rows: the solver's hard
-- labels, its mixed instances resolved as toolkit.solve.oracle_labels does) and the imitation
-- target on validation and test (argmax_a acc - lambda* cost, ties to the cheaper action).
-- Key: (run_id, fold, menu, budget, instance_id).
create table if not exists oracle_labels (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- splits.fold
    menu varchar not null,             -- the actions chosen among: static | probe (actions.menu)
    budget double not null,            -- target mean cost, in runs.cost_unit
    instance_id bigint not null,       -- the instance (instances.instance_id)
    split varchar not null,            -- train | validation | test (in this fold)
    action_id integer not null,        -- the oracle action (actions.action_id)
    lambda_star double not null,       -- lambda*(B) on the fold's training split
    gap double not null,               -- max_a L(a) - min_a L(a), L(a) = acc(a) - lambda* cost(a)
    primary key (run_id, fold, menu, budget, instance_id)
);
