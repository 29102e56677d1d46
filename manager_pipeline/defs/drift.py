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
import json
import re
from pathlib import Path

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
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

from manager_pipeline.config import ManagerConfig
from manager_pipeline.defs.partitions import SOURCE, deploy_partitions, partition_key, split_partition_key
from manager_pipeline.defs.resources import (
    AwsResource,
    FeedbackResource,
    ManagerConfigResource,
    PlanStoreResource,
    TerraformResource,
)
from manager_pipeline.defs.stage import TerraformLines, config_or_skip, failure_for, redacted_metadata, say
from manager_pipeline.drift import DriftCheck, DriftReport, DriftStatus, drift_report, report_markdown
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import LocalReportSink, drift_issue
from manager_pipeline.plans import Plan, Plans, PlanState
from manager_pipeline.terraform import BackendSettings
from manager_pipeline.terraform.runner import StateLocked
from manager_pipeline.terraform.workdir import BACKEND_FILE, TFVARS_FILE, copy_module, read_state, write_state_override

DRIFT_JOB = "drift_check"
DRIFT_TAG = "manager/drift"
KIND_TAG = "manager/kind"
INFRASTRUCTURE = AssetKey("infrastructure")
DRIFT_PLAN_FILE = "drift.tfplan"


def infrastructure_asset(environments) -> AssetSpec:
    return AssetSpec(
        INFRASTRUCTURE,
        partitions_def=deploy_partitions(environments),
        description="What Terraform manages for each source and environment. Each drift check records an "
        "observation of its partition: drift, no drift, locked (not checked) or no state.",
        kinds={"terraform", "aws"},
    )


def last_applied(store: Plans, source: str, environment: str) -> Plan | None:
    """The partition's newest applied plan: its variables are what the manager last gave Terraform."""
    applied = store.list_plans(state=PlanState.APPLIED, source=source, environment=environment)
    return applied[-1] if applied else None


def unchecked(source: str, environment: str, plan: Plan | None) -> DriftCheck | None:
    """Why a partition whose last applied plan is ``plan`` has no state to check (never applied, or
    destroyed); None when it has."""
    if plan is None:
        return DriftCheck(source, environment, DriftStatus.NO_STATE, detail="never applied by the manager")
    if plan.destroy:
        detail = f"its infrastructure was destroyed (plan {plan.plan_id})"
        return DriftCheck(source, environment, DriftStatus.NO_STATE, detail=detail, plan_id=plan.plan_id)
    return None


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
        check = _check(context, config, plans, aws, terraform, source, environment)
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


def _check(
    context: OpExecutionContext,
    config: ManagerConfig,
    plans: PlanStoreResource,
    aws: AwsResource,
    terraform: TerraformResource,
    source: str,
    environment: str,
) -> DriftCheck:
    """The refresh-only plan of the partition, with the variables of its last applied plan."""
    plan = last_applied(plans.plans(), source, environment)
    skipped = unchecked(source, environment, plan)
    if skipped is not None:
        return skipped
    # The environment's own credentials (its policy's `aws:`), when it has some, as its deploys use.
    target = aws.target(environment, config.policy(environment).aws)
    target.ensure_state_bucket()
    backend = BackendSettings.of_partition(target, source, environment)
    state = read_state(target.client("s3"), backend)
    if state is None:
        detail = f"no state object at s3://{backend.bucket}/{backend.key}"
        return DriftCheck(source, environment, DriftStatus.NO_STATE, detail=detail, plan_id=plan.plan_id)
    workdir = terraform.workdir_for(context.run_id)
    copy_module(workdir, config.terraform_dir, backend, target.endpoint_url)
    (workdir / TFVARS_FILE).write_text(json.dumps(plan.tfvars, indent=2, sort_keys=True) + "\n")
    write_state_override(workdir, state)
    try:
        with TerraformLines(context, "drift") as lines, terraform.session(workdir, target, lines) as (runner, _):
            runner.init(workdir / BACKEND_FILE)
            differs, _ = runner.plan_refresh_only(workdir / DRIFT_PLAN_FILE)
            report = drift_report(runner.show_json(workdir / DRIFT_PLAN_FILE)) if differs else DriftReport()
    except StateLocked as exc:
        return DriftCheck(source, environment, DriftStatus.LOCKED, detail=_locked(context, exc), plan_id=plan.plan_id)
    status = DriftStatus.DRIFT if report.drifted else DriftStatus.NO_DRIFT
    return DriftCheck(source, environment, status, report, plan_id=plan.plan_id)


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


def drift_schedule(config_path: Path, environment: str, cron: str) -> ScheduleDefinition:
    @schedule(
        name=_schedule_name(environment),
        cron_schedule=cron,
        job_name=DRIFT_JOB,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Checks every {environment} partition with state for drift (drift_schedule in manager.yaml).",
    )
    def _drift(context: ScheduleEvaluationContext, plans: PlanStoreResource):
        config = config_or_skip(config_path)
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


def drift_schedules(config_path: Path, config: ManagerConfig) -> list[ScheduleDefinition]:
    """One schedule per environment whose policy has a `drift_schedule` (not `off`)."""
    return [
        drift_schedule(config_path, name, policy.drift_schedule)
        for name, policy in config.environments.items()
        if policy.drift_schedule
    ]
