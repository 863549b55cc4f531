"""Cheap input features per instance: what a policy may look at before spending any compute.

The features are an Ibis query over the ``instances`` table (``instance_features``), mirrored by
``sql/features/instance_features.sql`` as a test oracle. They come from three places:

- the question's metadata: ``dataset``, ``subject`` (categorical) and ``level``;
- its text (the count columns of ``instances``, filled in by the simulator or by
  ``sql/features/text_features.sql`` on ingest) and ratios derived from them: log length, digits,
  operators and LaTeX commands per token, tokens per sentence, question words per sentence;
- cheap signals: every declared noisy difficulty signal (``difficulty_signals``, one column each,
  ``signal_1`` .. ``signal_k``) and their mean, and the answer entropy and top-answer share of one
  cheap probe call (``probe_entropy``, ``probe_agreement``).

``instances.difficulty`` is the simulator's latent truth and is never read here. A feature that
is unknown for an instance (real data has no probe or signals) is null; CatBoost treats a null
number as missing and a null category as its own value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CATEGORICAL = ("dataset", "subject")
"""The built-in categorical features (strings); declared ones add to them (``FeatureSpec``)."""

TEXT = "question_text"
"""The question text, a CatBoost text feature (its own tokenizer, dictionaries and estimators)
where the instances have text."""

MISSING_CATEGORY = "(none)"
"""What a null category becomes for the classifier."""

GROUPS = ("metadata", "text_counts", "text", "signals", "probe", "declared")
"""Feature groups, for ``[learn] features`` (which groups the learned policy sees)."""


@dataclass(frozen=True)
class FeatureInfo:
    """One feature: its column name, kind (numeric | categorical | text), group and meaning."""

    name: str
    kind: str
    description: str
    group: str = "text_counts"


_BASE_FEATURES: tuple[FeatureInfo, ...] = (
    FeatureInfo("dataset", "categorical", "the dataset the question comes from", "metadata"),
    FeatureInfo("subject", "categorical", "subject (MATH: Algebra, Geometry, ...)", "metadata"),
    FeatureInfo(
        "level", "numeric", "difficulty level (MATH 1..5; GSM8K-like: reasoning steps)", "metadata"
    ),
    FeatureInfo("prompt_tokens", "numeric", "question length in tokens"),
    FeatureInfo("n_sentences", "numeric", "sentences in the question"),
    FeatureInfo("tokens_per_sentence", "numeric", "prompt_tokens / n_sentences"),
    FeatureInfo("n_digits", "numeric", "digit characters"),
    FeatureInfo("digits_per_token", "numeric", "n_digits / prompt_tokens"),
    FeatureInfo("n_math_symbols", "numeric", "operators + - * / = < > ^ and the like"),
    FeatureInfo("math_symbols_per_token", "numeric", "n_math_symbols / prompt_tokens"),
    FeatureInfo("n_latex", "numeric", "LaTeX commands (\\frac, \\sqrt, ...)"),
    FeatureInfo("latex_per_token", "numeric", "n_latex / prompt_tokens"),
    FeatureInfo("n_question_words", "numeric", "what, how, find, compute, ..."),
    FeatureInfo("question_words_per_sentence", "numeric", "n_question_words / n_sentences"),
)
_PROBE_FEATURES: tuple[FeatureInfo, ...] = (
    FeatureInfo("probe_entropy", "numeric", "entropy (nats) of the probe's answers", "probe"),
    FeatureInfo("probe_agreement", "numeric", "share of the probe on its top answer", "probe"),
    FeatureInfo("probe_margin", "numeric", "that share minus the second answer's", "probe"),
    FeatureInfo("probe_answered", "numeric", "share of the probe that gave an answer", "probe"),
    FeatureInfo("probe_tokens", "numeric", "mean output tokens of the probe's samples", "probe"),
    FeatureInfo("probe_correct", "numeric", "a verifier: did a probe sample succeed", "probe"),
)
PROBE_FEATURES = tuple(info.name for info in _PROBE_FEATURES)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a run's instances have: ``n_signals`` declared difficulty signals, the
    declared feature columns (``[datasets.features]``), whether the question text is a text
    feature, and the groups the policy sees (``[learn] features``)."""

    n_signals: int = 0
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: bool = False
    groups: tuple[str, ...] = GROUPS
    probe: bool = False
    """Whether the probe's features are seen: only by policies that pay for the probe."""

    def infos(self) -> tuple[FeatureInfo, ...]:
        """Every feature, in column order (those of unseen groups left out)."""
        signals = tuple(
            FeatureInfo(
                f"signal_{k}", "numeric", f"declared noisy difficulty signal {k}", "signals"
            )
            for k in range(1, self.n_signals + 1)
        )
        mean = (
            (FeatureInfo("signal_mean", "numeric", "mean of the difficulty signals", "signals"),)
            if self.n_signals
            else ()
        )
        text = (
            (FeatureInfo(TEXT, "text", "the question text (a CatBoost text feature)", "text"),)
            if self.text
            else ()
        )
        declared = tuple(
            FeatureInfo(
                name, "numeric", "declared numeric feature ([datasets.features])", "declared"
            )
            for name in self.numeric
        ) + tuple(
            FeatureInfo(
                name,
                "categorical",
                "declared categorical feature ([datasets.features])",
                "declared",
            )
            for name in self.categorical
        )
        probe = _PROBE_FEATURES if self.probe else ()
        every = _BASE_FEATURES + text + signals + mean + probe + declared
        return tuple(info for info in every if info.group in self.groups)

    def names(self) -> list[str]:
        return [info.name for info in self.infos()]


