"""The checks before any apply of a saved plan. Each refusal says what to do instead."""

from __future__ import annotations

from dataclasses import dataclass

from manager_pipeline.approvals.records import APPLIED, PlanRecord
from manager_pipeline.artifacts import PlanArtifact
from manager_pipeline.config import EnvironmentPolicy


@dataclass(frozen=True)
class ApplyCheck:
    plan: PlanArtifact
    record: PlanRecord
    policy: EnvironmentPolicy
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


def refusals(check: ApplyCheck) -> list[Refusal]:
    plan, record, policy = check.plan, check.record, check.policy
    replan = f"re-plan with `manager-pipeline run --source {plan.source} --env {plan.environment}`"
    reasons = []
    if record.state == APPLIED:
        reasons.append(f"plan {plan.plan_id} was applied already (run {record.apply_run_id})")
    if not record.candidate:
        reasons.append(f"plan {plan.plan_id} is a preview (pull request or plan-only run) and is never applied")
    if check.plan_file_sha256 != plan.plan_sha256 or check.plan_file_sha256 != record.plan_sha256:
        reasons.append(f"the plan file of {plan.plan_id} is not the one that was planned (sha256 differs); {replan}")
    if check.newest_candidate and check.newest_candidate != plan.plan_id:
        reasons.append(
            f"plan {check.newest_candidate} is newer for {plan.source}/{plan.environment}; approvals do not carry "
            f"over: approve and apply {check.newest_candidate} instead"
        )
    if check.module_digest != plan.module_digest:
        reasons.append(f"the manager's terraform/ changed since plan {plan.plan_id}; {replan}")
    if check.variables_problem:
        reasons.append(f"the source's variables cannot be checked: {check.variables_problem}")
    elif check.variables_digest != plan.variables_digest:
        reasons.append(f"the source's variables changed since plan {plan.plan_id}; {replan}")
    if plan.branch not in policy.apply_branches:
        allowed = ", ".join(policy.apply_branches)
        reasons.append(f"branch `{plan.branch}` does not apply to {policy.name} (apply_branches: {allowed})")
    age_hours = (check.now - record.created_at) / 3600
    if age_hours > policy.max_plan_age_hours:
        reasons.append(
            f"plan {plan.plan_id} is {age_hours:.0f} h old; {policy.name} applies plans up to "
            f"{policy.max_plan_age_hours:.0f} h old; {replan}"
        )
    found = [Refusal(reason) for reason in reasons]
    if policy.gated and len(set(check.accepted_approvers)) < policy.required_approvals:
        have = ", ".join(sorted(set(check.accepted_approvers))) or "none"
        found.append(
            Refusal(
                f"plan {plan.plan_id} has {len(set(check.accepted_approvers))} of {policy.required_approvals} required "
                f"approval(s) (from: {have}); approve it with `/approve {policy.name}` on the pull request or commit, "
                f"a review, or `manager-pipeline approve {plan.plan_id} --as LOGIN --reason TEXT`",
                final=False,
            )
        )
    return found
