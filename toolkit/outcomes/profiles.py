"""Outcomes: the samples reduced with Ibis to one answer profile per (instance, model), the score
levels best-of-b depends on, and the distinct profiles (``profile_keys``) that exact estimation
computes once each."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


# --------------------------------------------------------------------------------------------
# Ibis: samples -> one profile per (instance, model)
# --------------------------------------------------------------------------------------------
def answer_profiles(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model): n samples, n_correct, the mean output tokens, logged prompt
    tokens and logged dollar cost of a sample (null where none is known), and the group sizes
    of equal correct answers and of equal wrong answers, each sorted ascending (a sorted array,
    not an ordered aggregate: Spark has no ordered ``collect``).

    A sample with a null answer counts as its own group (nothing to agree with). With a logged
    check (``samples.verified``): ``n_checked`` samples carry a verdict, ``n_passed`` pass it,
    ``n_passed_correct`` of them right (``toolkit.rules.until_checked``). The logged
    ``prompt_tokens``, ``cost`` and ``verified`` columns are optional."""
    grouped = _answer_groups(samples)
    return grouped.group_by(["instance_id", "model"]).agg(
        n=grouped.size.sum(),
        # a sum over no rows is null: an instance without a correct sample has n_correct = 0
        n_correct=grouped.size.sum(where=grouped.correct).fill_null(0),
        mean_tokens=grouped.tokens.sum() / grouped.counted.sum().nullif(0),
        mean_prompt_tokens=grouped.prompt_tokens.sum() / grouped.prompts_counted.sum().nullif(0),
        mean_cost=grouped.cost.sum() / grouped.costs_counted.sum().nullif(0),
        correct_groups=grouped.size.collect(where=grouped.correct).sort(),
        wrong_groups=grouped.size.collect(where=~grouped.correct).sort(),
        n_checked=grouped.checked.sum(),
        n_passed=grouped.passed.sum().fill_null(0),
        n_passed_correct=grouped.passed.sum(where=grouped.correct).fill_null(0),
    )


def _answer_groups(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model, group, correct): the samples that gave one answer (``group``,
    its code; a sample with a null answer is a group of its own, ``-1 - sample_idx``), their
    count, token, prompt, cost and check sums (the optional logged columns null when absent)."""
    optional = {
        name: ibis.null(kind)
        for name, kind in (("prompt_tokens", "int64"), ("cost", "float64"), ("verified", "boolean"))
        if name not in samples.columns
    }
    return (
        samples.mutate(
            group=ibis.coalesce(
                samples.answer.cast("int64"), -1 - samples.sample_idx.cast("int64")
            ),
            **optional,
        )
        .group_by(["instance_id", "model", "group", "correct"])
        .agg(
            size=ibis._.count(),
            tokens=ibis._.tokens.sum(),
            counted=ibis._.tokens.count(),
            prompt_tokens=ibis._.prompt_tokens.sum(),
            prompts_counted=ibis._.prompt_tokens.count(),
            cost=ibis._.cost.sum(),
            costs_counted=ibis._.cost.count(),
            checked=ibis._.verified.count(),
            passed=ibis._.verified.cast("int64").sum(),
        )
    )


def answer_counts(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model, answer, correct) of the samples with an answer (the groups of
    ``answer_profiles``): ``m`` samples gave it (what an ``agreement`` cascade compares across
    models)."""
    grouped = _answer_groups(samples)
    return grouped.filter(grouped.group >= 0).select(
        "instance_id", "model", answer=grouped.group, correct=grouped.correct, m=grouped.size
    )


def score_levels(samples: ir.Table) -> ir.Table:
    """Per (instance_id, model, score): ``m`` samples at that score, ``c`` of them correct
    (what best-of-b depends on)."""
    return samples.group_by(["instance_id", "model", "score"]).agg(
        m=ibis._.count(), c=ibis._.correct.cast("int64").sum()
    )


def _list_matrix(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A list<int> column as its lengths (N,) and an (N, width) matrix of its values, each row
    padded with zeros (a null list is empty). Vectorized: no Python object per row."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    matrix = np.zeros((len(lengths), width), dtype=np.int64)
    if width:
        values = pc.list_flatten(array).to_numpy(zero_copy_only=False).astype(np.int64)
        parents = pc.list_parent_indices(array).to_numpy().astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        matrix[parents, np.arange(len(values)) - starts[parents]] = values
    return lengths, matrix


def profile_keys(profiles: pa.Table) -> tuple[np.ndarray, list, list, np.ndarray]:
    """Distinct (n, correct groups, wrong groups) and the index of each row's profile.

    Each row becomes one fixed-width binary key (n, the two list lengths, the zero-padded
    groups) that Arrow's hash kernel dictionary-encodes: distinct profiles in order of first
    appearance, and each row's index into them."""
    n = profiles.column("n").to_numpy().astype(np.int64)
    correct_len, correct = _list_matrix(profiles.column("correct_groups"))
    wrong_len, wrong = _list_matrix(profiles.column("wrong_groups"))
    keys = np.ascontiguousarray(
        np.column_stack([n, correct_len, wrong_len, correct, wrong]), dtype=np.int64
    )
    width = keys.shape[1] * keys.itemsize
    binary = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(keys), [None, pa.py_buffer(keys)]
    )
    encoded = pc.dictionary_encode(binary)
    inverse = encoded.indices.to_numpy().astype(np.int64)
    distinct = np.frombuffer(encoded.dictionary.buffers()[1], dtype=np.int64).reshape(
        -1, keys.shape[1]
    )[encoded.dictionary.offset : encoded.dictionary.offset + len(encoded.dictionary)]
    c_width = correct.shape[1]
    return (
        distinct[:, 0].copy(),
        [row[3 : 3 + row[1]].tolist() for row in distinct],
        [row[3 + c_width : 3 + c_width + row[2]].tolist() for row in distinct],
        inverse,
    )
