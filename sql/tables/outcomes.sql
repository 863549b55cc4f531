-- Per instance and action: the estimated accuracy and the cost.
-- Key: (run_id, instance_id, action_id).
-- acc: majority -> P(a vote over b samples drawn without replacement from the stored samples
--      is correct), ties broken uniformly at random, computed exactly;
--      pass -> the unbiased pass@b estimator 1 - C(n - c, b) / C(n, b).
-- cost: in runs.cost_unit. samples: b; tokens: b x the instance's mean output tokens for the
--      model; usd: (prompt tokens x input price + b x mean output tokens x output price) / 1e6.
-- acc_true: simulation only, the same quantity under the true answer distribution
--      (i.i.d. samples), so the estimation error can be shown.
create table if not exists outcomes (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    action_id integer not null,        -- the action (actions.action_id)
    acc double not null,               -- estimated accuracy of the action on the instance
                                       -- (majority or pass@b: see the header)
    cost double not null,              -- cost of the action on the instance, in runs.cost_unit
    acc_true double                    -- simulation only: the true accuracy; null for real data
);
