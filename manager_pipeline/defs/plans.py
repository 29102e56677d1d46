"""Stage: what a plan becomes - the deploy run's gate, the approval sensor, and the apply_plan job's
load and check of a saved plan (all through plans/)."""

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from dagster import (
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
    op,
    sensor,
)

from manager_pipeline.config import ManagerConfig
from manager_pipeline.contract import DeployConfig, load_variables, resolve
from manager_pipeline.decommission import recorded_source
from manager_pipeline.defs.partitions import partition_key
from manager_pipeline.defs.resources import (
    GitHubResource,
    InboxResource,
    ManagerConfigResource,
    PlanStoreResource,
    SourcesResource,
)
from manager_pipeline.defs.stage import APPLY_JOB, config_or_skip, current_event, failure_for, say
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import PLAN_ID_TAG, DispatchEvent
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.feedback.trigger_status import trigger_tags
from manager_pipeline.github.approvals import GitHubApprovals
from manager_pipeline.intake.dispatch import INBOX_ID_TAG, REF_TAG
from manager_pipeline.intake.inbox import Inbox, NotedApproval
from manager_pipeline.plans import ApplyFacts, Plan, Plans, PlanState, apply_requirements, sha256_file
from manager_pipeline.plans.approvals import review
from manager_pipeline.plans.audit import audit
from manager_pipeline.request import ResolvedRequest
from manager_pipeline.plans.gate import decide
from manager_pipeline.terraform import (
    Workdir,
    module_digest,
)


@op(
    description="Decide what the plan becomes: applied now, awaiting approval, or a preview.",
    out={"approved": Out(Plan, is_required=False), "held": Out(Outcome, is_required=False)},
)
def approval_gate(
    context: OpExecutionContext,
    inbox: InboxResource,
    plans: PlanStoreResource,
    request: ResolvedRequest,
    workdir: Workdir,
    plan: Plan,
):
    # The policy the run started under, not whatever manager.yaml says by now.
    event, policy = request.event, request.policy
    superseded_by = None
    inbox_id, ref_key = context.run.tags.get(INBOX_ID_TAG), context.run.tags.get(REF_TAG)
    if plan.repo and inbox_id and ref_key:
        # A newer delivery for this branch or pull request came in while this run was going.
        # A trigger repository's deliveries are stored under the application repository.
        repo = event.trigger_repo or plan.repo
        superseded_by = inbox.inbox().newer_delivery(repo, ref_key, event.source, int(inbox_id))
    decision = decide(
        policy,
        event,
        plan.branch if plan.branch_verified else None,
        plan.has_changes,
        plan.plan_id,
        superseded_by,
        claimed_branch=plan.branch,
    )
    store = plans.plans()
    store.transition(plan.plan_id, decision.state, note=decision.reason)
    if decision.applies:
        refusals = apply_requirements(
            store.get(plan.plan_id),
            policy,
            ApplyFacts(
                plan_file_sha256=sha256_file(plan.plan_file),
                newest_candidate=plan.plan_id,
                module_digest=workdir.module_digest,
                variables_digest=workdir.variables_digest,
                variables_problem=None,
                accepted_approvers=(),
                now=time.time(),
            ),
        )
        if refusals:
            store.transition(plan.plan_id, PlanState.REFUSED, note="; ".join(r.reason for r in refusals)[:1000])
            raise Failure("apply refused:\n" + "\n".join(f"- {r.reason}" for r in refusals))
    say(context, "gate", decision.reason)
    metadata = {"decision": decision.state.value, "reason": decision.reason}
    if decision.applies:
        yield Output(plan, "approved", metadata=metadata)
        return
    # With no changes, what the plan shows as outputs is what the state holds.
    outputs = plan.planned_outputs if decision.outcome is OutcomeStatus.NO_CHANGES else {}
    yield Output(
        Outcome(
            event=event,
            status=decision.outcome,
            headline=decision.reason,
            plan=plan,
            outputs=outputs,
            sha=plan.sha,
            branch=plan.branch,
        ),
        "held",
        metadata=metadata,
    )


@op(description="Load the saved plan the run was started for (tag manager/plan-id).")
def load_plan(context: OpExecutionContext, plans: PlanStoreResource) -> Plan:
    event = current_event(context)
    plan_id = context.run.tags.get(PLAN_ID_TAG)
    if not plan_id:
        raise Failure("an apply run needs the tag manager/plan-id: the plan to apply")
    try:
        plan = plans.plans().get(plan_id)
    except ManagerError as exc:
        raise Failure(str(exc)) from None
    if (plan.source, plan.environment) != (event.source, event.environment):
        raise Failure(f"plan {plan_id} is for {plan.source}/{plan.environment}, not this partition")
    # A plan a trigger repository's push made reports to that repository's commit too.
    planned_by = context.instance.get_run_by_id(plan.run_id) if plan.run_id else None
    inherited = trigger_tags(planned_by.tags) if planned_by else {}
    if inherited:
        context.instance.add_run_tags(context.run_id, inherited)
    say(context, "load", f"plan {plan_id}: {plan.summary.line()} (commit {(plan.sha or '?')[:12]})")
    context.add_output_metadata({"plan_id": plan_id, "summary": plan.summary.line()})
    return plan


