-- The planned cost of every action on every test instance (toolkit/costs.py): what the
-- policies priced with, by the cost planner of the instance's fold; compare with
-- outcomes.cost, the realised cost. Key: (run_id, instance_id, action_id).
create table if not exists planned_costs (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- the fold the instance is a test instance of
    instance_id bigint not null,       -- the instance (instances.instance_id)
    action_id integer not null,        -- the action; ids order actions by cost, cheaper first
    planned_cost double not null       -- planned cost of the action, in runs.cost_unit
);
