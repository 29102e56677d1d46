"""The approval audit trail in the Dagster instance: an event on the plan's run per decision."""

from __future__ import annotations

from dagster import DagsterInstance, MetadataValue
from dagster._core.events import EngineEventData

from manager_pipeline.approvals.records import ApprovalRecord, PlanRecord


def audit(instance: DagsterInstance, record: PlanRecord, approvals: list[ApprovalRecord]) -> None:
    """Each approval or refusal, on the run that made the plan (who, when, which plan, why)."""
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    for approval in approvals:
        verdict = "accepted" if approval.accepted else "refused"
        message = f"approval of plan {record.plan_id} by {approval.login} ({approval.via}): {verdict}"
        if approval.reason:
            message += f": {approval.reason}"
        metadata = {
            "plan_id": record.plan_id,
            "login": approval.login,
            "via": approval.via,
            "decision": verdict,
            "reason": approval.reason or "",
            "at": MetadataValue.timestamp(approval.at),
        }
        instance.report_engine_event(message, run, EngineEventData(metadata=metadata))
