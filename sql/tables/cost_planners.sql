-- The cost planner of each fold (toolkit/costs.py): the planned cost of action a on instance
-- i, what every priced policy spends against the budget, is
--   planned_i(a) = outcomes.known_cost + v_a(x_i)
-- with v_a the variable (output) cost predicted from the instance's features, fitted on the
-- fold's training split. Key: (run_id, fold).
create table if not exists cost_planners (
    run_id integer not null,           -- the run (runs.run_id)
    fold integer not null,             -- splits.fold
    method varchar not null,           -- constant | mean | catboost
    mean_variable double[] not null,   -- per action id, the training mean of the variable cost
    shift double[],                    -- catboost: added to the rescaled predictions per action
    model_format varchar not null,     -- cbm (a CatBoostRegressor, MultiRMSE) | none
    model blob,                        -- the regressor of variable cost / mean_variable; or null
    modelled boolean[],                -- catboost: per action id, predicted by the regressor (else its mean)
    primary key (run_id, fold)
);
