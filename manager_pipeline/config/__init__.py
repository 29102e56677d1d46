"""manager.yaml -> ManagerConfig: the registered sources and each environment's policy.

Two layers. The file as written is described by pydantic models (``ManagerFile``,
``SourceFile``, ``PolicyFile``, in ``schema.py``): they hold every rule of manager.yaml and give
its JSON Schema (``manager-pipeline schema --manager``). Every problem they find is reported at
once, each placed like variables.yml's (``problems.py``): ``manager.yaml:LINE:COLUMN: key.path:
what to change``. What the rest of the manager uses are the resolved, frozen values
(``model.py``): ``ManagerConfig``, ``SourceSpec`` and ``EnvironmentPolicy`` (paths resolved,
defaults that depend on other settings filled in). ``file.py`` reads the file; ``request.py``
holds a run's snapshot of it.
"""

from manager_pipeline.config.file import load_config, parse_config
from manager_pipeline.config.model import (
    DEFAULT_DRIFT_SCHEDULE,
    DEFAULT_ENVIRONMENTS,
    DEFAULT_VARIABLES_FILE,
    AwsAccess,
    EnvironmentPolicy,
    ManagerConfig,
    SourceSpec,
    TriggerSpec,
)
from manager_pipeline.config.problems import check_document
from manager_pipeline.config.schema import AUTH_MODES, manager_schema

__all__ = [
    "AUTH_MODES",
    "DEFAULT_DRIFT_SCHEDULE",
    "DEFAULT_ENVIRONMENTS",
    "DEFAULT_VARIABLES_FILE",
    "AwsAccess",
    "EnvironmentPolicy",
    "ManagerConfig",
    "SourceSpec",
    "TriggerSpec",
    "check_document",
    "load_config",
    "manager_schema",
    "parse_config",
]