def _current_variables(request: ResolvedRequest, sources, plan: Plan) -> tuple[DeployConfig | None, str | None]:
    """(config, problem) of the variables the source holds now on the plan's branch."""
    try:
        event = DispatchEvent(plan.source, plan.environment, branch=plan.branch)
        document = sources.fetch(request.source, event)
        data = load_variables(document.text, list(request.environments), document.location)
        return replace(resolve(data, plan.environment, plan.source, document.location), origin=document), None
    except ManagerError as exc:
        return None, str(exc).splitlines()[0]


@op(
    description="Refuse the apply unless the plan is untouched, newest, current, approved and young enough.",
    out={"request": Out(ResolvedRequest), "deploy_config": Out(DeployConfig)},
)
def check_plan(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    sources: SourcesResource,
    plans: PlanStoreResource,
    github: GitHubResource,
    plan: Plan,
):
    store = plans.plans()
    try:
        # The one read of manager.yaml in an apply run. A destroy plan is judged as one, whatever the run's
        # tags say, and its source may have left manager.yaml.
        event = replace(current_event(context), destroy=plan.destroy)
        request = ResolvedRequest.resolve(manager.load(), event, recorded_source(plan) if plan.destroy else None)
    except ManagerError as exc:
        raise failure_for(exc) from None
    policy = request.policy
    approvals = GitHubApprovals(github.client()) if github.configured and plan.repo else None
    verdict = review(plan, policy, store, approvals)
    audit(context.instance, plan, verdict.new)
    # A destroy removes what its variables built; what the source holds now (if anything) does not matter.
    current, problem = (None, None) if plan.destroy else _current_variables(request, sources, plan)
    newest = store.newest_candidate(plan.source, plan.environment)
    refusals = apply_requirements(
        store.get(plan.plan_id),
        policy,
        ApplyFacts(
            plan_file_sha256=sha256_file(plan.plan_file) if plan.plan_file.exists() else "",
            newest_candidate=newest.plan_id if newest else None,
            module_digest=module_digest(request.terraform_dir),
            variables_digest=plan.variables_digest if plan.destroy else (current.digest if current else None),
            variables_problem=problem,
            accepted_approvers=tuple(verdict.accepted),
            now=time.time(),
        ),
    )
    if refusals:
        texts = [refusal.reason for refusal in refusals]
        if any(refusal.final for refusal in refusals):
            store.transition(
                plan.plan_id,
                PlanState.REFUSED,
                note="; ".join(texts)[:1000],
                expected=[PlanState.AWAITING, PlanState.APPROVED],
            )
        raise Failure(
            f"apply of plan {plan.plan_id} refused:\n" + "\n".join(f"- {text}" for text in texts),
            metadata={"reasons": MetadataValue.json(texts)},
        )
    store.transition(plan.plan_id, PlanState.APPROVED, note=f"approved by {', '.join(verdict.accepted) or 'policy'}")
    say(context, "check", f"plan {plan.plan_id} approved by {', '.join(verdict.accepted) or 'policy'}; applying")
    yield Output(request, "request", metadata={"manager.yaml sha256": request.manager_digest})
    # The variables now are the planned ones (same digest), so their notification settings hold.
    deploy_config = current if current is not None else DeployConfig.from_tfvars(plan.tfvars)
    yield Output(deploy_config, "deploy_config", metadata={"approvers": MetadataValue.json(verdict.accepted)})


def _covered(config: ManagerConfig, plan: Plan) -> bool:
    """Whether manager.yaml still has the plan's environment and source (a destroy plan's source may have
    left it: destroying what it left behind is the point)."""
    return plan.environment in config.environments and (plan.source in config.sources or plan.destroy)


def _review_waiting_plan(context, store: Plans, config: ManagerConfig, plan: Plan, approvals) -> int:
    """Review one waiting plan; how many approval records the review added."""
    if not _covered(config, plan):
        return 0
    policy = config.policy(plan.environment, destroy=plan.destroy)
    age_hours = (time.time() - plan.created_at) / 3600
    if age_hours > policy.max_plan_age_hours:
        store.transition(plan.plan_id, PlanState.EXPIRED, note=f"older than {policy.max_plan_age_hours:.0f} h; re-plan")
        return 0
    verdict = review(plan, policy, store, approvals if plan.repo else None)
    audit(context.instance, plan, verdict.new)
    if verdict.approved:
        store.transition(plan.plan_id, PlanState.APPROVED, note=f"approved by {', '.join(verdict.accepted)}")
    return len(verdict.new)


# Every waiting plan is reviewed against GitHub at most this often; between full polls a tick reviews
# only the plans a webhook said may have been approved, and those with new recorded approvals.
FULL_POLL_S = 15.0


