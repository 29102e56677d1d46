"""What must hold before any apply of a saved plan, asked by every path that applies one:
the deploy run's auto-apply, the approval sensor, the apply_plan job and the CLI.
Each refusal says what to do instead."""

from __future__ import annotations

from dataclasses import dataclass

from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.plans.record import Plan
from manager_pipeline.plans.state import PlanState


@dataclass(frozen=True)
class ApplyFacts:
    """What is true now, gathered by the caller: the file on disk, the newest plan, today's inputs."""

    plan_file_sha256: str
    newest_candidate: str | None
    module_digest: str
    variables_digest: str | None
    variables_problem: str | None
    accepted_approvers: tuple[str, ...]
    now: float


@dataclass(frozen=True)
class Refusal:
    reason: str
    # A final refusal ends the plan; a missing approval only means "not yet".
    final: bool = True


def apply_requirements(plan: Plan, policy: EnvironmentPolicy, facts: ApplyFacts) -> list[Refusal]:
    if plan.destroy:
        # Whatever the caller passed: a destroy is never applied without approval.
        policy = policy.for_destroy()
        replan = f"re-plan it with `manager-pipeline destroy {plan.source} {plan.environment}`"
    else:
        replan = f"re-plan with `manager-pipeline run --source {plan.source} --env {plan.environment}`"
    reasons = []
    if plan.state is PlanState.APPLIED:
        reasons.append(f"plan {plan.plan_id} was applied already (run {plan.apply_run_id})")
    elif plan.state is PlanState.APPLYING:
        reasons.append(f"plan {plan.plan_id} is being applied by run {plan.apply_run_id}")
    elif not plan.candidate:
        reasons.append(f"plan {plan.plan_id} is a preview (pull request or plan-only run) and is never applied")
    elif plan.state is PlanState.POLICY_FAILED:
        reasons.append(
            f"plan {plan.plan_id} failed its enforced policy checks ({plan.note or 'see its report'}): it can never "
            f"be approved or applied; change the variables (or skip a check with a reason, docs/policies.md) and {replan}"
        )
    elif not plan.state.waiting:
        reasons.append(f"plan {plan.plan_id} is {plan.state.value}{f' ({plan.note})' if plan.note else ''}; {replan}")
    if facts.plan_file_sha256 != plan.plan_sha256:
        reasons.append(f"the plan file of {plan.plan_id} is not the one that was planned (sha256 differs); {replan}")
    if facts.newest_candidate and facts.newest_candidate != plan.plan_id:
        reasons.append(
            f"plan {facts.newest_candidate} is newer for {plan.source}/{plan.environment}; approvals do not carry "
            f"over: approve and apply {facts.newest_candidate} instead"
        )
    if facts.module_digest != plan.module_digest:
        reasons.append(f"the manager's terraform/ changed since plan {plan.plan_id}; {replan}")
    if facts.variables_problem:
        reasons.append(f"the source's variables cannot be checked: {facts.variables_problem}")
    elif facts.variables_digest != plan.variables_digest:
        reasons.append(f"the source's variables changed since plan {plan.plan_id}; {replan}")
    if plan.branch not in policy.apply_branches:
        allowed = ", ".join(policy.apply_branches)
        reasons.append(f"branch `{plan.branch}` does not apply to {policy.name} (apply_branches: {allowed})")
    elif not plan.branch_verified:
        reasons.append(f"commit {(plan.sha or '?')[:12]} of plan {plan.plan_id} was not verified to be on `{plan.branch}`")
    age_hours = (facts.now - plan.created_at) / 3600
    if age_hours > policy.max_plan_age_hours:
        reasons.append(
            f"plan {plan.plan_id} is {age_hours:.0f} h old; {policy.name} applies plans up to "
            f"{policy.max_plan_age_hours:.0f} h old; {replan}"
        )
    found = [Refusal(reason) for reason in reasons]
    approvers = set(facts.accepted_approvers)
    if policy.gated and len(approvers) < policy.required_approvals:
        have = ", ".join(sorted(approvers)) or "none"
        on_github = (
            f"`/approve {policy.name} {plan.plan_id}` on the commit"
            if plan.destroy
            else f"`/approve {policy.name}` on the pull request or commit, a review,"
        )
        found.append(
            Refusal(
                f"plan {plan.plan_id} has {len(approvers)} of {policy.required_approvals} required approval(s) "
                f"(from: {have}); approve it with {on_github} "
                f"or `manager-pipeline approve {plan.plan_id} --reason TEXT` (as the operating-system user)",
                final=False,
            )
        )
    return found
