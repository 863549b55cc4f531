"""The paper's published setting and figures (Solve-then-Learn, arXiv 2604.14853), which the
report sets beside a run's own measurements ("Against the paper").

Only the figures the paper states are here; each is quoted as the paper states it ("up to",
"over"). ``toolkit/studies/paper_protocol.toml`` reproduces the setting on the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER = (
    "Adaptive Test-Time Compute Allocation for Reasoning LLMs via Constrained Policy "
    "Optimization (arXiv 2604.14853)"
)

SETTING: tuple[tuple[str, str], ...] = (
    ("datasets", "MATH, GSM8K; 200 questions per dataset"),
    ("models", "DeepSeek-V3, GPT-4o-mini, Qwen2.5-7B, each allocated on its own"),
    ("actions", "a majority vote over b in {1, 2, 4, 8, 16} samples"),
    ("estimation", "48 samples per question"),
    ("features", "16 cheap input features"),
    ("splits", "80/20 train/test, 3 seeds"),
)
"""The paper's protocol, as it states it."""


@dataclass(frozen=True)
class Figure:
    """A published figure: which metric (a ``policy_frontier`` column of the learned policy),
    on which benchmark (None: all of them), its value and how the paper words the claim."""

    metric: str
    benchmark: str | None
    value: float
    claim: str
    """``up to`` (the best over models and budgets) or ``over`` (a floor over them)."""
    label: str


FIGURES: tuple[Figure, ...] = (
    Figure(
        metric="relative_gain_vs_uniform",
        benchmark="math",
        value=0.128,
        claim="up to",
        label="Relative accuracy gain over uniform at a matched budget, MATH",
    ),
    Figure(
        metric="imitation_accuracy",
        benchmark=None,
        value=0.91,
        claim="over",
        label="Imitation accuracy (the learned policy's agreement with the oracle labels)",
    ),
)

BENCHMARK_NAMES = {"math": "MATH", "gsm8k": "GSM8K"}

__all__ = ["BENCHMARK_NAMES", "FIGURES", "PAPER", "SETTING", "Figure"]
