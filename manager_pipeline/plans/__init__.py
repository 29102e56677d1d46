"""A saved plan's life, owned in one place: its files and row (store), its state machine,
what must hold before it is applied, who approved it, and the audit trail."""

from manager_pipeline.plans.record import Plan, PlanFacts
from manager_pipeline.plans.requirements import ApplyFacts, Refusal, apply_requirements
from manager_pipeline.plans.state import PlanState
from manager_pipeline.plans.store import ApprovalRecord, Plans, S3PlanFiles, sha256_file

__all__ = [
    "ApplyFacts",
    "ApprovalRecord",
    "Plan",
    "PlanFacts",
    "PlanState",
    "Plans",
    "Refusal",
    "S3PlanFiles",
    "apply_requirements",
    "sha256_file",
]
