"""Built-in dataset and model presets for the simulator.

The numbers are approximations of published figures, good enough to make simulated studies look
like the paper's setting; they are not measurements. Override any of them in a study file.

Datasets
--------
``math``: the MATH test set (Hendrycks et al., 2021): level counts 437/894/1131/1214/1324 and
the 7 subjects' counts, both counted from the 5,000-problem test file
(``../shared/data/math_test5000.jsonl``; a test checks them). The per-level decline of
single-sample accuracy is a logistic slope of 0.65 logits per level, fitted to the real
Llama-3.2-1B MATH-500 per-level accuracies 0.499, 0.390, 0.292, 0.176, 0.0715
(``../shared/data/README.md``): their logits fall by 2.57 over four levels.

``gsm8k``: GSM8K's test set (Cobbe et al., 2021) has no levels; the preset's "level" is the
number of reasoning steps in the reference solution (2, 3, ..., 8 or more), with the counts
326/370/298/174/88/40/23 counted from ``../shared/data/gsm8k_test.jsonl``. Its slope, 0.3
logits per step, is an assumption.

Models
------
Overall single-sample accuracies (approximate; from the model makers' reports):

============  =====  =====  ======================================================
model         MATH   GSM8K  source
============  =====  =====  ======================================================
deepseek-v3   0.902  0.893  DeepSeek-V3 technical report (MATH-500 EM; GSM8K base)
gpt-4o-mini   0.702  0.870  OpenAI's GPT-4o mini announcement (MATH; MGSM for GSM8K)
qwen2.5-7b    0.755  0.916  Qwen2.5 report, Qwen2.5-7B-Instruct
============  =====  =====  ======================================================

Output tokens per sample and prices (USD per million tokens) are round, public-list-price
approximations (DeepSeek API, OpenAI API, a hosted Qwen2.5-7B-Instruct endpoint).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class DatasetPreset:
    """How a simulated dataset's instances are laid out."""

    name: str
    level_values: tuple[int, ...]
    level_counts: tuple[int, ...]
    subjects: tuple[str, ...]
    subject_counts: tuple[int, ...]
    level_slope: float
    """Decline of single-sample accuracy per level, in logits."""
    prompt_tokens_median: float
    latex_rate: float
    """Mean LaTeX commands per prompt token (0 for plain-text word problems)."""

    @property
    def level_proportions(self) -> np.ndarray:
        import numpy as np  # numpy loads when first needed, not with the study file

        counts = np.asarray(self.level_counts, dtype=float)
        return counts / counts.sum()

    @property
    def subject_proportions(self) -> np.ndarray:
        import numpy as np

        counts = np.asarray(self.subject_counts, dtype=float)
        return counts / counts.sum()


@dataclass(frozen=True)
class ModelPreset:
    """A model's calibration targets and cost figures."""

    name: str
    accuracy: dict[str, float]
    output_tokens: dict[str, float]
    price_input_per_mtok: float
    price_output_per_mtok: float
    difficulty_spread: float = 2.0
    """Standard deviation of per-instance logits within a level."""
    level_slope: float | None = None
    """Logit decline of accuracy per level; None: the dataset preset's slope."""


DATASET_PRESETS: dict[str, DatasetPreset] = {
    "math": DatasetPreset(
        name="math",
        level_values=(1, 2, 3, 4, 5),
        level_counts=(437, 894, 1131, 1214, 1324),
        subjects=(
            "Algebra",
            "Counting & Probability",
            "Geometry",
            "Intermediate Algebra",
            "Number Theory",
            "Prealgebra",
            "Precalculus",
        ),
        subject_counts=(1187, 474, 479, 903, 540, 871, 546),
        level_slope=0.65,
        prompt_tokens_median=60.0,
        latex_rate=0.12,
    ),
    "gsm8k": DatasetPreset(
        name="gsm8k",
        level_values=(2, 3, 4, 5, 6, 7, 8),
        level_counts=(326, 370, 298, 174, 88, 40, 23),
        subjects=("arithmetic",),
        subject_counts=(1,),
        level_slope=0.3,
        prompt_tokens_median=55.0,
        latex_rate=0.0,
    ),
}

_MODELS = (
    # name, accuracy on math and gsm8k, output tokens on math and gsm8k, and the price in $
    # per million input and output tokens
    ("deepseek-v3", 0.902, 0.893, 700.0, 260.0, 0.27, 1.10),
    ("gpt-4o-mini", 0.702, 0.870, 550.0, 220.0, 0.15, 0.60),
    ("qwen2.5-7b", 0.755, 0.916, 600.0, 280.0, 0.30, 0.30),
)

MODEL_PRESETS: dict[str, ModelPreset] = {
    name: ModelPreset(
        name=name,
        accuracy={"math": acc_math, "gsm8k": acc_gsm8k},
        output_tokens={"math": tokens_math, "gsm8k": tokens_gsm8k},
        price_input_per_mtok=price_in,
        price_output_per_mtok=price_out,
    )
    for name, acc_math, acc_gsm8k, tokens_math, tokens_gsm8k, price_in, price_out in _MODELS
}


@functools.cache
def _gauss_hermite() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and normalised weights for E[f(Z)], Z ~ N(0, 1): exact enough for
    a smooth sigmoid (computed once, when first needed)."""
    import numpy as np

    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return nodes, weights / weights.sum()


def mean_logistic_normal(mu: float, spread: float) -> float:
    """E[sigmoid(mu + spread * Z)] for Z ~ N(0, 1)."""
    import numpy as np
    from scipy.special import expit  # scipy loads when first needed, not with the CLI

    nodes, weights = _gauss_hermite()
    return float(np.dot(weights, expit(mu + spread * nodes)))


def level_accuracy_targets(
    overall: float, dataset: DatasetPreset, slope: float | None = None
) -> np.ndarray:
    """Per-level mean accuracies a_l = sigmoid(alpha - slope * (l - l_mid)) whose
    level-weighted mean is ``overall``; alpha is solved for. ``slope`` defaults to the
    dataset preset's (a model may declare its own)."""
    import numpy as np
    from scipy.optimize import brentq
    from scipy.special import expit

    levels = np.arange(len(dataset.level_values), dtype=float)
    slope = dataset.level_slope if slope is None else slope
    offsets = slope * (levels - levels.mean())
    weights = dataset.level_proportions

    def gap(alpha: float) -> float:
        return float(np.dot(weights, expit(alpha - offsets))) - overall

    alpha = brentq(gap, -30.0, 30.0, xtol=1e-13)
    return expit(alpha - offsets)


def level_logit_means(targets: np.ndarray, spread: float) -> np.ndarray:
    """Per level, the logit mean mu_l with E[sigmoid(mu_l + spread * Z)] = target_l."""
    import numpy as np
    from scipy.optimize import brentq

    return np.array(
        [
            brentq(lambda mu, t=t: mean_logistic_normal(mu, spread) - t, -40.0, 40.0, xtol=1e-13)
            for t in targets
        ]
    )
