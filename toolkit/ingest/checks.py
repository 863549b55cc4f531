"""The checks across a file's rows, once its values are checked: unique keys, declared models,
counts within bounds, enough samples for every action, logged outcomes for every action, an
id's metadata row; and, across the datasets, the samples per instance the study declares."""

from __future__ import annotations

import duckdb
import numpy as np

from toolkit.config import ImportedSpec, MetadataSpec, Study
from toolkit.errors import StudyError
from toolkit.ingest.files import _File, _Role
from toolkit.ingest.rows import ImportedDataset


def _describe_key(con: duckdb.DuckDBPyConnection, table: str, keys: list[str], row: int) -> str:
    values = con.execute(
        f"select {', '.join(keys)} from {table} where _row = $row", {"row": row}
    ).fetchone()
    assert values is not None  # the row of a repeated key
    return ", ".join(f"{key} = {value!r}" for key, value in zip(keys, values, strict=True))


def _check_unique(
    con: duckdb.DuckDBPyConnection, file: _File, table: str, keys: list[str], roles: list[_Role]
) -> None:
    """No two rows share the key columns."""
    found = con.execute(
        f"select min(_row), list(_row order by _row)[2] from {table} group by {', '.join(keys)} "
        "having count(*) > 1 order by 1 limit 1"
    ).fetchone()
    if found:
        named = {role.name: role.column for role in roles}
        columns = ", ".join(repr(named[key]) for key in keys if key in named)
        raise StudyError(
            f"{file.path}: {file.row}s {found[0]} and {found[1]} repeat the key "
            f"{_describe_key(con, table, keys, found[0])} (columns {columns})"
        )


def _check_models(
    con: duckdb.DuckDBPyConnection, file: _File, study: Study, roles: list[_Role]
) -> None:
    """Every model named in the file is declared in [[models]]."""
    declared = [model.name for model in study.models]
    found = con.execute(
        "select _row, model from checked where not list_contains($declared, model) "
        "order by _row limit 1",
        {"declared": declared},
    ).fetchone()
    if found:
        column = next(role.column for role in roles if role.name == "model")
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}, column {column!r}: model {found[1]!r} is not "
            f"declared in [[models]] (declared: {', '.join(declared)})"
        )


def _check_at_most(
    con: duckdb.DuckDBPyConnection, file: _File, roles: list[_Role], declared: int
) -> None:
    """n_correct <= n on every row, and n no more than the declared samples per instance (a
    count is expanded into its samples: n = 1e9 would be 1e9 rows)."""
    named = {role.name: role.column for role in roles}
    found = con.execute(
        "select _row, n from checked where n > $declared order by _row limit 1",
        {"declared": declared},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}: n = {found[1]} (column {named['n']!r}) is more "
            f"than estimation.samples_per_instance = {declared} samples"
        )
    found = con.execute(
        "select _row, n_correct, n from checked where n_correct > n order by _row limit 1"
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}: n_correct = {found[1]} (column "
            f"{named['n_correct']!r}) exceeds n = {found[2]} (column {named['n']!r})"
        )


def _check_coverage(
    con: duckdb.DuckDBPyConnection, file: _File, study: Study, spec: ImportedSpec
) -> None:
    """Every instance has at least max(b) samples from every declared model."""
    largest_b = max(study.actions.samples)
    per_row = "n" if spec.source == "counts" else "1"
    found = con.execute(
        f"""
        with ids as (select id, min(_row) as first_row from checked group by id),
        models as (select unnest($declared) as model),
        stored as (select id, model, sum({per_row}) as n from checked group by id, model)
        select ids.id, models.model, coalesce(stored.n, 0) as n
        from ids cross join models left join stored using (id, model)
        where coalesce(stored.n, 0) < $largest_b
        order by ids.first_row, models.model limit 1
        """,
        {"declared": [model.name for model in study.models], "largest_b": largest_b},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: id {found[0]!r} has {found[2]} sample(s) from model {found[1]!r}; "
            f"actions.samples needs at least b = {largest_b} per instance and model"
        )