def feature_infos(n_signals: int) -> tuple[FeatureInfo, ...]:
    """Every built-in feature, in column order, for ``n_signals`` declared difficulty signals."""
    return FeatureSpec(n_signals).infos()


def feature_names(n_signals: int) -> list[str]:
    return [info.name for info in feature_infos(n_signals)]


def signal_count(instances: ir.Table) -> ir.Scalar:
    """The largest number of difficulty signals any instance has (0 when there are none)."""
    return instances.difficulty_signals.length().max().fill_null(0)


def has_text(instances: ir.Table) -> ir.Scalar:
    """Whether any instance has its question text."""
    return instances.text.notnull().any().fill_null(False)


def _per(numerator: ir.Value, denominator: ir.Value) -> ir.FloatingValue:
    return numerator.cast("float64") / denominator.cast("float64").nullif(0.0)


def instance_features(
    instances: ir.Table,
    *,
    n_signals: int,
    spec: FeatureSpec | None = None,
    probes: ir.Table | None = None,
) -> ir.Table:
    """One row per instance: ``instance_id`` and the features of ``spec`` (by default the
    built-in ones for ``n_signals`` signals: ``feature_names(n_signals)``).

    ``instances``: rows of the ``instances`` table (one run). Ratios with a zero or null
    denominator are null; ``signal_k`` is null where an instance has fewer than k signals; a
    declared feature is the entry of ``declared_numeric`` / ``declared_categorical`` at its
    position in the study's order; the probe's features come from ``probes`` (that table's rows
    of the run), joined by instance."""
    spec = spec or FeatureSpec(n_signals)
    t = instances
    if spec.probe:
        if probes is None:
            raise ValueError("the probe's features need the probes table")
        probe = probes.select("instance_id", *PROBE_FEATURES)
        t = t.left_join(probe, "instance_id").select(t, *(probe[name] for name in PROBE_FEATURES))
    numbers = {
        "level": t.level.cast("float64"),
        "prompt_tokens": t.prompt_tokens.cast("float64"),
        "n_sentences": t.n_sentences.cast("float64"),
        "tokens_per_sentence": _per(t.prompt_tokens, t.n_sentences),
        "n_digits": t.n_digits.cast("float64"),
        "digits_per_token": _per(t.n_digits, t.prompt_tokens),
        "n_math_symbols": t.n_math_symbols.cast("float64"),
        "math_symbols_per_token": _per(t.n_math_symbols, t.prompt_tokens),
        "n_latex": t.n_latex.cast("float64"),
        "latex_per_token": _per(t.n_latex, t.prompt_tokens),
        "n_question_words": t.n_question_words.cast("float64"),
        "question_words_per_sentence": _per(t.n_question_words, t.n_sentences),
    }
    for k in range(spec.n_signals):
        numbers[f"signal_{k + 1}"] = t.difficulty_signals[k].cast("float64")
    if spec.n_signals:
        numbers["signal_mean"] = t.difficulty_signals.means().cast("float64")
    if spec.probe:
        for name in PROBE_FEATURES:
            numbers[name] = t[name].cast("float64")
    for k, name in enumerate(spec.numeric):
        numbers[name] = t.declared_numeric[k].cast("float64")
    columns = {
        "dataset": t.dataset.cast("string"),
        "subject": t.subject.cast("string"),
        TEXT: t.text.cast("string"),
        **numbers,
    }
    for k, name in enumerate(spec.categorical):
        columns[name] = t.declared_categorical[k].cast("string")
    return t.select("instance_id", **{name: columns[name] for name in spec.names()})


