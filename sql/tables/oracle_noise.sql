-- How much of the oracle's gain is estimation noise (toolkit/noise.py): per budget, the
-- oracle's gain over a fixed allocation at the same spend on the evidence it was chosen on
-- (apparent) and on evidence it was not (held out). Simulation: the test oracle against
-- best_fixed (matched), scored on the estimates and on acc_true. Real data: both chosen on
-- half A of each instance's samples and scored on half A and on half B, over the actions a half
-- can estimate. Key: (run_id, budget).
create table if not exists oracle_noise (
    run_id integer not null,           -- the run (runs.run_id)
    budget double not null,            -- target mean cost per instance, in runs.cost_unit
    evidence varchar not null,         -- true (acc_true) | halves (disjoint sample halves)
    actions varchar not null,          -- the actions taken part: all, or their names
    apparent_gain double,              -- oracle - fixed, on the evidence it was chosen on
    heldout_gain double,               -- the same allocations on the held-out evidence
    heldout_gain_ci_low double,        -- lower end of its paired bootstrap 95% interval
    heldout_gain_ci_high double,       -- upper end of that interval
    noise_share double,                -- 1 - heldout_gain / apparent_gain: the gain that is noise
    noise_share_ci_low double,         -- lower end of its paired bootstrap 95% interval
    noise_share_ci_high double         -- upper end of that interval
);
