"""The code location that workspace.yaml loads for the Dagster UI and daemon."""

from dagster import JobDefinition

from manager_pipeline.defs.location import build_definitions
from manager_pipeline.settings import Settings

defs = build_definitions(Settings.from_env())


def location_job(name: str) -> JobDefinition:
    """A job of the code location, with its resources and executor: what a Celery worker rebuilds for a run the
    CLI orchestrates (defs/celery.py names it, as ``build_reconstructable_job`` asks)."""
    return defs.resolve_job_def(name)
