"""What a run tells the source repo: an Outcome, rendered as a report, sent to sinks."""

from manager_pipeline.feedback.local import LocalReportSink
from manager_pipeline.feedback.report import render_report
from manager_pipeline.outcome import Outcome, OutcomeStatus

__all__ = ["LocalReportSink", "Outcome", "OutcomeStatus", "render_report"]
