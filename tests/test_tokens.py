"""Token counts from text: exact against the usage a real log records, and texts longer than
the BPE library accepts in one call counted in pieces with the same total."""

from __future__ import annotations

import json
import random

import pytest

from toolkit.tokens import PIECE_CHARS, _encoding, _pieces, count_tokens


@pytest.mark.shared_data
def test_cl100k_counts_the_completion_tokens_gpt4_recorded(shared_data):
    """The Game-of-24 log's run recorded 180,008 completion tokens for its 100 x 100 answers
    (``../shared/data/README.md``); cl100k_base is GPT-4's vocabulary."""
    records = json.loads((shared_data / "tot_game24_gpt4_standard.json").read_text())
    answers = [answer for record in records for answer in record["ys"]]
    assert len(answers) == 10_000
    assert sum(count_tokens(answers, "cl100k_base").to_pylist()) == 180_008
    assert sum(count_tokens(answers, "approx").to_pylist()) == 149_438


def test_a_text_longer_than_one_call_is_counted_in_pieces_exactly():
    random.seed(3)
    words = ["alpha", "beta", "  gamma", "12345", "\\frac{1}{2}", "x^2+y", "naïve", "\n\n", "end."]
    text = " ".join(random.choice(words) for _ in range(120_000))
    assert len(text) > 3 * PIECE_CHARS
    pieces = _pieces(text)
    assert "".join(pieces) == text and len(pieces) >= 3
    assert max(map(len, pieces)) <= PIECE_CHARS
    # each piece starts at a single space between words: the pre-tokenizer splits there anyway
    assert all(piece.startswith(" ") and not piece[1].isspace() for piece in pieces[1:])
    encoding = _encoding("cl100k_base")
    # the exact count, in one call on text short enough for the library, equals the piecewise one
    middle = text[:450_000]
    assert count_tokens([middle], "cl100k_base")[0].as_py() == len(encoding.encode_ordinary(middle))
    counted = count_tokens([text, None, "hello world"], "cl100k_base").to_pylist()
    assert counted[1:] == [None, 2]
    assert counted[0] == sum(len(encoding.encode_ordinary(piece)) for piece in pieces)
    # a stretch with no space to cut at is cut at the limit, and still counted
    assert count_tokens(["x" * 1_000_000], "cl100k_base")[0].as_py() > 0


def test_counting_inside_a_duckdb_query_starts_no_thread():
    """``count_tokens`` runs inside DuckDB's queries (``register_token_counter``); a Python
    thread started or stopped there can deadlock duckdb-python. The BPE library's batch call
    starts a thread pool on every call, and did hang a query that way (on the 154th repeat of
    a 20,000-text count, in a reproduction of CI's hour-long stall): the counter must not."""
    import threading

    import duckdb
    import pyarrow as pa

    from toolkit.tokens import register_token_counter

    texts = [f"What is {i} + {i * 7}? Show the steps." for i in range(5_000)]
    started = []
    con = duckdb.connect()
    try:
        register_token_counter(con, "cl100k_base")
        con.register("texts", pa.table({"text": texts}))
        threading.settrace(lambda *args: started.append(threading.current_thread().name))
        try:
            total = con.sql("select sum(count_tokens(text)) from texts").fetchone()[0]
        finally:
            threading.settrace(None)
    finally:
        con.close()
    assert total == sum(count_tokens(texts, "cl100k_base").to_pylist())
    assert started == []


def test_the_counts_live_in_arrow_memory_not_numpy():
    """DuckDB releases ``count_tokens``' result on a worker thread; over NumPy memory that
    release needs the GIL, which the querying thread holds while it waits for the worker (an
    import hung that way in the suite). The counts are copied into Arrow's memory pool."""
    import pyarrow as pa

    texts = [f"What is {i} squared?" for i in range(10_000)] + [None]
    before = pa.total_allocated_bytes()
    counts = count_tokens(texts, "cl100k_base")
    assert pa.total_allocated_bytes() - before >= 8 * len(texts)
    assert counts.null_count == 1 and counts[0].as_py() > 0
