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
