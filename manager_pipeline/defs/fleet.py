"""Plan every partition in one run: the blast radius of a module change (fleet.py), and the sensor
that starts it when the manager's Terraform module changes."""


import threading
from contextlib import ExitStack

from dagster import (
    AssetObservation,
    Config,
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)

from manager_pipeline.defs.assets import TERRAFORM_PLAN as PLAN_ASSET
from manager_pipeline.defs.partitions import partition_key
from manager_pipeline.defs.resources import (
    AwsResource,
    FeedbackResource,
    ManagerConfigResource,
    PlanStoreResource,
    SourcesResource,
    TerraformResource,
)
from manager_pipeline.defs.stage import config_or_skip, say
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import HIDDEN_PREFIX, KIND_TAG, OUTCOME_TAG, TRIGGER_TAG
from manager_pipeline.feedback import github_items
from manager_pipeline.fleet import summary as blast_radius
from manager_pipeline.fleet.planner import FleetPlanner, PartitionPlan, fleet_partitions
from manager_pipeline.fleet.preview import fleet_module
from manager_pipeline.settings import GitHubSettings
from manager_pipeline.terraform.workdir import module_digest

FLEET_JOB = "plan_fleet"
MODULE_DIGEST_TAG = HIDDEN_PREFIX + "module-digest"
# The key of the pull request's one summary comment (its parts, when long, are found and edited by it).
SUMMARY_KEY = "blast-radius"
# Every partition's plan in a fleet run is an observation of this asset, keyed by its partition.


class FleetConfig(Config):
    """Which partitions to plan, with which module, how many at once; where the summary goes."""

    sources: list[str] = []
    environments: list[str] = []
    # The manager repository's branch, tag or commit whose module to plan with (checked out by the
    # manager); empty: manager.yaml's terraform_dir. Never a folder: see fleet/preview.py.
    ref: str = ""
    # How the summary names the module ("branch feature-x"); empty: its digest.
    module_label: str = ""
    # Partitions planned at once; 0: one per core.
    parallelism: int = 0
    # `owner/name#N`: the manager repository's pull request that gets the summary as one comment.
    comment_on: str = ""


@op(
    description="Plan every chosen partition with one module, side by side, as previews; one summary of them all.",
    out={"summary": Out(str), "failed": Out(list)},
)
def plan_partitions(
    context: OpExecutionContext,
    config: FleetConfig,
    manager: ManagerConfigResource,
    sources: SourcesResource,
    aws: AwsResource,
    terraform: TerraformResource,
    plans: PlanStoreResource,
    feedback: FeedbackResource,
):
    try:
        # From the worker's own environment: run config, which names the pull request, cannot widen it.
        own = GitHubSettings.from_env().manager_repository
        pull = blast_radius.comment_target(config.comment_on, own) if config.comment_on else None
    except ManagerError as exc:
        raise Failure(str(exc)) from None
    # The checkout of a ref lives until the partitions are planned with it.
    stack = ExitStack()
    try:
        manager_config = manager.load()
        partitions = fleet_partitions(manager_config, config.sources, config.environments)
        module_dir = stack.enter_context(fleet_module(manager_config.terraform_dir, config.ref))
        planner = FleetPlanner(
            config=manager_config,
            fetch=sources.fetch,
            target_for=lambda environment: aws.target(environment, manager_config.policy(environment).aws),
            terraform=terraform,
            plans=plans.plans(),
            module_dir=module_dir,
            root=terraform.workdir_for(context.run_id),
            run_id=context.run_id,
            shared_target=aws.target(),
            # Every preview is checked too: the summary says which checks the module change newly fails.
            checkov=terraform.checkov(),
        )
    except (ManagerError, FileNotFoundError) as exc:
        stack.close()
        raise Failure(str(exc)) from None
    label = config.module_label or planner.digest[:12]
    say(context, "fleet", f"planning {len(partitions)} partitions with module {label}")
    lock = threading.Lock()

    def reported(result: PartitionPlan) -> None:
        # Worker threads report one at a time: the event log gets whole records.
        with lock:
            _report(context, result, planner.digest)

    with stack:
        results = planner.plan_all(partitions, config.parallelism, on_result=reported)
    markdown = blast_radius.render(results, label, feedback.run_url(context.run_id))
    if pull:
        if not feedback.github.configured:
            raise Failure("GitHub is not configured (GITHUB_TOKEN or a GitHub App): the summary was not posted")
        # The pull request's sticky comment, through the outbox like all feedback: a GitHub outage loses nothing.
        item = github_items.summary_comment(*pull, SUMMARY_KEY, markdown)
        feedback.outbox().add([item], context.run_id)
        delivery = feedback.deliver(quick=True)
        where = "queued for GitHub (the delivery sensor sends it)" if delivery.pending else "sent"
        say(context, "fleet", f"summary {where} to {config.comment_on}")
    totals = blast_radius.counts(results)
    say(context, "fleet", blast_radius.headline(results))
    failed = [result.partition.label for result in results if result.failed]
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: "failed" if failed else "planned"})
    yield Output(
        markdown,
        "summary",
        metadata={"summary": MetadataValue.md(markdown), **{key: value for key, value in totals.items()}},
    )
    yield Output(failed, "failed", metadata={"failed": MetadataValue.json(failed)})