def _check_outcome_rows(
    con: duckdb.DuckDBPyConnection, file: _File, study: Study, roles: list[_Role]
) -> None:
    """Logged outcomes: every b is an action's, and every instance has every declared model
    and b."""
    named = {role.name: role.column for role in roles}
    samples = sorted(study.actions.samples)
    found = con.execute(
        "select _row, b from checked where not list_contains($samples, b) order by _row limit 1",
        {"samples": samples},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}, column {named['b']!r}: b = {found[1]} is not "
            f"one of actions.samples = {samples}"
        )
    found = con.execute(
        """
        with ids as (select id, min(_row) as first_row from checked group by id),
        wanted as (
            select id, first_row, model, b from ids
            cross join (select unnest($models) as model)
            cross join (select unnest($samples) as b)
        )
        select w.id, w.model, w.b from wanted w anti join checked c using (id, model, b)
        order by w.first_row, w.model, w.b limit 1
        """,
        {"models": [model.name for model in study.models], "samples": samples},
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: id {found[0]!r} has no row for model {found[1]!r} at b = {found[2]}; "
            "logged outcomes need every instance, model and b of actions.samples"
        )
    if study.actions.cost != "samples" and "cost" not in named:
        raise StudyError(
            f"{file.where}.columns.cost: logged outcomes in {study.actions.cost} need the "
            "cost of each action"
        )


def _check_joined(
    con: duckdb.DuckDBPyConnection, source: _File, metadata: _File, meta: MetadataSpec
) -> None:
    """Every id of the dataset has a metadata row."""
    found = con.execute(
        "select id, min(_row) from checked anti join metadata using (id) group by id "
        "order by 2 limit 1"
    ).fetchone()
    if found:
        raise StudyError(
            f"{metadata.path}: no row with id {found[0]!r} (column "
            f"{meta.columns.id!r}), which {source.path} has in {source.row} {found[1]}"
        )


def _offset_ids(
    con: duckdb.DuckDBPyConnection, file: _File, offset: int, roles: list[_Role]
) -> None:
    """Shift the metadata's ids by ``offset`` (``metadata.id_offset``): whole numbers only."""
    column = next(role.column for role in roles if role.name == "id")
    found = con.execute(
        "select _row, id from metadata where try_cast(id as bigint) is null order by _row limit 1"
    ).fetchone()
    if found:
        raise StudyError(
            f"{file.path}: {file.row} {found[0]}, column {column!r}: id_offset needs whole-number "
            f"ids, got {found[1]!r} (named by {file.where}.id_offset)"
        )
    con.execute("update metadata set id = (id::bigint + $offset)::varchar", {"offset": offset})


def _check_samples_per_instance(
    study: Study, specs: list[ImportedSpec], datasets: list[ImportedDataset]
) -> None:
    """``estimation.samples_per_instance`` is what the data hold: the most samples of any
    instance and model (a study that declares 48 for a log of 8 would record 48)."""
    declared = study.estimation.samples_per_instance
    most, where, numbered = 0, "", True
    for spec, data in zip(specs, datasets, strict=True):
        if data.samples.num_rows == 0:
            continue
        counts = data.samples.group_by(["instance_id", "model"]).aggregate(
            [("sample_idx", "count")]
        )
        n = counts.column("sample_idx_count").to_numpy()
        at = int(np.argmax(n))  # the first instance and model with the most
        if n[at] > most:
            instance = counts.column("instance_id")[at].as_py()
            ids = data.instances.column("instance_id").to_numpy()
            source_id = data.instances.column("source_id")[int(np.flatnonzero(ids == instance)[0])]
            most = int(n[at])
            model = counts.column("model")[at].as_py()
            where = (
                f"{spec.path} (dataset {spec.name!r}) holds at most {most} samples per instance "
                f"and model (id {source_id.as_py()!r}, model {model!r})"
            )
            numbered = spec.source != "samples" or spec.columns.sample is not None
    if most and most != declared:
        duplicates = (
            ""
            if numbered or most < declared
            else "; with no columns.sample each row is one sample, so a duplicated row is "
            "counted twice (declare columns.sample to have repeated rows refused)"
        )
        raise StudyError(
            f"estimation.samples_per_instance = {declared}, but {where}: declare {most}{duplicates}"
        )
