"""The simulator: instances with a latent difficulty, cheap observable features, and sampled
answers per instance and model, all vectorized with numpy and handed over as Arrow.

Generative model, per dataset preset and instance i:

- level l_i from the preset's level proportions, subject from its subject proportions;
- a latent z_i ~ N(0, 1), shared by all models (hard questions are hard for everyone);
- for model m, the probability of a correct sample
  ``p_mi = sigmoid(mu_{m,l_i} - spread_m * z_i)``, where mu_{m,l} is solved so that the mean
  over z is the model's per-level target accuracy (``toolkit.presets``);
- wrong-answer shares ``q_i ~ Dirichlet(wrong_concentration)`` over ``wrong_answers`` distinct
  wrong answers (shared by models: a tempting wrong answer tempts everyone), so a sample is the
  correct answer (code 0) with probability p_mi or wrong answer k (code k >= 1) with probability
  ``(1 - p_mi) q_ik``; a small concentration makes one wrong answer dominant, so that a majority
  vote locks onto it on hard instances;
- ``samples_per_instance`` answers drawn i.i.d. from that distribution, each with a token count
  ``tokens ~ T_m exp(0.25 d_i + 0.15 [wrong] + 0.35 e - 0.35^2/2)`` (d_i the standardized
  difficulty, e ~ N(0, 1)).

Observable features correlate with the standardized difficulty d_i at the declared
``feature_strength`` rho: each count feature f uses its own ``s_f = rho d_i + sqrt(1-rho^2) e_f``.
The noisy difficulty signals are ``d_i + sigma_k e_k``. There is no free probe: a probe
(``[probe]``) takes some of the stored samples, and the policies that see it pay for them
(``toolkit.probe``).

Random streams are derived from the study seed with ``numpy.random.SeedSequence`` keyed by
(dataset, model, purpose), so the same study and seed give the same tables bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from scipy.special import expit

from toolkit.config import SimulatedSpec, SimulationSpec, Study, resolve_model
from toolkit.presets import (
    DATASET_PRESETS,
    DatasetPreset,
    level_accuracy_targets,
    level_logit_means,
)

CHUNK_INSTANCES = 65_536
"""Instances per generated sample batch: bounds memory at any scale (about 30 MB a batch)."""

_INSTANCE_STREAM, _MODEL_STREAM = 0, 1


@dataclass(frozen=True)
class SimulatedDataset:
    """One dataset's simulated tables (Arrow), and a generator of its sample batches."""

    name: str
    instances: pa.Table
    truth: pa.Table
    _study: Study
    _dataset_index: int
    _first_id: int
    _state: dict

    def sample_batches(self) -> Iterator[pa.RecordBatch]:
        """Sampled answers in batches of CHUNK_INSTANCES instances, per model."""
        yield from _sample_batches(self)

    @property
    def n_samples(self) -> int:
        return (
            self.instances.num_rows
            * len(self._study.models)
            * self._study.estimation.samples_per_instance
        )


def _rng(study: Study, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([study.study.seed, *key])))


def _position(study: Study, kind: Literal["datasets", "models"], index: int) -> int:
    """A dataset's or model's position (``kind``: datasets | models) in the study a cell was
    split from (``study.cell``): the key of its random streams, so a cell draws the questions
    and answers the whole study draws for it."""
    positions = study.study.cell.get(kind)
    return index if positions is None else positions[index]


def level_targets(study: Study, preset_name: str) -> dict[str, np.ndarray]:
    """Per model, the declared per-level mean single-sample accuracy on a dataset preset."""
    dataset = DATASET_PRESETS[preset_name]
    targets = {}
    for spec in study.models:
        model = resolve_model(spec)  # the study validated that every model covers the preset
        targets[spec.name] = level_accuracy_targets(
            model.accuracy[preset_name], dataset, model.level_slope
        )
    return targets


def _count_feature(rng, scale, strength, difficulty, slope):
    n = difficulty.shape[0]
    s = strength * difficulty + np.sqrt(1.0 - strength**2) * rng.standard_normal(n)
    return rng.poisson(np.maximum(scale * np.exp(slope * s), 0.0)).astype(np.int32)


@dataclass(frozen=True)
class _Latent:
    """One dataset's latent draws per instance: level and subject (indices into the preset's
    lists), the difficulty z shared by all models, and the wrong-answer shares
    (n, wrong_answers)."""

    level_index: np.ndarray
    subject_index: np.ndarray
    z: np.ndarray
    wrong_shares: np.ndarray


