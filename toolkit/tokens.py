"""Token counts from text, where an evaluation log records none.

A log that stores prompts and responses but no usage needs its tokens counted to put a cost in
tokens or dollars on each sample. ``cl100k_base`` (GPT-4, GPT-3.5) and ``o200k_base`` (GPT-4o)
are the BPE vocabularies of those models, counted exactly by ``bpe-openai`` (a Rust BPE with the
vocabularies compiled in, so it works offline, unlike tiktoken, which downloads them). For
other models a BPE vocabulary of similar size is a close proxy, not their count. ``approx`` is
the regular expression of ``sql/features/approx_tokens.sql`` (a run of letters, a group of up to
three digits, or any other non-space character is one token), kept as a fallback.

Measured against recorded usage (``tests/test_tokens.py`` checks it): the Game-of-24 log of
GPT-4 in ``../shared/data`` records 180,008 completion tokens for its 100 x 100 answers;
``cl100k_base`` counts 180,008 of them (exact), ``approx`` 149,438 (-17%).
"""

from __future__ import annotations

from functools import cache

import duckdb
import numpy as np
import pyarrow as pa

from toolkit.resources import sql_text

TOKENIZERS = ("cl100k_base", "o200k_base", "approx")


@cache
def _encoding(name: str):
    import bpe_openai

    return bpe_openai.get_encoding(name)


def count_tokens(texts: pa.Array | pa.ChunkedArray | list, tokenizer: str) -> pa.Array:
    """The token count of every text (int64; a null text counts as null).

    Special-token markers in the text (``<|endoftext|>``) are counted as ordinary text."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; known: {', '.join(TOKENIZERS)}")
    array = pa.chunked_array([texts]) if isinstance(texts, list) else texts
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array])
    values = array.cast(pa.string()).to_pylist()
    if tokenizer == "approx":
        con = duckdb.connect()
        try:
            con.execute(sql_text("features/approx_tokens.sql"))
            con.register("_texts", pa.table({"value": pa.array(values, pa.string())}))
            return (
                con.sql("select approx_tokens(value)::bigint as n from _texts")
                .to_arrow_table()
                .column("n")
                .combine_chunks()
            )
        finally:
            con.close()
    pieces, owner = [], []
    for index, value in enumerate(values):
        if value is not None:
            cut = _pieces(value)
            pieces += cut
            owner += [index] * len(cut)
    # One piece at a time on this thread, never ``encode_ordinary_batch``: that starts and stops a
    # thread pool on every call, and this runs inside DuckDB's query as its ``count_tokens``
    # function, where Python threads starting and stopping can deadlock duckdb-python (see
    # tests/test_tokens.py). The tokenizer holds the GIL, so the pool was 5.7x slower anyway
    # (20,000 MATH problems: 0.21 s one by one, 1.17 s in a pool of two).
    encoding = _encoding(tokenizer)
    counts = np.zeros(len(values), dtype=np.int64)
    np.add.at(
        counts,
        np.asarray(owner, dtype=np.int64),
        np.array([len(encoding.encode_ordinary(piece)) for piece in pieces], dtype=np.int64),
    )
    over_numpy = pa.array(counts, pa.int64(), mask=np.array([value is None for value in values]))
    # Copied into Arrow's own memory: as DuckDB's ``count_tokens`` the result is last released
    # on one of DuckDB's worker threads, and an array over NumPy memory needs the GIL to be
    # freed, which the querying thread holds while it waits for that worker: a deadlock (an
    # import hung in ``Executor::CancelTasks`` with a worker in ``NumPyBuffer``'s destructor).
    return pa.concat_arrays([over_numpy, pa.array([], pa.int64())])


PIECE_CHARS = 200_000
"""The longest text encoded in one call: ``bpe-openai`` refuses inputs beyond some 500,000
characters ("Input too long to encode safely"), so a longer text is counted in pieces."""


def _pieces(text: str) -> list[str]:
    """``text`` cut into pieces of at most about ``PIECE_CHARS`` characters, each cut just
    before a single space between two non-space characters, where the BPE pre-tokenizer
    splits anyway (the space goes with the next word), so the counts add up exactly. A stretch
    without such a space is cut where it reaches the limit (a count that may differ by a token
    per cut)."""
    if len(text) <= PIECE_CHARS:
        return [text]
    out, start = [], 0
    while len(text) - start > PIECE_CHARS:
        end = start + PIECE_CHARS
        cut = end
        for at in range(end, start + PIECE_CHARS // 2, -1):
            single = not text[at - 1].isspace() and not text[at + 1 : at + 2].isspace()
            if text[at] == " " and single:
                cut = at
                break
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def register_token_counter(con: duckdb.DuckDBPyConnection, tokenizer: str) -> None:
    """Define ``count_tokens(text) -> bigint`` on a DuckDB connection for ``tokenizer``: the
    SQL macro for ``approx``, a vectorised Arrow function over ``count_tokens`` otherwise."""
    if tokenizer == "approx":
        con.execute(sql_text("features/approx_tokens.sql"))
        con.execute("create or replace temp macro count_tokens(value) as approx_tokens(value)")
        return
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; known: {', '.join(TOKENIZERS)}")

    def counter(texts: pa.Array) -> pa.Array:
        return count_tokens(texts, tokenizer)

    # duckdb's stubs accept only its enums for type and null_handling (duckdb.func since 1.5,
    # duckdb.functional before); the documented strings work on every supported version
    con.create_function(  # type: ignore[call-overload]
        "count_tokens",
        counter,
        ["VARCHAR"],
        "BIGINT",
        type="arrow",
        null_handling="special",
    )


def token_total(counts: pa.Array) -> int:
    """The sum of non-null counts."""
    values = counts.to_numpy(zero_copy_only=False)
    return int(np.nansum(values.astype(float)))


__all__ = ["TOKENIZERS", "count_tokens", "register_token_counter", "token_total"]
