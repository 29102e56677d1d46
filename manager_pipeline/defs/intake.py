"""Stage: intake - changes become runs: webhook deliveries from the inbox, GitHub polling, local sources;
and the source partitions kept in step with manager.yaml."""


from dagster import (
    AddDynamicPartitionsRequest,
    DagsterRunStatus,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.defs.partitions import ENVIRONMENT, SOURCE, partition_changes, partition_key
from manager_pipeline.defs.resources import (
    AwsResource,
    GitHubResource,
    InboxResource,
    ManagerConfigResource,
)
from manager_pipeline.defs.stage import DEPLOY_JOB, config_or_skip
from manager_pipeline.destroy.inputs import left_behind, waiting_report
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import (
    ENVIRONMENT_TAG,
    SOURCE_TAG,
    TRIGGER_TAG,
    DispatchEvent,
    sign_author,
)
from manager_pipeline.intake.dispatch import INBOX_ID_TAG, REF_TAG, PlannedRun, plan_dispatch, pr_checker
from manager_pipeline.intake.inbox import DISPATCHED, Inbox
from manager_pipeline.intake.polling import PollState, poll
from manager_pipeline.intake.watch import LocalWatchState, detect_local_changes


def local_source_sensor(interval: int = 10):
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
    def watch_local_sources(context: SensorEvaluationContext, manager: ManagerConfigResource):
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
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


def dispatch_sensor(interval: int = 1, batch: int = 20_000):
    @sensor(
        name="dispatch_webhooks",
        job_name=DEPLOY_JOB,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Turns inbox deliveries into runs: a pull request plans every environment of its source, a push to "
            "an apply branch plans (and applies where allowed) per environment. One run per delivery and "
            "environment; newer deliveries supersede older ones still queued."
        ),
    )
    def dispatch_webhooks(context: SensorEvaluationContext, manager: ManagerConfigResource, inbox: InboxResource, github: GitHubResource):
        # Row state, not a cursor: a row that commits after a higher id is still pending next tick.
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
        store = inbox.inbox()
        again = _unconfirmed_runs(context, store, batch)
        loaded = _loaded_environments(context)
        planned: list[PlannedRun] = []

        def decide(events):
            plan = plan_dispatch(events, config, _pr_checker(github), loaded)
            planned.extend(plan.runs)
            return plan.notes

        marks = store.claim(batch, decide)
        if not marks and not again:
            return SkipReason("no new deliveries")
        _supersede_queued_runs(context, planned)
        runs = planned + again
        known = set(context.instance.get_dynamic_partitions(SOURCE))
        missing = sorted({run.source for run in runs} - known)
        # The author a delivery names (GitHub's word, checked by the receiver) is vouched for by this sensor.
        key = manager.run_tag_key()
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=run.run_key,
                    partition_key=partition_key(run.source, run.environment),
                    tags=sign_author(run.tags(), key),
                )
                for run in runs
            ],
            dynamic_partitions_requests=[AddDynamicPartitionsRequest(SOURCE, missing)] if missing else [],
        )

    return dispatch_webhooks


# The tag Dagster puts a sensor's run key in (its own dedupe of run requests reads it too).


RUN_KEY_TAG = "dagster/run_key"


def _loaded_environments(context: SensorEvaluationContext) -> set[str] | None:
    """The environments the loaded deploy job has partitions for (None when the sensor runs outside a
    code location and cannot tell)."""
    repository = context.repository_def
    if repository is None or not repository.has_job(DEPLOY_JOB):
        return None
    partitions = repository.get_job(DEPLOY_JOB).partitions_def
    return set(partitions.get_partitions_def_for_dimension(ENVIRONMENT).get_partition_keys())


