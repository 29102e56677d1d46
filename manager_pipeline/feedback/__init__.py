"""What a run tells the source repo: an Outcome, rendered as a report, sent to sinks."""

from manager_pipeline.feedback.local import LocalReportSink
from manager_pipeline.feedback.outcome import Outcome, OutcomeStatus
from manager_pipeline.feedback.report import render_report

__all__ = ["LocalReportSink", "Outcome", "OutcomeStatus", "render_report"]
