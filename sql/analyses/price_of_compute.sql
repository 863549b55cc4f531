-- The price of compute: lambda*, the accuracy one unit of cost must buy to be worth spending,
-- per run and budget, as solved on all instances and on the training and test splits; with the
-- oracle's mean accuracy and how many instances it mixes between two actions. lambda* falls as
-- the budget grows and reaches 0 where the budget no longer binds.
--
--   stl sql sql/analyses/price_of_compute.sql --db out/study.duckdb
with

solution_rows as (
    select * from solutions
),

final as (
    select
        run_id,
        budget,
        scope,
        solver,
        round(lambda_star, 5) as lambda_star,
        round(mean_cost, 3) as mean_cost,
        round(mean_acc, 4) as mean_acc,
        binding,
        n_instances,
        n_mixed
    from solution_rows
)

select * from final
order by run_id, budget, scope, solver;
