"""Sensors: keep the source partitions in step with manager.yaml, and watch local sources."""

from __future__ import annotations

from pathlib import Path

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from manager_pipeline.config import load_config
from manager_pipeline.defs.jobs import DEPLOY_JOB
from manager_pipeline.defs.partitions import SOURCE, partition_changes, partition_key
from manager_pipeline.defs.resources import FeedbackResource
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.watch import LocalWatchState, detect_local_changes


def partition_sync_sensor(config_path: Path, interval: int = 30):
    @sensor(
        name="sync_source_partitions",
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description="Adds and removes source partitions to match the sources in manager.yaml.",
    )
    def sync_source_partitions(context: SensorEvaluationContext):
        try:
            config = load_config(config_path)
        except ManagerError as exc:
            return SkipReason(f"manager.yaml not loaded: {exc}")
        added, removed = partition_changes(config, context.instance.get_dynamic_partitions(SOURCE))
        if not added and not removed:
            return SkipReason("source partitions match manager.yaml")
        requests = []
        if added:
            requests.append(AddDynamicPartitionsRequest(SOURCE, added))
        if removed:
            requests.append(DeleteDynamicPartitionsRequest(SOURCE, removed))
        return SensorResult(dynamic_partitions_requests=requests)

    return sync_source_partitions


def local_source_sensor(config_path: Path, interval: int = 10):
    @sensor(
        name="watch_local_sources",
        job_name=DEPLOY_JOB,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Polls the variables file of each path source; a change starts a run per environment "
            "(the first look only records what is there)."
        ),
    )
    def watch_local_sources(context: SensorEvaluationContext):
        try:
            config = load_config(config_path)
        except ManagerError as exc:
            return SkipReason(f"manager.yaml not loaded: {exc}")
        state = LocalWatchState.from_json(context.cursor)
        changes, new_state = detect_local_changes(config, state)
        known = set(context.instance.get_dynamic_partitions(SOURCE))
        missing = sorted({c.source for c in changes} - known)
        runs = [
            RunRequest(
                run_key=f"{change.source}|{environment}|{change.sequence}|{change.digest[:12]}",
                partition_key=partition_key(change.source, environment),
                tags=DispatchEvent(
                    source=change.source,
                    environment=environment,
                    sha=change.sha,
                    branch=change.branch,
                    trigger="watch",
                ).to_tags(),
            )
            for change in changes
            for environment in config.sources[change.source].environments
        ]
        return SensorResult(
            run_requests=runs,
            cursor=new_state.to_json(),
            dynamic_partitions_requests=[AddDynamicPartitionsRequest(SOURCE, missing)] if missing else [],
        )

    return watch_local_sources


def feedback_delivery_sensor(interval: int = 15):
    @sensor(
        name="deliver_feedback",
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description="Sends the feedback that GitHub did not take during its run, in order, once each.",
    )
    def deliver_feedback(context: SensorEvaluationContext, feedback: FeedbackResource):
        if not feedback.outbox().undelivered(limit=1):
            return SkipReason("nothing waiting for GitHub")
        report = feedback.deliver()
        return SkipReason(f"sent {len(report.delivered)} feedback item(s); {report.pending} still waiting")

    return deliver_feedback
