"""The declarative study file: TOML validated into frozen, typed config objects.

Every error names the file and the field (``datasets[0].instances``), so a user can fix a study
file without reading code. Nothing is connected or written before a study validates.

``toolkit.config.base`` holds what every section is built of; ``sections`` the sections besides
the datasets; ``columns`` and ``datasets`` a ``[[datasets]]`` entry (its files' columns, and one
typed spec per source); ``study`` the whole file and reading it; ``imports`` what an importing
study asks of its datasets beyond their own tables.
"""

from toolkit.config.columns import (
    FORMAT_BY_SUFFIX,
    ColumnMap,
    FeatureColumn,
    FileFormat,
    MetadataColumns,
    MetadataSpec,
    ModelColumns,
    ReferenceSpec,
)
from toolkit.config.datasets import (
    CountsSpec,
    DatasetSpec,
    DatasetTable,
    ImportedSpec,
    OutcomesSpec,
    SamplesSpec,
    SimulatedSpec,
    WideSpec,
)
from toolkit.config.sections import (
    POLICY_NAMES,
    ActionSpec,
    BudgetSpec,
    CascadeSpec,
    EngineSpec,
    EstimationSpec,
    LearnSpec,
    ModelSpec,
    PolicySpec,
    ProbeSpec,
    RuleSpec,
    SimulationSpec,
    SplitSpec,
    StudyInfo,
    resolve_model,
)
from toolkit.config.study import (
    Study,
    default_study_path,
    load_study,
    parse_study,
    with_engine,
)

__all__ = [
    "FORMAT_BY_SUFFIX",
    "POLICY_NAMES",
    "ActionSpec",
    "BudgetSpec",
    "CascadeSpec",
    "ColumnMap",
    "CountsSpec",
    "DatasetSpec",
    "DatasetTable",
    "EngineSpec",
    "EstimationSpec",
    "FeatureColumn",
    "FileFormat",
    "ImportedSpec",
    "LearnSpec",
    "MetadataColumns",
    "MetadataSpec",
    "ModelColumns",
    "ModelSpec",
    "OutcomesSpec",
    "PolicySpec",
    "ProbeSpec",
    "ReferenceSpec",
    "RuleSpec",
    "SamplesSpec",
    "SimulatedSpec",
    "SimulationSpec",
    "SplitSpec",
    "Study",
    "StudyInfo",
    "WideSpec",
    "default_study_path",
    "load_study",
    "parse_study",
    "resolve_model",
    "with_engine",
]
