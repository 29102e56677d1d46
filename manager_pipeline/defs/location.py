"""Everything the code location holds, built from settings (tests build their own)."""

from __future__ import annotations

from dagster import Definitions

from manager_pipeline.config import load_config
from manager_pipeline.defs.drift import drift_job, drift_schedules, infrastructure_asset
from manager_pipeline.defs.executor import executor_for
from manager_pipeline.defs.feedback import feedback_delivery_sensor
from manager_pipeline.defs.fleet import module_change_sensor, plan_fleet
from manager_pipeline.defs.intake import dispatch_sensor, local_source_sensor, partition_sync_sensor, polling_sensor
from manager_pipeline.defs.jobs import apply_job, deploy_job, destroy_job
from manager_pipeline.defs.plans import approval_sensor
from manager_pipeline.defs.resources import build_resources
from manager_pipeline.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    config = load_config(settings.config_path)
    return Definitions(
        jobs=[
            deploy_job(config.environments),
            apply_job(config.environments),
            destroy_job(config.environments),
            plan_fleet,
            drift_job(config.environments),
        ],
        assets=[infrastructure_asset(config.environments)],
        schedules=drift_schedules(settings.config_path, config),
        sensors=[
            partition_sync_sensor(settings.config_path),
            local_source_sensor(settings.config_path),
            feedback_delivery_sensor(),
            dispatch_sensor(settings.config_path),
            approval_sensor(settings.config_path),
            polling_sensor(settings.config_path, enabled=settings.polling),
            module_change_sensor(settings.config_path),
        ],
        resources=build_resources(settings),
        # Jobs without an executor of their own: in this process, or on Celery workers (MANAGER_EXECUTOR).
        executor=executor_for(settings),
    )
