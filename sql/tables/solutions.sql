-- One row per solved budget: the oracle allocation's price, cost and accuracy (toolkit/solve.py).
-- Key: (run_id, scope, solver, budget). The allocation per instance is in `allocations`.
-- A budget above the cost of the best allocation does not bind: lambda_star = 0, mean_cost < budget.
create table if not exists solutions (
    run_id integer not null,           -- the run (runs.run_id)
    scope varchar not null,            -- the instances solved: all | train | test | ...
    budget double not null,            -- target mean cost per instance, in runs.cost_unit
    solver varchar not null,           -- hull (exact, upper concave hulls) | bisection (on lambda)
    lambda_star double not null,       -- lambda*: the price per unit cost at which the budget is met
    mean_cost double not null,         -- of the mixed allocation: = budget when binding
    mean_acc double not null,          -- of the mixed allocation: the LP optimum
    lagrangian double not null,        -- dual bound mean_i max_a (acc - lambda* cost) + lambda* budget
    binding boolean not null,          -- false: the budget exceeds the best allocation's cost
    n_instances bigint not null,       -- instances solved
    n_mixed bigint not null,           -- instances split between two actions
    primary key (run_id, scope, solver, budget)
);
