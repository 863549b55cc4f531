"""Building the rows to append: a dataset's ``instances`` (ids numbered, metadata, question
text, text features, declared features) and ``samples`` from its checked table, per source."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from toolkit.config import DatasetSpec, ImportedSpec, Study, WideSpec
from toolkit.errors import StudyError
from toolkit.resources import sql_text


@dataclass(frozen=True)
class ImportedDataset:
    """One dataset's checked rows, ready to append (Arrow, without ``run_id``)."""

    name: str
    instances: pa.Table
    samples: pa.Table
    outcomes: pa.Table | None = None
    """``source = "outcomes"``: (instance_id, model, b, acc, cost, known_cost) as logged."""


@dataclass(frozen=True)
class DeclaredFeatures:
    """The study's declared feature columns (``[datasets.features]``), in one order across
    datasets: each instance stores their values as two lists in this order
    (``instances.declared_numeric``, ``instances.declared_categorical``)."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    @classmethod
    def of(cls, study: Study) -> DeclaredFeatures:
        numeric: dict[str, None] = {}
        categorical: dict[str, None] = {}
        for spec in study.datasets:
            for name, feature in (spec.features or {}).items():
                (numeric if feature.kind == "numeric" else categorical)[name] = None
        clash = set(numeric) & set(categorical)
        if clash:
            raise StudyError(
                f"datasets: feature {sorted(clash)[0]!r} is declared numeric in one dataset "
                "and categorical in another"
            )
        return cls(tuple(numeric), tuple(categorical))


def _feature_role(spec: ImportedSpec, name: str) -> str:
    """The checked table's column of a declared feature (by position: a feature's name may hold
    characters an SQL identifier cannot)."""
    return f"feature_{list(spec.features or {}).index(name)}"


def _instances(
    con: duckdb.DuckDBPyConnection, spec: ImportedSpec, first_id: int, declared: DeclaredFeatures
) -> pa.Table:
    """One row per distinct id, numbered in order of first appearance, with its metadata, its
    question text (from the id's first row, or the metadata), the text features
    (``sql/features/text_features.sql``) and its declared features (``DeclaredFeatures``)."""
    meta = spec.metadata.columns if spec.metadata is not None else None
    level = "m.level" if meta is not None and meta.level else "null"
    subject = "m.subject" if meta is not None and meta.subject else "null"
    log_columns = ["text"] if spec.columns.text is not None else []
    log_columns += [
        _feature_role(spec, name)
        for name, feature in (spec.features or {}).items()
        if feature.file == "log"
    ]
    text, joins = "null", ""
    if log_columns:
        firsts = ", ".join(f"arg_min({c}, _row) as {c}" for c in log_columns)
        joins += f" join (select id, {firsts} from checked group by id) q using (id)"
        text = "q.text" if spec.columns.text is not None else text
    if meta is not None:
        text = "m.text" if meta.text else text
        joins += " left join metadata m using (id)"
    con.execute(
        f"""
        create or replace temp table instance_text as
        with firsts as (
            select id, min(_row) as first_row from checked group by id
        ),
        numbered as (
            select id, $first_id + row_number() over (order by first_row) - 1 as instance_id
            from firsts
        )
        select n.instance_id, n.id as source_id, {level}::smallint as level,
            {subject}::varchar as subject, {text}::varchar as text,
            {_declared_lists(spec, declared)}
        from numbered n{joins}
        """,
        {"first_id": first_id},
    )
    return _with_text_features(con, spec)


def _with_text_features(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, *, view_made: bool = False
) -> pa.Table:
    """The ``instances`` rows of the temporary table ``instance_text`` (instance_id,
    source_id, level, subject, text and the declared lists): its text features
    (``sql/features/text_features.sql``) and prompt tokens added. ``view_made``: the
    connection already has the ``text_features`` view (it reads ``instance_text`` by name
    whenever it is queried)."""
    if not view_made:
        con.execute(
            "create or replace temp view text_features as\n"
            + sql_text("features/text_features.sql")
        )
    overhead = spec.prompt_overhead_tokens
    prompt = "f.prompt_tokens" if overhead is None else "coalesce(f.prompt_tokens, 0) + $overhead"
    return con.sql(
        f"""
        select i.instance_id::bigint as instance_id, $dataset as dataset, i.source_id,
            i.level, i.subject, i.text, f.* exclude (instance_id, prompt_tokens),
            ({prompt})::integer as prompt_tokens, i.declared_numeric, i.declared_categorical
        from instance_text i join text_features f using (instance_id)
        order by i.instance_id
        """,
        params={"dataset": spec.name, **({} if overhead is None else {"overhead": overhead})},
    ).to_arrow_table()


def _declared_lists(spec: ImportedSpec, declared: DeclaredFeatures) -> str:
    """SQL for the two lists of declared feature values, in the study's order (null for a
    feature another dataset declares)."""

    def value(name: str, kind: str) -> str:
        feature = (spec.features or {}).get(name)
        if feature is None:
            return f"null::{kind}"
        table = "q" if feature.file == "log" else "m"
        return f"{table}.{_feature_role(spec, name)}::{kind}"

    numeric = ", ".join(value(n, "double") for n in declared.numeric)
    categorical = ", ".join(value(n, "varchar") for n in declared.categorical)
    return (
        f"list_value({numeric})::double[] as declared_numeric, "
        f"list_value({categorical})::varchar[] as declared_categorical"
    )


def _samples(con: duckdb.DuckDBPyConnection, spec: ImportedSpec) -> pa.Table:
    """The sample rows of the checked file (see the module docstring for each source)."""
    if spec.source == "counts":
        return _count_samples(con)
    if spec.source == "wide":
        return _wide_samples(con, spec)
    columns = spec.columns
    sample = (
        "c.sample"
        if columns.sample is not None
        else "row_number() over (partition by c.id, c.model order by c._row, c._item) - 1"
    )
    answer = _answer_code("c.answer", "c.id") if columns.answer is not None else "null"
    correct = (
        "c.correct"
        if columns.correct is not None
        else "coalesce(trim(c.answer) = trim(c.reference), false)"
    )
    tokens = _tokens_expression(columns.tokens, columns.response, "c.tokens", "c.response")
    prompt = "c.prompt_tokens" if columns.prompt_tokens is not None else "null"
    cost = "c.cost" if columns.cost is not None else "null"
    score = "c.score" if columns.score is not None else "null"
    check = "c.verified" if columns.check is not None else "null"
    query = f"""
        select i.instance_id, c.model, ({sample})::integer as sample_idx,
            ({answer})::integer as answer, {correct} as correct, ({tokens})::bigint as tokens,
            ({prompt})::bigint as prompt_tokens, ({cost})::double as cost,
            ({score})::double as score, ({check})::boolean as verified
        from checked c {_JOIN_IDS} {_SAMPLE_ORDER}"""
    return con.sql(query).to_arrow_table()


def _answer_code(answer: str, instance: str) -> str:
    """SQL for an answer's code within its instance: the dense rank of the distinct answers,
    from 0 (equal text, equal code, whichever model gave it); null for a missing answer."""
    return (
        f"case when {answer} is not null then dense_rank() over "
        f"(partition by {instance}, {answer} is null order by {answer}) - 1 end"
    )


_JOIN_IDS = "join instance_text i on i.source_id = c.id"
_SAMPLE_ORDER = "order by instance_id, model, sample_idx"


def _tokens_expression(tokens: str | None, response: str | None, column: str, text: str) -> str:
    """Output tokens: the logged count, else counted from the response text, else null."""
    if tokens is not None:
        return column
    if response is not None:
        return f"count_tokens({text})"
    return "null"


def _count_samples(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """``n`` sample rows per checked row, the first ``n_correct`` correct, no answers."""
    query = f"""
        select instance_id, model, sample_idx::integer as sample_idx,
            null::integer as answer, sample_idx < n_correct as correct,
            null::bigint as tokens, null::bigint as prompt_tokens, null::double as cost
        from (
            select i.instance_id, c.model, c.n_correct, unnest(range(c.n)) as sample_idx
            from checked c {_JOIN_IDS}
        ) {_SAMPLE_ORDER}"""
    return con.sql(query).to_arrow_table()


def _wide_samples(con: duckdb.DuckDBPyConnection, spec: WideSpec) -> pa.Table:
    """One sample per checked row and declared model (its columns ``*_k``)."""
    parts, params = [], {}
    prompt = "c.prompt_tokens" if spec.columns.prompt_tokens is not None else "null"
    for k, (model, model_columns) in enumerate(spec.models.items()):
        params[f"model_{k}"] = model
        tokens = _tokens_expression(
            model_columns.tokens, model_columns.response, f"c.tokens_{k}", f"c.response_{k}"
        )
        cost = f"c.cost_{k}" if model_columns.cost is not None else "null"
        check = f"c.check_{k}" if model_columns.check is not None else "null"
        answer = f"trim(c.answer_{k})" if model_columns.answer is not None else "null"
        parts.append(
            f"select i.instance_id, $model_{k} as model, 0 as sample_idx, "
            f"{answer}::varchar as answer_text, c.correct_{k} as correct, {tokens} as tokens, "
            f"{prompt} as prompt_tokens, {cost} as cost, {check} as verified "
            f"from checked c {_JOIN_IDS}"
        )
    # answers coded per instance across the models (equal text, equal code), as in a samples log
    query = f"""
        select instance_id, model::varchar as model, sample_idx::integer as sample_idx,
            ({_answer_code("answer_text", "instance_id")})::integer as answer,
            correct, tokens::bigint as tokens,
            prompt_tokens::bigint as prompt_tokens, cost::double as cost,
            verified::boolean as verified
        from ({" union all ".join(parts)}) {_SAMPLE_ORDER}"""
    return con.sql(query, params=params).to_arrow_table()


def _outcome_rows(con: duckdb.DuckDBPyConnection, unit: str) -> pa.Table:
    """(instance_id, model, b, acc, cost, known_cost) of the checked outcome rows: a missing
    cost is b (samples); a missing known cost is all of the cost in samples, else 0."""
    columns = {row[0] for row in con.execute("describe checked").fetchall()}
    cost = "c.cost" if "cost" in columns else "c.b::double"
    known = "c.known_cost" if "known_cost" in columns else cost if unit == "samples" else "0.0"
    return con.sql(
        f"""
        select i.instance_id, c.model::varchar as model, c.b::integer as b,
            c.accuracy::double as acc, ({cost})::double as cost,
            ({known})::double as known_cost
        from checked c {_JOIN_IDS} order by i.instance_id, c.model, c.b
        """
    ).to_arrow_table()


def _empty_samples() -> pa.Table:
    return pa.table(
        {
            "instance_id": pa.array([], pa.int64()),
            "model": pa.array([], pa.string()),
            "sample_idx": pa.array([], pa.int32()),
            "answer": pa.array([], pa.int32()),
            "correct": pa.array([], pa.bool_()),
        }
    )