def long_features(wide: pa.Table) -> Iterator[pa.Table]:
    """The ``features`` table's rows from ``instance_features`` executed, one feature at a time
    (``db.append`` lands each before the next is built): one row per instance and feature,
    numbers in ``value``, categories in ``category``."""
    ids = wide.column("instance_id")
    n = wide.num_rows
    for name in wide.column_names:
        if name in ("instance_id", TEXT):  # the text is instances.text already
            continue
        column = wide.column(name)
        categorical = pa.types.is_string(column.type)
        yield pa.table(
            {
                "instance_id": ids,
                "feature": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(n, dtype=np.int32)), pa.array([name], pa.string())
                ).cast(pa.string()),
                "value": pa.nulls(n, pa.float64()) if categorical else column.cast(pa.float64()),
                "category": column.cast(pa.string()) if categorical else pa.nulls(n, pa.string()),
            }
        )


def catalog_table(spec: FeatureSpec | int) -> pa.Table:
    """The ``feature_catalog`` rows: every feature's name, kind and meaning."""
    infos = (spec if isinstance(spec, FeatureSpec) else FeatureSpec(spec)).infos()
    return pa.table(
        {
            "feature": [i.name for i in infos],
            "position": pa.array(range(len(infos)), pa.int32()),
            "kind": [i.kind for i in infos],
            "feature_group": [i.group for i in infos],
            "description": [i.description for i in infos],
        }
    )


def to_frame(wide: pa.Table, names: list[str]):
    """A pandas frame of the named features as CatBoost takes them: categories as strings
    (null -> MISSING_CATEGORY), the text as strings (null -> empty), numbers as float64
    (null -> NaN). Strings are the non-numeric columns (``categorical_columns``)."""
    columns = {}
    for name in names:
        column = wide.column(name)
        if name == TEXT:
            columns[name] = pc.fill_null(column.cast(pa.string()), "").to_numpy(
                zero_copy_only=False
            )
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns[name] = pc.fill_null(column.cast(pa.string()), MISSING_CATEGORY).to_numpy(
                zero_copy_only=False
            )
        else:
            columns[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return pd.DataFrame(columns)


def categorical_columns(frame) -> list[str]:
    """The categorical columns of a ``to_frame`` frame: its strings, but for the text."""
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) and c != TEXT]


def text_columns(frame) -> list[str]:
    return [c for c in frame.columns if c == TEXT]


def numeric_column(wide: pa.Table, name: str) -> np.ndarray:
    """One numeric feature as float64 with NaN for null."""
    return wide.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)


__all__ = [
    "CATEGORICAL",
    "GROUPS",
    "TEXT",
    "FeatureSpec",
    "categorical_columns",
    "has_text",
    "text_columns",
    "FeatureInfo",
    "catalog_table",
    "feature_infos",
    "feature_names",
    "instance_features",
    "long_features",
    "signal_count",
    "to_frame",
]
