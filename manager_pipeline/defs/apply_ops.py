"""The apply_plan job's own ops: load a saved plan, check it may still be applied."""

import time

from dagster import Failure, MetadataValue, OpExecutionContext, op

from manager_pipeline.contract import DeployConfig, load_variables, resolve
from manager_pipeline.defs.ops import current_event, say
from manager_pipeline.defs.resources import GitHubResource, ManagerConfigResource, PlanStoreResource, SourcesResource
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import PLAN_ID_TAG, DispatchEvent
from manager_pipeline.github.approvals import GitHubApprovals
from manager_pipeline.plans import ApplyFacts, Plan, PlanState, apply_requirements, sha256_file
from manager_pipeline.plans.approvals import review
from manager_pipeline.plans.audit import audit
from manager_pipeline.terraform import module_digest


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
    say(context, "load", f"plan {plan_id}: {plan.summary.line()} (commit {(plan.sha or '?')[:12]})")
    context.add_output_metadata({"plan_id": plan_id, "summary": plan.summary.line()})
    return plan


def _current_variables(manager, sources, plan: Plan) -> tuple[DeployConfig | None, str | None]:
    """(config, problem) of the variables the source holds now on the plan's branch."""
    try:
        config = manager.load()
        spec = config.source(plan.source)
        document = sources.fetch(spec, DispatchEvent(plan.source, plan.environment, branch=plan.branch))
        data = load_variables(document.text, list(config.environments), document.location)
        return resolve(data, plan.environment, plan.source, document.location), None
    except ManagerError as exc:
        return None, str(exc).splitlines()[0]


@op(description="Refuse the apply unless the plan is untouched, newest, current, approved and young enough.")
def check_plan(
    context: OpExecutionContext,
    manager: ManagerConfigResource,
    sources: SourcesResource,
    plans: PlanStoreResource,
    github: GitHubResource,
    plan: Plan,
) -> DeployConfig:
    store = plans.plans()
    config = manager.load()
    policy = config.policy(plan.environment)
    approvals = GitHubApprovals(github.client()) if github.configured and plan.repo else None
    verdict = review(plan, policy, store, approvals)
    audit(context.instance, plan, verdict.new)
    current, problem = _current_variables(manager, sources, plan)
    newest = store.newest_candidate(plan.source, plan.environment)
    refusals = apply_requirements(
        store.get(plan.plan_id),
        policy,
        ApplyFacts(
            plan_file_sha256=sha256_file(plan.plan_file) if plan.plan_file.exists() else "",
            newest_candidate=newest.plan_id if newest else None,
            module_digest=module_digest(config.terraform_dir),
            variables_digest=current.digest if current else None,
            variables_problem=problem,
            accepted_approvers=tuple(verdict.accepted),
            now=time.time(),
        ),
    )
    if refusals:
        texts = [refusal.reason for refusal in refusals]
        if any(refusal.final for refusal in refusals):
            store.transition(plan.plan_id, PlanState.REFUSED, note="; ".join(texts)[:1000], expected=[PlanState.AWAITING, PlanState.APPROVED])
        raise Failure(
            f"apply of plan {plan.plan_id} refused:\n" + "\n".join(f"- {text}" for text in texts),
            metadata={"reasons": MetadataValue.json(texts)},
        )
    store.transition(plan.plan_id, PlanState.APPROVED, note=f"approved by {', '.join(verdict.accepted) or 'policy'}")
    say(context, "check", f"plan {plan.plan_id} approved by {', '.join(verdict.accepted) or 'policy'}; applying")
    context.add_output_metadata({"approvers": MetadataValue.json(verdict.accepted)})
    # The variables now are the planned ones (same digest), so their notification settings hold.
    return current if current is not None else DeployConfig.from_tfvars(plan.tfvars)