@dataclass
class ApprovalCursor:
    """The approval sensor's memory: when it last reviewed every waiting plan, and how many approval
    records each waiting plan had when it was last reviewed (a new one, e.g. a console approval, is
    looked at in the next tick)."""

    full_poll_at: float = 0.0
    judged: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> "ApprovalCursor":
        try:
            data = json.loads(text) if text else {}
            judged = {str(plan_id): int(count) for plan_id, count in data.get("judged", {}).items()}
            return cls(float(data.get("full_poll_at", 0.0)), judged)
        except (ValueError, TypeError, AttributeError):
            return cls()

    def to_json(self) -> str:
        return json.dumps({"full_poll_at": self.full_poll_at, "judged": self.judged}, sort_keys=True)


def noted_plans(waiting: list[Plan], notes: list[NotedApproval]) -> list[Plan]:
    """The waiting plans a note may concern: those of its pull request, and those of its repository
    without a pull request (a push's plan: GitHub finds its pull requests by commit) of the reviewed
    commit, or of any commit for a comment (which names none)."""
    chosen = []
    for plan in waiting:
        if not plan.repo:
            continue
        for note in notes:
            if note.repo.lower() != plan.repo.lower():
                continue
            if plan.pr == note.pr or (plan.pr is None and (note.sha is None or note.sha == plan.sha)):
                chosen.append(plan)
                break
    return chosen


def _new_approvals(store: Plans, config: ManagerConfig, plan: Plan, seen: int | None) -> tuple[int, bool]:
    """(how many approval records ``plan`` has, whether it should be reviewed now): it has records
    the sensor has not reviewed yet, and enough accepted ones to meet its policy (the review judges
    them again). Read from the database only."""
    records = store.approvals(plan.plan_id)
    if seen == len(records) or plan.environment not in config.environments:
        return len(records), False
    accepted = {r.login.lower() for r in records if r.accepted}
    required = config.policy(plan.environment, destroy=plan.destroy).required_approvals
    return len(records), bool(accepted) and len(accepted) >= required


def approval_sensor(config_path: Path, interval: int = 1, full_poll_s: float = FULL_POLL_S):
    @sensor(
        name="approve_plans",
        job_name=APPLY_JOB,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Reads approvals of plans waiting for them (pull request reviews, `/approve <env>` comments, "
            "console approvals), records each decision, and starts the apply of a plan once its policy is met. "
            f"Every {full_poll_s:g} s it asks GitHub about every waiting plan; in between, only about the plans "
            "of pull requests a webhook said were reviewed or commented `/approve` on."
        ),
    )
    def approve_plans(context: SensorEvaluationContext, plans: PlanStoreResource, github: GitHubResource):
        config = config_or_skip(config_path)
        if isinstance(config, SkipReason):
            return config
        now = time.time()
        memory = ApprovalCursor.from_json(context.cursor)
        store = plans.plans()
        # The notes live in the manager's database, beside the plans (the inbox's table).
        inbox = Inbox(plans.database_url)
        notes = inbox.noted_approvals()
        waiting = store.list_plans(state=PlanState.AWAITING)
        # A clock set back counts as time for a full poll too.
        full = not (0 <= now - memory.full_poll_at < full_poll_s)
        counts: dict[str, int] = {}
        selected: list[Plan] = list(waiting) if full else noted_plans(waiting, notes)
        chosen = {plan.plan_id for plan in selected}
        for plan in waiting:
            counts[plan.plan_id], due = _new_approvals(store, config, plan, memory.judged.get(plan.plan_id))
            if due and plan.plan_id not in chosen:
                selected.append(plan)
                chosen.add(plan.plan_id)
        approvals = GitHubApprovals(github.client()) if github.configured and selected else None
        problems = []
        for plan in selected:
            # One plan's trouble (GitHub down, a policy gone) never holds up the others; a plan that
            # fails is tried again in the next full poll.
            try:
                counts[plan.plan_id] += _review_waiting_plan(context, store, config, plan, approvals)
            except Exception as exc:  # noqa: BLE001 - reported on the tick, retried next tick
                problems.append(f"plan {plan.plan_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        inbox.approvals_looked_at([note.id for note in notes])
        if notes:
            pairs = sorted({f"{note.repo}#{note.pr}" for note in notes})
            context.log.info(
                f"approval notes for {', '.join(pairs)}: reviewed {len(selected)} waiting plan(s)"
                + (" (full poll)" if full else "")
            )
        context.update_cursor(
            ApprovalCursor(full_poll_at=now if full else memory.full_poll_at, judged=counts).to_json()
        )
        # Every approved plan without an apply run gets one; the run key makes asking again harmless.
        runs = [
            RunRequest(
                run_key=f"apply:{plan.plan_id}",
                partition_key=partition_key(plan.source, plan.environment),
                tags=plan.apply_tags("approval"),
            )
            for plan in store.list_plans(state=PlanState.APPROVED)
            if plan.apply_run_id is None and _covered(config, plan)
        ]
        if problems:
            context.log.warning("; ".join(problems))
        if not runs:
            return SkipReason(
                f"{len(waiting)} plan(s) wait for approval; reviewed {len(selected)}"
                + (" (full poll)" if full else "")
                + (f"; {len(problems)} failed" if problems else "")
            )
        return SensorResult(run_requests=runs)

    return approve_plans
