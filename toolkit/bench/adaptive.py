"""Adaptive-action estimation speed: the exact program of ``toolkit.rules`` against a plain
numpy Monte Carlo over orders of the same samples.

    python -m toolkit.bench.adaptive              # N = 1e5 instances x 48 samples
    python -m toolkit.bench.adaptive 1e4          # another size

Per N, synthetic answer profiles as the simulator draws them: 48 samples per instance over one
correct and four wrong answers (shares from a Dirichlet), so nearly every profile is distinct
(no deduplication helps). Per rule (ESC w = 4, Adaptive-Consistency p >= 0.95, first 3 agree,
each capped at 16):

- ``exact_s``: ``rule_outcomes`` on all N profiles (expected accuracy and samples, exact);
- ``mc_s``: the seeded Monte Carlo over ``ORDERS`` random orders per instance
  (``rule_outcomes_mc``: one vectorized numpy pass per draw position), on the first
  ``mc_instances`` profiles, scaled to N (its time is linear in N);
- ``exact/s`` and ``mc/s``: instances per second; ``speedup``: mc_s / exact_s at N;
- ``gap_z``: the Monte Carlo's mean accuracy over its instances minus the exact one, in units
  of the standard error of that mean (a check: within +-3); per instance the standard error of
  a share near 0 or 1 from 200 orders is itself too noisy to check against (it is 0 where all
  200 orders agree); ``mc_se``: the mean per-instance standard error.

``peak_rss_mib`` is the process's peak resident memory after each rule.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from toolkit.bench import peak_rss_mib, print_table
from toolkit.rules import Rule, rule_outcomes, rule_outcomes_mc

ORDERS = 200
RULES = (
    Rule("esc", cap=16, window=4),
    Rule("adaptive_consistency", cap=16, threshold=0.95),
    Rule("first_agree", cap=16, k=3),
)


def synthetic_profiles(n: int, samples: int = 48, seed: int = 0):
    """(correct (n, 1), wrong (n, 4), n_samples (n,)) group sizes of ``samples`` draws."""
    rng = np.random.default_rng(seed)
    p_correct = rng.beta(2.0, 1.5, size=n)
    wrong_shares = rng.dirichlet(np.full(4, 0.3), size=n) * (1.0 - p_correct)[:, None]
    p = np.column_stack([p_correct, wrong_shares])
    counts = rng.multinomial(samples, p)
    return counts[:, :1], counts[:, 1:], np.full(n, samples)


def run(sizes: tuple[int, ...] = (100_000,), mc_instances: int = 5_000) -> list[dict]:
    rows = []
    for n in sizes:
        correct, wrong, total = synthetic_profiles(n)
        m = min(n, mc_instances)
        for rule in RULES:
            start = time.perf_counter()
            acc, _samples = rule_outcomes(rule, correct, wrong, total)
            exact_s = time.perf_counter() - start
            start = time.perf_counter()
            mc_acc, _, mc_se, _ = rule_outcomes_mc(
                rule, correct[:m], wrong[:m], total[:m], orders=ORDERS, seed=0
            )
            mc_s = (time.perf_counter() - start) * n / m
            gap_z = (mc_acc.mean() - acc[:m].mean()) / (np.sqrt(np.sum(mc_se**2)) / m)
            rows.append(
                {
                    "instances": n,
                    "samples": int(total[0]),
                    "rule": rule.label,
                    "exact_s": exact_s,
                    "mc_s": mc_s,
                    "exact/s": n / exact_s,
                    "mc/s": n / mc_s,
                    "speedup": mc_s / exact_s,
                    "gap_z": float(gap_z),
                    "mc_se": float(mc_se.mean()),
                    "peak_rss_mib": peak_rss_mib(),
                }
            )
    return rows


if __name__ == "__main__":
    print_table(run(tuple(int(float(a)) for a in sys.argv[1:]) or (100_000,)))
