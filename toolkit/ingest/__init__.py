"""Importers: a user's own evaluation logs into the tables the simulator fills (``instances``,
``samples``), so that outcomes and every later stage run on real data unchanged.

A dataset is declared in the study file (``toolkit.config.DatasetSpec``) with a ``source``, a
file ``path`` and ``format``, and a ``columns`` table naming the file's column for each role.
Files are read by DuckDB: ``csv`` (a header row, every value read as text and then checked),
``jsonl`` (one JSON object per line), ``parquet``, or ``json_columns`` (one JSON object whose
keys hold parallel arrays, one entry per row: the MATH-500 counts file).

``source = "samples"``: one row per sampled answer.
    ``id`` (the instance), the model (``columns.model``, or ``model`` for the whole file),
    optional ``sample`` (a whole number, unique per instance and model; numbered in file order
    when absent), ``correct`` (a flag) or ``reference`` (correct when the answer, as text with
    surrounding whitespace trimmed, equals it), optional ``answer`` (any value, compared as
    text; coded per instance as the dense rank of the distinct answers, from 0, into
    ``samples.answer``; a missing answer agrees with nothing), optional ``tokens`` (output
    tokens) or ``response`` (the output text; tokens counted from it), optional ``text`` (the
    question), optional ``score`` and ``check`` (a flag: a deployable check's verdict, into
    ``samples.verified``).
``source = "counts"``: one row per instance and model.
    ``id``, the model as above, ``n`` (samples drawn) and ``n_correct`` (of them correct);
    optional ``text``. A count may be an array of counts (e.g. one per session): it is summed.
    Stored as ``n`` sample rows, the first ``n_correct`` correct, with null answers and tokens:
    one outcomes path for every source, and exactly the (n, n_correct) that pass@b needs (the
    MATH-500 file is 500 x 1,280 = 640k rows). Counts carry no answers and no tokens, so they
    support pass@b (or b = 1) and budgets in samples.
``source = "wide"``: one row per instance, one set of columns per model (routing logs).
    ``id``, optional ``text``, and per declared model ``[datasets.models.<model>]`` with
    ``correct`` and optionally ``response`` (tokens counted from it) or ``tokens``, ``cost``,
    ``answer`` (text, trimmed, coded per instance across the models) and ``check`` (a
    deployable check's verdict on the answer). Stored as one
    sample per instance and model, so the actions are the models at b = 1 and, with
    ``actions.cost = "usd"``, an action costs (prompt tokens x input price + response tokens x
    output price) / 1e6 with the prices of its ``[[models]]`` entry (``toolkit.outcomes``).
``[datasets.metadata]``: a file joined by id: ``id``, optional ``text`` (the question),
    ``level`` (a whole number, or text ending in one: "Level 3") and ``subject``.

The question text, from ``columns.text`` or ``metadata.columns.text``, becomes
``instances.text`` and gives the text feature columns (``sql/features/text_features.sql``).
Token counts are approximate BPE counts (``sql/features/approx_tokens.sql``): one per run of
letters, one per group of up to three digits, one per other non-space character.

Values: ids compare as text; whole numbers may be written as integers, integral floats or
digit text; flags as booleans, 0/1 or true/false/t/f/yes/no/y/n text (any case). Instance ids
are dense, numbered in the order ids first appear in a dataset's file, on across datasets.

Every file is read and checked in a scratch in-memory DuckDB, apart from the study database:
a missing column, a value of the wrong type, a missing value, an empty file, a repeated key, a
negative count, ``n_correct > n``, an undeclared model, too few samples for the largest b or an
id without metadata raises ``StudyError`` naming the file, the row and the column, before any
row reaches the study's tables. (DuckDB is named here, outside ``toolkit.db``, because reading
files with row-level checks is the engine's own work, not a query on the study database.)
"""

from toolkit.ingest.datasets import ImportedDataset, ingest
from toolkit.ingest.requests import RequestReader, read_requests
from toolkit.ingest.rows import DeclaredFeatures

__all__ = [
    "DeclaredFeatures",
    "ImportedDataset",
    "RequestReader",
    "ingest",
    "read_requests",
]
