"""The building blocks of every study-file section: frozen, strict pydantic models that refuse
unknown keys and non-finite numbers, the common field types, and how a data path resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    # every number finite: inf and nan are refused with the field named, whatever its bounds
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _SparseSection(_Section):
    """A section whose unset optional keys (None) stay out of dumps and the config hash."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict:
        return {key: value for key, value in handler(self).items() if value is not None}


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """A relative data path is relative to the study file's folder (``base_dir`` in the
    validation context, set by ``load_study``) and is stored absolute, so the saved config says
    which file was read. Without that context it stays relative to the working directory."""
    path = Path(value).expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base_dir is not None:
        path = (Path(base_dir) / path).resolve()
    return str(path)


class _StudyRelativePath(_Section):
    """A section naming a data file by ``path``, resolved by ``_resolve_path``."""

    @field_validator("path", check_fields=False)
    @classmethod
    def _absolute_path(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)
