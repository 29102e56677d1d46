"""The apply_plan job's own ops: load a saved plan, check it may still be applied."""

import time

from dagster import Failure, MetadataValue, OpExecutionContext, op

from manager_pipeline.approvals.integrity import ApplyCheck, refusals
from manager_pipeline.approvals.records import APPROVED, AWAITING, REFUSED, Records
from manager_pipeline.approvals.review import review
from manager_pipeline.artifacts import PlanArtifact, sha256_file
from manager_pipeline.contract import DeployConfig, load_variables, resolve
from manager_pipeline.defs.audit import audit
from manager_pipeline.defs.ops import current_event, say
from manager_pipeline.defs.resources import GitHubResource, ManagerConfigResource, PlanStoreResource, SourcesResource
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import PLAN_ID_TAG, DispatchEvent
from manager_pipeline.github.approvals import GitHubApprovals
from manager_pipeline.terraform import module_digest


@op(description="Load the saved plan the run was started for (tag manager/plan-id).")
def load_plan(context: OpExecutionContext, plans: PlanStoreResource) -> PlanArtifact:
    event = current_event(context)
    plan_id = context.run.tags.get(PLAN_ID_TAG)
    if not plan_id:
        raise Failure("an apply run needs the tag manager/plan-id: the plan to apply")
    try:
        artifact = plans.store().load(plan_id)
    except ManagerError as exc:
        raise Failure(str(exc)) from None
    if (artifact.source, artifact.environment) != (event.source, event.environment):
        raise Failure(f"plan {plan_id} is for {artifact.source}/{artifact.environment}, not this partition")
    say(context, "load", f"plan {plan_id}: {artifact.summary.line()} (commit {(artifact.sha or '?')[:12]})")
    context.add_output_metadata({"plan_id": plan_id, "summary": artifact.summary.line()})
    return artifact


def _current_variables(manager, sources, plan: PlanArtifact) -> tuple[DeployConfig | None, str | None]:
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
    plan: PlanArtifact,
) -> DeployConfig:
    records: Records = plans.records()
    record = records.plan(plan.plan_id)
    if record is None:
        raise Failure(f"plan {plan.plan_id} is not in the plan index; re-plan")
    config = manager.load()
    policy = config.policy(plan.environment)
    approvals = GitHubApprovals(github.client()) if github.configured and record.repo else None
    verdict = review(record, policy, records, approvals)
    audit(context.instance, record, verdict.new)
    current, problem = _current_variables(manager, sources, plan)
    newest = records.newest_candidate(plan.source, plan.environment)
    reasons = refusals(
        ApplyCheck(
            plan=plan,
            record=record,
            policy=policy,
            plan_file_sha256=sha256_file(plan.plan_file) if plan.plan_file.exists() else "",
            newest_candidate=newest.plan_id if newest else None,
            module_digest=module_digest(config.terraform_dir),
            variables_digest=current.digest if current else None,
            variables_problem=problem,
            accepted_approvers=tuple(verdict.accepted),
            now=time.time(),
        )
    )
    if reasons:
        texts = [refusal.reason for refusal in reasons]
        if any(refusal.final for refusal in reasons) and record.state in (AWAITING, APPROVED):
            records.set_state(plan.plan_id, REFUSED, "; ".join(texts)[:1000], apply_run_id=context.run_id)
        raise Failure(
            f"apply of plan {plan.plan_id} refused:\n" + "\n".join(f"- {text}" for text in texts),
            metadata={"reasons": MetadataValue.json(texts)},
        )
    say(context, "check", f"plan {plan.plan_id} approved by {', '.join(verdict.accepted) or 'policy'}; applying")
    context.add_output_metadata({"approvers": MetadataValue.json(verdict.accepted)})
    # The variables now are the planned ones (same digest), so their notification settings hold.
    return current if current is not None else DeployConfig.from_tfvars(plan.tfvars)