@op(description="Fail the run when a partition could not be planned, naming each: a fleet run is green only when all were.")
def every_partition_planned(failed: list) -> None:
    if failed:
        shown = ", ".join(failed[:20]) + (f" and {len(failed) - 20} more" if len(failed) > 20 else "")
        raise Failure(
            f"{len(failed)} partition(s) could not be planned: {shown}; the summary of plan_partitions says why, "
            "with the first error line of each"
        )


def _report(context: OpExecutionContext, result: PartitionPlan, digest: str) -> None:
    partition = result.partition
    if result.failed:
        say(context, "fleet", f"{partition.label}: FAILED: {result.error}")
        metadata = {"error": result.error or ""}
    else:
        summary = result.summary
        say(context, "fleet", f"{partition.label}: {summary.line()} (plan {result.plan_id}, {result.seconds:.1f}s)")
        metadata = {
            "plan_id": result.plan_id or "",
            "summary": summary.line(),
            "add": summary.add,
            "change": summary.change,
            "destroy": summary.destroy,
        }
    context.log_event(
        AssetObservation(
            asset_key=PLAN_ASSET,
            partition=partition_key(partition.source, partition.environment),
            metadata={**metadata, "module_digest": digest[:12], "seconds": round(result.seconds, 1)},
        )
    )


@job(
    name=FLEET_JOB,
    description="Plan many partitions in one run (plan-only previews): a module change's blast radius, a re-plan.",
    executor_def=in_process_executor,
    tags={KIND_TAG: "fleet"},
)
def plan_fleet():
    _, failed = plan_partitions()
    every_partition_planned(failed)


def module_change_sensor(interval: int = 30):
    @sensor(
        name="watch_terraform_module",
        job_name=FLEET_JOB,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description="When the manager's Terraform module changes, plans every partition with it (plan-only) "
        "and writes the blast-radius summary.",
    )
    def watch_terraform_module(context: SensorEvaluationContext, manager: ManagerConfigResource):
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
        try:
            digest = module_digest(config.terraform_dir)
        except OSError as exc:
            return SkipReason(f"the module {config.terraform_dir} cannot be read: {exc}")
        if context.cursor is None:
            return SensorResult(skip_reason=f"module {digest[:12]} is the baseline", cursor=digest)
        if digest == context.cursor:
            return SkipReason(f"module {digest[:12]} unchanged")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=f"module-{digest}",
                    tags={MODULE_DIGEST_TAG: digest[:12], TRIGGER_TAG: "module-change"},
                )
            ],
            cursor=digest,
        )

    return watch_terraform_module
