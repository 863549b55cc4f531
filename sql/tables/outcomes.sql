-- Per instance and action: the estimated accuracy and the cost.
-- Key: (run_id, instance_id, action_id).
-- acc: majority -> P(a vote over b samples drawn without replacement from the stored samples
--      is correct), ties broken uniformly at random, computed exactly;
--      pass -> the unbiased pass@b estimator 1 - C(n - c, b) / C(n, b).
-- cost: in runs.cost_unit, the expected cost of the action on this instance (over every
--      b-subset of its stored samples). samples: b; tokens: the prompt's tokens (once, or b
--      times with actions.prompt = "per_sample") + b x the mean output tokens; usd: the same
--      tokens at the model's prices per million, or b x the logged dollar cost of a sample;
--      plus actions.fixed_cost (toolkit.outcomes.action_cost).
-- known_cost: the part of cost known before any sample is drawn (the prompt, fixed costs; all
--      of it in samples), which policies plan with; the rest only the samples reveal.
-- acc_true: simulation only, the same quantity under the true answer distribution
--      (i.i.d. samples), so the estimation error can be shown.
-- Adaptive actions (actions.menu = 'adaptive', toolkit/rules.py): acc and cost are expectations
--      over the random orders of the instance's stored samples as well, the cost that of the
--      expected samples drawn; known_cost the cost of the fewest samples the rule can stop at.
--      Exact (a dynamic program over vote counts) up to a cap of 20; above it a seeded Monte
--      Carlo over estimation.orders orders, with its standard errors in acc_se and cost_se
--      (null where exact).
-- acc_half_a, acc_half_b: real data only, acc estimated on each of two disjoint halves of the
--      instance's samples (a seeded shuffle), null where a half has fewer than b samples: the
--      oracle's estimation noise measured on evidence it did not choose on.
create table if not exists outcomes (
    run_id integer not null,           -- the run (runs.run_id)
    instance_id bigint not null,       -- the instance (instances.instance_id)
    action_id integer not null,        -- the action (actions.action_id)
    acc double not null,               -- estimated accuracy of the action on the instance
                                       -- (majority or pass@b: see the header)
    cost double not null,              -- cost of the action on the instance, in runs.cost_unit
    known_cost double not null,        -- the part of cost known before any sample (see the header)
    acc_true double,                   -- simulation only: the true accuracy; null for real data
    acc_half_a double,                 -- real data: acc estimated on half A of the samples
    acc_half_b double,                 -- real data: acc on the disjoint half B (toolkit/noise.py)
    samples double,                    -- expected samples the action draws: b (static), the rule's
                                       -- expectation (adaptive), all k + b (probe); null logged
    acc_se double,                     -- Monte Carlo estimates only: the standard error of acc
    cost_se double                     -- Monte Carlo estimates only: the standard error of cost
);