def simulate_dataset(study: Study, dataset_index: int, first_id: int = 0) -> SimulatedDataset:
    """Draw one dataset's instances, features and answer distributions."""
    spec = study.datasets[dataset_index]
    assert isinstance(spec, SimulatedSpec)  # simulate() passes the simulated datasets
    preset_name, n = spec.preset, spec.instances
    preset = DATASET_PRESETS[preset_name]
    rng = _rng(study, _position(study, "datasets", dataset_index), _INSTANCE_STREAM)
    latent = _draw_latent(rng, preset, study.simulation, n)
    p_correct = _correct_probabilities(study, preset_name, latent)
    difficulty = _standardized_difficulty(p_correct[study.models[0].name])
    counts, signals = _draw_features(rng, preset, study.simulation, difficulty)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    instances = _instance_table(spec.name, preset, ids, latent, difficulty, counts, signals)
    state = {"p_correct": p_correct, "wrong_shares": latent.wrong_shares, "difficulty": difficulty}
    return SimulatedDataset(
        name=spec.name,
        instances=instances,
        truth=_truth_table(study, ids, p_correct, latent.wrong_shares),
        _study=study,
        _dataset_index=dataset_index,
        _first_id=first_id,
        _state=state,
    )


def _draw_latent(
    rng: np.random.Generator, preset: DatasetPreset, sim: SimulationSpec, n: int
) -> _Latent:
    """Levels, subjects, the latent z and the wrong-answer shares of n instances."""
    level_index = rng.choice(len(preset.level_values), size=n, p=preset.level_proportions)
    subject_index = rng.choice(len(preset.subjects), size=n, p=preset.subject_proportions)
    z = rng.standard_normal(n)
    wrong_shares = rng.standard_gamma(sim.wrong_concentration, size=(n, sim.wrong_answers))
    wrong_shares /= np.maximum(wrong_shares.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    # Degenerate draws (all gammas underflow to 0 at tiny concentrations): one wrong answer.
    empty = ~np.isfinite(wrong_shares).all(axis=1) | (wrong_shares.sum(axis=1) < 0.5)
    wrong_shares[empty] = 0.0
    wrong_shares[empty, 0] = 1.0
    return _Latent(level_index, subject_index, z, wrong_shares)


def _correct_probabilities(
    study: Study, preset_name: str, latent: _Latent
) -> dict[str, np.ndarray]:
    """Per model, each instance's probability of a correct sample."""
    targets = level_targets(study, preset_name)
    p_correct = {}
    for spec_m in study.models:
        model = resolve_model(spec_m)
        mu = level_logit_means(targets[spec_m.name], model.difficulty_spread)
        p_correct[spec_m.name] = expit(mu[latent.level_index] - model.difficulty_spread * latent.z)
    return p_correct


def _standardized_difficulty(p_first: np.ndarray) -> np.ndarray:
    """Difficulty as the first model sees it, standardized: the signal every feature is noisy
    about."""
    logit_first = np.log(p_first) - np.log1p(-p_first)
    hardness = -logit_first
    return (hardness - hardness.mean()) / max(hardness.std(), 1e-12)


def _draw_features(
    rng: np.random.Generator, preset: DatasetPreset, sim: SimulationSpec, difficulty: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The observable count features (by column name) and the noisy difficulty signals (n, k)."""
    n = len(difficulty)
    rho = sim.feature_strength
    prompt_tokens = np.maximum(
        1,
        np.round(
            preset.prompt_tokens_median
            * np.exp(0.45 * (rho * difficulty + np.sqrt(1 - rho**2) * rng.standard_normal(n)))
        ),
    ).astype(np.int32)
    counts = {
        "prompt_tokens": prompt_tokens,
        "n_sentences": (1 + rng.poisson(prompt_tokens / 18.0)).astype(np.int32),
        "n_digits": _count_feature(rng, 0.08 * prompt_tokens, rho, difficulty, 0.3),
        "n_math_symbols": _count_feature(rng, 0.05 * prompt_tokens, rho, difficulty, 0.3),
        "n_latex": _count_feature(rng, preset.latex_rate * prompt_tokens, rho, difficulty, 0.4),
        "n_question_words": rng.poisson(1.2, size=n).astype(np.int32),
    }
    signals = np.empty((n, len(sim.signal_noise)))  # no declared signals: empty lists
    for k, noise in enumerate(sim.signal_noise):
        signals[:, k] = difficulty + noise * rng.standard_normal(n)
    return counts, signals


def _instance_table(
    dataset: str,
    preset: DatasetPreset,
    ids: np.ndarray,
    latent: _Latent,
    difficulty: np.ndarray,
    counts: dict[str, np.ndarray],
    signals: np.ndarray,
) -> pa.Table:
    """The ``instances`` rows of one simulated dataset."""
    n = len(ids)
    levels = np.asarray(preset.level_values, dtype=np.int16)[latent.level_index]
    subjects = pa.DictionaryArray.from_arrays(
        pa.array(latent.subject_index.astype(np.int32)), pa.array(list(preset.subjects))
    )
    return pa.table(
        {
            "instance_id": ids,
            "dataset": pa.array([dataset] * n, pa.string()),
            "source_id": pa.nulls(n, pa.string()),
            "level": levels,
            "subject": subjects.cast(pa.string()),
            "text": pa.nulls(n, pa.string()),
            "difficulty": difficulty,
            **counts,
            "difficulty_signals": pa.ListArray.from_arrays(
                pa.array(np.arange(n + 1, dtype=np.int32) * signals.shape[1]),
                pa.array(signals.ravel(), pa.float64()),
            ),
        }
    )


def _truth_table(
    study: Study, ids: np.ndarray, p_correct: dict[str, np.ndarray], wrong_shares: np.ndarray
) -> pa.Table:
    """Per instance and model, the true answer distribution: p_correct and p_wrong."""
    n = len(ids)
    truth_parts = []
    for spec_m in study.models:
        wrong = (1.0 - p_correct[spec_m.name])[:, None] * wrong_shares
        truth_parts.append(
            pa.table(
                {
                    "instance_id": ids,
                    "model": pa.array([spec_m.name] * n, pa.string()),
                    "p_correct": p_correct[spec_m.name],
                    "p_wrong": pa.FixedSizeListArray.from_arrays(
                        pa.array(wrong.ravel()), study.simulation.wrong_answers
                    ).cast(pa.list_(pa.float64())),
                }
            )
        )
    return pa.concat_tables(truth_parts)


def _draw_answers(
    rng: np.random.Generator, p_correct: np.ndarray, wrong_shares: np.ndarray, k: int
) -> np.ndarray:
    """k i.i.d. answer codes per instance: 0 with probability p, else wrong answer j >= 1."""
    wrong_cdf = np.cumsum(wrong_shares, axis=1)
    u = rng.random((p_correct.shape[0], k))
    is_wrong = u >= p_correct[:, None]
    # Rescale the wrong part of the uniform to [0, 1) and find its wrong answer by the CDF.
    v = (u - p_correct[:, None]) / np.maximum(1.0 - p_correct[:, None], 1e-300)
    codes = np.ones(u.shape, dtype=np.int16)
    for j in range(wrong_shares.shape[1] - 1):
        codes += v >= wrong_cdf[:, j : j + 1]
    codes = np.minimum(codes, wrong_shares.shape[1])
    return np.where(is_wrong, codes, 0).astype(np.int16)


def _sample_batches(data: SimulatedDataset) -> Iterator[pa.RecordBatch]:
    study = data._study
    s = study.estimation.samples_per_instance
    n = data.instances.num_rows
    difficulty = data._state["difficulty"]
    wrong_shares = data._state["wrong_shares"]
    sample_idx_row = np.arange(s, dtype=np.int16)
    dataset = study.datasets[data._dataset_index]
    assert isinstance(dataset, SimulatedSpec)  # simulate_dataset drew it
    for model_index, spec_m in enumerate(study.models):
        model = resolve_model(spec_m)
        mean_tokens = model.output_tokens[dataset.preset]
        rng = _rng(
            study,
            _position(study, "datasets", data._dataset_index),
            _MODEL_STREAM,
            _position(study, "models", model_index),
        )
        p = data._state["p_correct"][spec_m.name]
        model_name = pa.array([spec_m.name], pa.string())
        for start in range(0, n, CHUNK_INSTANCES):
            stop = min(n, start + CHUNK_INSTANCES)
            m = stop - start
            answers = _draw_answers(rng, p[start:stop], wrong_shares[start:stop], s)
            wrong = answers > 0
            log_tokens = (
                np.log(mean_tokens)
                - 0.5 * 0.35**2
                + 0.25 * difficulty[start:stop, None]
                + 0.15 * wrong
                + 0.35 * rng.standard_normal((m, s))
            )
            tokens = np.maximum(1, np.exp(log_tokens)).astype(np.int32)
            yield pa.RecordBatch.from_pydict(
                {
                    "instance_id": np.repeat(
                        np.arange(data._first_id + start, data._first_id + stop, dtype=np.int64), s
                    ),
                    "model": pa.DictionaryArray.from_arrays(
                        pa.array(np.zeros(m * s, dtype=np.int32)), model_name
                    ),
                    "sample_idx": np.tile(sample_idx_row, m),
                    "answer": answers.ravel(),
                    "correct": ~wrong.ravel(),
                    "tokens": tokens.ravel(),
                }
            )


def simulate(study: Study) -> list[SimulatedDataset]:
    """Simulate every dataset of a study; instance ids run on across datasets."""
    out, first_id = [], 0
    for index, spec in enumerate(study.datasets):
        if not isinstance(spec, SimulatedSpec):
            continue
        out.append(simulate_dataset(study, index, first_id))
        first_id += spec.instances
    return out