def _unconfirmed_runs(context: SensorEvaluationContext, store: Inbox, batch: int) -> list[PlannedRun]:
    """Rows whose runs were requested on an earlier tick: ``dispatched`` once every run is in the
    instance; the runs not there (the request was lost) are requested again, under the same run key."""
    rows = store.dispatching(batch)
    if not rows:
        return []
    wanted = {row.id: [PlannedRun(source, env, row.id, row.delivery) for source, env in row.runs] for row in rows}
    keys = [run.run_key for runs in wanted.values() for run in runs]
    seen: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found = context.instance.get_runs(RunsFilter(tags={RUN_KEY_TAG: chunk}))
        seen.update(run.tags[RUN_KEY_TAG] for run in found)
    confirmed, again = {}, []
    for row in rows:
        missing = [run for run in wanted[row.id] if run.run_key not in seen]
        if missing:
            again.extend(missing)
        else:
            confirmed[row.id] = (DISPATCHED, row.note)
    store.mark(confirmed, only_from="dispatching")
    return again


def _pr_checker(github: GitHubResource):
    return pr_checker((lambda repo, pr: github.client().pull_files(repo, pr)) if github.configured else None)


def _supersede_queued_runs(context: SensorEvaluationContext, runs: list[PlannedRun]) -> None:
    newest = {(run.source, run.environment, run.delivery.ref_key): run for run in runs}
    queued = context.instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED], tags={TRIGGER_TAG: "webhook"}))
    for run in queued:
        key = (run.tags.get(SOURCE_TAG), run.tags.get(ENVIRONMENT_TAG), run.tags.get(REF_TAG))
        newer = newest.get(key)
        if newer and int(run.tags.get(INBOX_ID_TAG, "0")) < newer.inbox_id:
            context.instance.report_engine_event(
                f"superseded by delivery {newer.delivery.delivery_id} before it started: not run", run
            )
            context.instance.run_coordinator.cancel_run(run.run_id)


def polling_sensor(interval: int = 60, enabled: bool = False):
    @sensor(
        name="poll_github_sources",
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED,
        description=(
            "For set-ups without webhooks: polls each GitHub source for new commits on apply branches and new "
            "pull request heads (conditional requests: an unchanged repository costs no rate limit) and puts "
            "them in the inbox."
        ),
    )
    def poll_github_sources(context: SensorEvaluationContext, manager: ManagerConfigResource, inbox: InboxResource, github: GitHubResource):
        if not github.configured:
            return SkipReason("no GitHub credentials")
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
        state = PollState.from_json(context.cursor)
        deliveries = poll(config, github.client(), state)
        store = inbox.inbox()
        added = sum(1 for delivery in deliveries if store.add(delivery)[1])
        context.update_cursor(state.to_json())
        return SkipReason(f"{added} new change(s) put in the inbox")

    return poll_github_sources


def partition_sync_sensor(interval: int = 30):
    @sensor(
        name="sync_source_partitions",
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Adds and removes source partitions to match the sources in manager.yaml. A source that left it keeps "
            "its partition while its state holds infrastructure: reported with the command that destroys it, "
            "retired once that destroy is applied."
        ),
    )
    def sync_source_partitions(context: SensorEvaluationContext, manager: ManagerConfigResource, aws: AwsResource):
        config = config_or_skip(manager)
        if isinstance(config, SkipReason):
            return config
        added, removed = partition_changes(config, context.instance.get_dynamic_partitions(SOURCE))
        if not added and not removed:
            return SkipReason("source partitions match manager.yaml")
        kept, report = _left_with_infrastructure(aws, config, removed)
        retired = [name for name in removed if name not in kept]
        requests = []
        if added:
            requests.append(AddDynamicPartitionsRequest(SOURCE, added))
        if retired:
            requests.append(DeleteDynamicPartitionsRequest(SOURCE, retired))
        if report:
            context.log.warning(report)
        if not requests:
            return SkipReason(report)
        return SensorResult(dynamic_partitions_requests=requests)

    return sync_source_partitions


def _left_with_infrastructure(aws: AwsResource, config: ManagerConfig, removed: list[str]) -> tuple[set[str], str]:
    """(the removed sources whose partitions stay, why): those whose state still holds resources, or all of
    them when the states cannot be read. A source is never dropped with infrastructure left behind."""
    if not removed:
        return set(), ""
    try:
        holding = left_behind(aws.target(), config, removed)
    except ManagerError as exc:
        return set(removed), f"kept the partitions of {', '.join(removed)}: their state could not be read ({exc})"
    return {state.source for state in holding}, waiting_report(holding) if holding else ""
