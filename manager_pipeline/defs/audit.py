"""The approval audit trail in the Dagster instance: an event on the plan's run per decision."""

from __future__ import annotations

import datetime

from dagster import DagsterInstance

from manager_pipeline.plans.record import Plan
from manager_pipeline.plans.store import ApprovalRecord


def audit(instance: DagsterInstance, plan: Plan, approvals: list[ApprovalRecord]) -> None:
    """Each approval or refusal, on the run that made the plan: who, when, which plan, why."""
    run = instance.get_run_by_id(plan.run_id) if plan.run_id else None
    for approval in approvals:
        verdict = "accepted" if approval.accepted else "refused"
        when = datetime.datetime.fromtimestamp(approval.at, datetime.timezone.utc).isoformat(timespec="seconds")
        message = f"approval of plan {plan.plan_id} by {approval.login} ({approval.via}): {verdict}"
        if approval.reason:
            message += f": {approval.reason}"
        message += f" (at {when})"
        instance.report_engine_event(message, run)
