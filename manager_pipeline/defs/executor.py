"""Where a run's steps execute: in the run's own process (the default), or on Celery workers
(MANAGER_EXECUTOR=celery), each step of a run in the queue of its environment, so production's steps
go only to the workers that hold production's credentials (``manager-pipeline worker``, defs/celery.py)."""

from __future__ import annotations

from dagster import ExecutorDefinition, in_process_executor

from manager_pipeline.settings import Settings


def executor_for(settings: Settings) -> ExecutorDefinition:
    if settings.executor == "in_process":
        # Terraform does the heavy lifting in its own processes; one process per op would only add
        # seconds of start-up to every run.
        return in_process_executor
    # dagster-celery (and Celery) cost their import only where steps go to workers.
    from manager_pipeline.defs.celery import RESULT_SETTINGS, celery_environment_executor

    return celery_environment_executor.configured(
        {"broker": settings.celery_broker, "backend": settings.celery_backend, "config_source": RESULT_SETTINGS},
        name="celery",
    )
