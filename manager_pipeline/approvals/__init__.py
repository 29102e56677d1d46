"""Whether a plan may be applied now, decided in one place."""

from manager_pipeline.approvals.gate import GateAction, GateDecision, decide

__all__ = ["GateAction", "GateDecision", "decide"]
