"""Stage: drift - the `drift_check` job (a refresh-only plan of one partition against the state its last
apply left), the schedule of each environment that starts it for every partition with state, and the
`infrastructure` asset whose partitions carry the result in the UI.

In the UI a check is an observation of the partition of the `infrastructure` asset (its status, the
drifted resources and attributes, the report) and a `manager/drift` tag on the run. An asset check
would be the other choice, but partitioned asset checks are a preview in Dagster 1.13 and cannot be
run by a partitioned job of checks alone; observations of an external asset are stable, and sit
where Dagster users look for a partition's history (the asset's partition page). The tag lets the
Runs page filter every drifted partition (`manager/drift=drift`).

Checks are runs like any other: they queue behind a deploy of their partition (one run per partition)
and at most a few go at once (the `manager/kind: drift` limit of dagster.yaml's run queue), so a
daily check of a hundred partitions never crowds out a deploy.
"""

import hashlib
import re
from pathlib import Path

from dagster import (
    AssetObservation,
    DefaultScheduleStatus,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    graph,
    op,
    schedule,
)

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.defs.assets import DRIFT, INFRASTRUCTURE
from manager_pipeline.defs.assets import check as asset_check
from manager_pipeline.defs.partitions import SOURCE, deploy_partitions, partition_key, split_partition_key
from manager_pipeline.defs.resources import (
    AwsResource,
    FeedbackResource,
    ManagerConfigResource,
    PlanStoreResource,
    TerraformResource,
)
from manager_pipeline.defs.stage import TerraformLines, config_or_skip, failure_for, redacted_metadata, say
from manager_pipeline.drift import issue as drift_issue
from manager_pipeline.drift.check import check_partition, last_applied, unchecked
from manager_pipeline.drift.report import DriftCheck, DriftStatus, report_markdown
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import KIND_TAG, OUTCOME_TAG, DispatchEvent
from manager_pipeline.feedback import LocalReportSink
from manager_pipeline.terraform.runner import StateLocked

DRIFT_JOB = "drift_check"
# A drift check says what it found where every run says its outcome (`manager/outcome=drift`).
DRIFT_TAG = OUTCOME_TAG


def _locked(context: OpExecutionContext, exc: StateLocked) -> str:
    # The same words as a deploy's: who holds it, and whether a killed run left it (and the command).
    said = " ".join(failure_for(exc, context).description.split("\n"))
    return f"{said} (the lock is left as it is: the next check tries again)"


@op(
    description="Compare what AWS holds with the state the partition's last apply left (`plan -refresh-only`), "
    "never waiting for or forcing its lock; record it on the `infrastructure` asset and open, update or close "
    "the source's drift issue.",
)
def check_drift(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    plans: PlanStoreResource,
    aws: AwsResource,
    terraform: TerraformResource,
    feedback: FeedbackResource,
) -> DriftCheck:
    source, environment = split_partition_key(context.partition_key)
    try:
        config = manager.load()
        spec = config.check_partition(source, environment)
        try:
            with TerraformLines(context, "drift") as lines:
                check = check_partition(
                    terraform,
                    # The environment's own credentials (its policy's `aws:`), when it has some, as its deploys use.
                    aws.target(environment, config.policy(environment).aws),
                    plans.plans(),
                    config.terraform_dir,
                    terraform.workdir_for(context.run_id),
                    source,
                    environment,
                    shared_target=aws.target(),
                    on_line=lines,
                )
        except StateLocked as exc:
            plan = last_applied(plans.plans(), source, environment)
            check = DriftCheck(
                source, environment, DriftStatus.LOCKED, detail=_locked(context, exc), plan_id=plan and plan.plan_id
            )
    except ManagerError as exc:
        raise failure_for(exc) from None
    url = feedback.run_url(context.run_id)
    markdown = report_markdown(check, url)
    report = LocalReportSink(Path(feedback.reports_dir)).write(source, environment, context.run_id, markdown)
    context.instance.add_run_tags(context.run_id, {DRIFT_TAG: check.status.value})
    metadata = {
        "status": check.status.value,
        "resources": len(check.report.resources),
        "drifted": MetadataValue.json({r.address: r.attributes or ["(deleted)"] for r in check.report.resources}),
        "report": MetadataValue.md(markdown),
    }
    context.log_event(
        AssetObservation(INFRASTRUCTURE, partition=context.partition_key, metadata=redacted_metadata(metadata))
    )
    if check.status in (DriftStatus.DRIFT, DriftStatus.NO_DRIFT):
        drifted = check.status is DriftStatus.DRIFT
        context.log_event(
            asset_check(DRIFT, context.partition_key, not drifted, check.line().split(": ", 1)[1], warn=True)
        )
    say(context, "drift", check.line().split(": ", 1)[1])
    if spec.repo and check.status in (DriftStatus.DRIFT, DriftStatus.NO_DRIFT):
        item = (
            drift_issue.opened(spec.repo, check, url)
            if check.status is DriftStatus.DRIFT
            else drift_issue.resolved(spec.repo, source, environment, "a drift check found none", url)
        )
        feedback.outbox().add([item], context.run_id)
        delivery = feedback.deliver(quick=True)
        say(context, "drift", f"GitHub {spec.repo}: {len(delivery.delivered)} sent, {delivery.pending} queued")
    context.add_output_metadata(redacted_metadata(metadata | {"report_file": MetadataValue.path(str(report))}))
    return check


@graph(description="Check one source and environment for drift: what changed in AWS outside the manager.")
def drift():
    check_drift()


def drift_job(environments) -> JobDefinition:
    # The executor is the code location's (defs/executor.py): a check runs where its environment's steps do.
    return drift.to_job(name=DRIFT_JOB, partitions_def=deploy_partitions(environments), tags={KIND_TAG: "drift"})


def drift_tags(source: str, environment: str, trigger: str) -> dict[str, str]:
    return DispatchEvent(source=source, environment=environment, trigger=trigger).to_tags() | {KIND_TAG: "drift"}


def _schedule_name(environment: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", environment)
    if name != environment:
        # Two environments that differ only in `.`/`-` must not share a name.
        name += "_" + hashlib.sha256(environment.encode()).hexdigest()[:6]
    return f"drift_{name}"


def drift_schedule(environment: str, cron: str) -> ScheduleDefinition:
    @schedule(
        name=_schedule_name(environment),
        cron_schedule=cron,
        job_name=DRIFT_JOB,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Checks every {environment} partition with state for drift (drift_schedule in manager.yaml).",
    )
    def _drift(context: ScheduleEvaluationContext, manager: ManagerConfigResource, plans: PlanStoreResource):
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
        known = set(context.instance.get_dynamic_partitions(SOURCE))
        store = plans.plans()
        sources = [
            spec.name
            for spec in config.sources.values()
            if environment in spec.environments
            and spec.name in known
            and unchecked(spec.name, environment, last_applied(store, spec.name, environment)) is None
        ]
        if not sources:
            return SkipReason(f"no {environment} partition has state yet")
        tick = context.scheduled_execution_time.isoformat()
        return [
            RunRequest(
                run_key=f"drift|{environment}|{source}|{tick}",
                partition_key=partition_key(source, environment),
                tags=drift_tags(source, environment, "schedule"),
            )
            for source in sources
        ]

    return _drift


def drift_schedules(config: ManagerConfig) -> list[ScheduleDefinition]:
    """One schedule per environment whose policy has a `drift_schedule` (not `off`)."""
    return [
        drift_schedule(name, policy.drift_schedule)
        for name, policy in config.environments.items()
        if policy.drift_schedule
    ]
