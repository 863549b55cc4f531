"""Published curves to cross-check a run against (``[datasets.reference]``).

A dataset may declare a JSON file of curves measured elsewhere on the same questions with the
same model, such as the coverage (pass@b) and majority-vote curves shipped with MATH-500's
Llama-3.2-1B samples. ``read_references`` reads them (before the run writes anything, so a bad
file is refused whole) into the rows of ``reference_curves`` (``sql/tables``); the report sets
the run's own accuracy at each b beside them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from toolkit.errors import StudyError

if TYPE_CHECKING:
    from toolkit.config import ReferenceSpec, Study


_MOST_SAMPLES = 2**31 - 1
"""The largest sample count ``reference_curves.b`` (an INTEGER) holds."""


def _lookup(document: object, key: str, where: str) -> list:
    """The list at the dotted ``key`` of a JSON document."""
    value = document
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise StudyError(f"{where}: the file has no key {key!r} (at {part!r})")
        value = value[part]
    if not isinstance(value, list) or not value:
        raise StudyError(f"{where}: {key!r} is not a non-empty list")
    return value


def _numbers(values: list, key: str, where: str, *, counts: bool) -> list:
    out = []
    for index, value in enumerate(values):
        number_like = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_like or not math.isfinite(value):
            raise StudyError(f"{where}: {key}[{index}] is {value!r}, not a number")
        if counts and (value != int(value) or not 1 <= value <= _MOST_SAMPLES):
            raise StudyError(
                f"{where}: {key}[{index}] is {value!r}, not a sample count in 1..{_MOST_SAMPLES:,}"
            )
        if not counts and not 0.0 <= value <= 1.0:
            raise StudyError(f"{where}: {key}[{index}] is {value!r}, not an accuracy in [0, 1]")
        out.append(int(value) if counts else float(value))
    return out


def read_reference(spec: ReferenceSpec, dataset: str, model: str, field: str) -> pa.Table:
    """One dataset's declared curves of ``model`` as rows of ``reference_curves`` (without
    run_id). ``field`` names the study's section in errors (``datasets[0].reference``)."""
    path = Path(spec.path)
    where = f"{field} ({path})"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise StudyError(f"{where}: cannot read it: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StudyError(f"{where}: not a JSON file: {error}") from None
    b = _numbers(_lookup(document, spec.b, where), spec.b, where, counts=True)
    if len(set(b)) != len(b):
        raise StudyError(f"{where}: {spec.b!r} repeats a sample count")
    rows: dict[str, list] = {
        "dataset": [],
        "model": [],
        "curve": [],
        "b": [],
        "value": [],
        "source": [],
    }
    curves = {"coverage": spec.coverage, "majority": spec.majority}
    for curve, key in curves.items():
        if key is None:
            continue
        values = _numbers(_lookup(document, key, where), key, where, counts=False)
        if len(values) != len(b):
            raise StudyError(
                f"{where}: {key!r} has {len(values)} values and {spec.b!r} {len(b)} sample counts"
            )
        rows["dataset"] += [dataset] * len(b)
        rows["model"] += [model] * len(b)
        rows["curve"] += [curve] * len(b)
        rows["b"] += b
        rows["value"] += values
        rows["source"] += [spec.source or path.name] * len(b)
    return pa.table(rows)  # typed as reference_curves' own columns (sql/tables) when appended


def read_references(study: Study) -> pa.Table | None:
    """Every dataset's declared curves (None when no dataset declares any)."""
    parts = [
        read_reference(
            spec.reference,
            spec.name,
            study.reference_model(spec),
            f"datasets ({spec.name!r}).reference",
        )
        for spec in study.datasets
        if spec.reference is not None
    ]
    return pa.concat_tables(parts) if parts else None


__all__ = ["read_reference", "read_references"]
