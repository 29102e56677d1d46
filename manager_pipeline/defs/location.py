"""Everything the code location holds, built from settings (tests build their own)."""

from __future__ import annotations

from dagster import Definitions

from manager_pipeline.config.file import load_config
from manager_pipeline.db.migrate import upgraded_engine
from manager_pipeline.defs.assets import fleet_assets, fleet_checks
from manager_pipeline.defs.drift import drift_job, drift_schedules
from manager_pipeline.defs.executor import executor_for
from manager_pipeline.defs.feedback import feedback_delivery_sensor
from manager_pipeline.defs.fleet import module_change_sensor, plan_fleet
from manager_pipeline.defs.handoff import io_manager_for
from manager_pipeline.defs.intake import dispatch_sensor, local_source_sensor, partition_sync_sensor, polling_sensor
from manager_pipeline.defs.jobs import apply_job, deploy_job, destroy_job
from manager_pipeline.defs.plans import approval_sensor
from manager_pipeline.defs.policy import check_policies_at_start
from manager_pipeline.defs.resources import build_resources
from manager_pipeline.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    # Sensors and ops find the manager's database at the newest revision (one query when it is there).
    upgraded_engine(settings.database_url)
    config = load_config(settings.config_path)
    check_policies_at_start(config, settings)
    resources = build_resources(settings)
    return Definitions(
        jobs=[
            deploy_job(config.environments),
            apply_job(config.environments),
            destroy_job(config.environments),
            plan_fleet,
            drift_job(config.environments),
        ],
        assets=fleet_assets(config.environments),
        asset_checks=[fleet_checks],
        schedules=drift_schedules(config),
        sensors=[
            partition_sync_sensor(),
            local_source_sensor(),
            feedback_delivery_sensor(),
            dispatch_sensor(),
            approval_sensor(),
            polling_sensor(enabled=settings.polling),
            module_change_sensor(),
        ],
        resources={
            **resources,
            # How ops hand each other their values: in memory (the default), or for any machine (defs/handoff.py).
            "io_manager": io_manager_for(settings, resources["plans"], resources["sources"]),
        },
        # Jobs without an executor of their own: in this process, or on Celery workers (MANAGER_EXECUTOR).
        executor=executor_for(settings),
    )
