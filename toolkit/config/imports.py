"""What an importing study asks of its datasets beyond their own tables, checked before any file
is read (``check_imports``, the first step of ``toolkit.ingest``, so of ``stl validate`` and
``stl run`` alike): the datasets all imported, their models declared, and the answers, tokens
and prompt lengths the aggregation and the cost unit need."""

from __future__ import annotations

from toolkit.config.datasets import ImportedSpec, OutcomesSpec, SimulatedSpec
from toolkit.config.study import Study
from toolkit.errors import StudyError


def check_imports(study: Study) -> list[ImportedSpec]:
    """Cross-checks between the datasets and the models, actions and cost unit; the datasets,
    every one imported."""
    sources = {spec.source for spec in study.datasets}
    if "simulate" in sources and len(sources) > 1:
        raise StudyError(
            "datasets: a study either simulates its datasets or imports them; this one mixes "
            f"both ({', '.join(sorted(sources))})"
        )
    if sources == {"simulate"}:
        raise StudyError("datasets: nothing to import, every dataset is simulated")
    declared = [model.name for model in study.models]
    largest_b = max(study.actions.samples)
    specs = [spec for spec in study.datasets if not isinstance(spec, SimulatedSpec)]
    for index, spec in enumerate(specs):  # (every dataset: a simulated one is refused above)
        where = f"datasets[{index}]"
        _check_models_declared(spec, where, declared)
        if isinstance(spec, OutcomesSpec):  # estimated already: no samples, no tokens needed
            continue
        if study.actions.aggregation == "majority" and largest_b > 1 and not _has_answers(spec):
            raise StudyError(
                f"{where}: a majority vote over b = {largest_b} samples needs their answers, "
                f"and this {spec.source} source has none (declare columns.answer, or use "
                'actions.aggregation = "pass")'
            )
        _check_cost_columns(study, spec, where)
    return specs


def _has_answers(spec: ImportedSpec) -> bool:
    """Whether the dataset's samples have answers to vote on (a wide log's do not count)."""
    return spec.source == "samples" and spec.columns.answer is not None


def _check_models_declared(spec: ImportedSpec, where: str, declared: list[str]) -> None:
    """The file's model, or a wide log's models, are the declared ones."""
    if spec.model is not None and spec.model not in declared:
        raise StudyError(
            f"{where}.model: {spec.model!r} is not declared in [[models]] "
            f"(declared: {', '.join(declared)})"
        )
    if spec.source == "wide":
        for model in spec.models:
            if model not in declared:
                raise StudyError(
                    f"{where}.models.{model}: not declared in [[models]] "
                    f"(declared: {', '.join(declared)})"
                )
        for model in declared:
            if model not in spec.models:
                raise StudyError(
                    f"{where}.models: no columns for model {model!r}, which [[models]] declares"
                )


def _check_cost_columns(study: Study, spec: ImportedSpec, where: str) -> None:
    """What a cost in tokens or dollars needs of a dataset: output tokens (or logged dollar
    costs) and the prompt's tokens (or the question text to count them from)."""
    cost = study.actions.cost
    if cost == "samples":
        return
    if cost == "usd" and spec.logs_cost():
        return
    if not spec.logs_tokens():
        hint = {
            "samples": "declare columns.tokens or columns.response",
            "counts": "counts carry no tokens",
            "wide": "declare response or tokens for every model",
        }[spec.source]
        raise StudyError(f'{where}: actions.cost = "{cost}" needs output tokens ({hint})')
    if (
        spec.text_column is None
        and spec.columns.prompt_tokens is None
        and spec.prompt_overhead_tokens is None
    ):
        raise StudyError(
            f'{where}: actions.cost = "{cost}" needs the prompt\'s tokens: declare '
            "columns.prompt_tokens (logged), or the question text (columns.text or "
            "metadata.columns.text) to count them from, or prompt_overhead_tokens"
        )
