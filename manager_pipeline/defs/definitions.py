"""The code location that workspace.yaml loads for the Dagster UI and daemon."""

from manager_pipeline.defs.location import build_definitions
from manager_pipeline.settings import Settings

defs = build_definitions(Settings.from_env())
