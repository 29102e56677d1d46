"""Stages of an apply: whether a saved plan may still be applied (``check_apply``), and the apply of
exactly its bytes, once (``apply_saved``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.contract import DeployConfig
from manager_pipeline.errors import ManagerError
from manager_pipeline.pipeline.gate import ApplyRefused
from manager_pipeline.pipeline.prepare import Terraform
from manager_pipeline.plans import ApplyFacts, ApprovalRecord, Plan, Plans, PlanState, apply_requirements, sha256_file
from manager_pipeline.plans.approvals import ApprovalSource, review
from manager_pipeline.terraform import Workdir, mask_outputs
from manager_pipeline.terraform.errored import keep_errored_state
from manager_pipeline.terraform.plan import resources_by_type
from manager_pipeline.terraform.runner import LineSink

Audit = Callable[[Plan, list[ApprovalRecord]], None]


@dataclass(frozen=True)
class Checked:
    """A plan that may be applied now: who approved it, and the variables it stands for."""

    plan: Plan
    approvers: list[str]
    deploy_config: DeployConfig


def check_apply(
    plan: Plan,
    policy: EnvironmentPolicy,
    store: Plans,
    approvals: ApprovalSource | None,
    module_digest: str,
    current: tuple[DeployConfig | None, str | None],
    audit: Audit,
    now: float | None = None,
) -> Checked:
    """Refuse (``ApplyRefused``) unless the plan is untouched, newest, current, approved and young
    enough; a refusal that can never pass again refuses the plan for good. ``current``: the source's
    variables now (``read.current_variables``), or (None, None) for a destroy, which removes what its
    own variables built."""
    verdict = review(plan, policy, store, approvals)
    audit(plan, verdict.new)
    config, problem = current
    newest = store.newest_candidate(plan.source, plan.environment)
    refusals = apply_requirements(
        store.get(plan.plan_id),
        policy,
        ApplyFacts(
            plan_file_sha256=sha256_file(plan.plan_file) if plan.plan_file.exists() else "",
            newest_candidate=newest.plan_id if newest else None,
            module_digest=module_digest,
            variables_digest=plan.variables_digest if plan.destroy else (config.digest if config else None),
            variables_problem=problem,
            accepted_approvers=tuple(verdict.accepted),
            now=time.time() if now is None else now,
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
        raise ApplyRefused(f"apply of plan {plan.plan_id} refused:", texts)
    store.transition(plan.plan_id, PlanState.APPROVED, note=f"approved by {', '.join(verdict.accepted) or 'policy'}")
    # The variables now are the planned ones (same digest), so their notification settings hold.
    deploy_config = config if config is not None else DeployConfig.from_tfvars(plan.tfvars)
    return Checked(plan, list(verdict.accepted), deploy_config)


def _resources(runner) -> dict[str, int]:
    """What the state holds by type, for the UI: a listing that fails never fails an apply that succeeded."""
    try:
        return resources_by_type(runner.state_addresses())
    except ManagerError:
        return {}


class ApplyFailed(ManagerError):
    """Terraform's apply failed (``cause``); ``kept`` is the state it could not save, when it left one."""

    def __init__(self, cause: ManagerError, kept: Path | None):
        self.cause, self.kept = cause, kept
        super().__init__(str(cause))


@dataclass(frozen=True)
class ApplyResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # What the state holds after the apply, counted by resource type (names only).
    resources: dict[str, int] = field(default_factory=dict)


def apply_saved(
    terraform: Terraform,
    target: AwsTarget,
    workdir: Workdir,
    plan: Plan,
    store: Plans,
    run_id: str,
    *,
    on_line: LineSink | None = None,
) -> ApplyResult:
    """Apply exactly the saved plan: only from ``approved``, only the bytes that were planned, once.
    A failed apply marks the plan failed and keeps the state Terraform could not save (``ApplyFailed``);
    a run stopped from outside never leaves the plan ``applying``."""
    # Checked at the moment of use: the file handed to Terraform is the one that was planned.
    if sha256_file(plan.plan_file) != plan.plan_sha256:
        store.transition(plan.plan_id, PlanState.REFUSED, note="the plan file changed after it was planned")
        raise ManagerError(f"plan {plan.plan_id}: the plan file changed since it was planned; re-plan required")
    if not store.transition(plan.plan_id, PlanState.APPLYING, apply_run_id=run_id):
        current = store.get(plan.plan_id)
        raise ManagerError(
            f"plan {plan.plan_id} is {current.state.value}, not approved"
            + (f" (run {current.apply_run_id})" if current.apply_run_id else "")
            + ": it is applied once, by one run"
        )
    started = time.monotonic()
    try:
        with terraform.session(workdir.path, target, on_line) as (runner, _):
            runner.apply(plan.plan_file)
            outputs = mask_outputs(runner.outputs())
            resources = _resources(runner)
    except ManagerError as exc:
        store.transition(plan.plan_id, PlanState.FAILED, note=str(exc)[:500])
        kept = keep_errored_state(workdir.path, terraform.errored_states, plan.source, plan.environment)
        raise ApplyFailed(exc, kept) from exc
    except BaseException:
        # Stopped from outside (the run terminated, Ctrl-C): the plan is never left "applying".
        store.transition(plan.plan_id, PlanState.FAILED, note="the run was stopped during the apply")
        raise
    store.transition(plan.plan_id, PlanState.APPLIED)
    return ApplyResult(outputs=outputs, seconds=time.monotonic() - started, resources=resources)
