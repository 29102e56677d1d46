"""Deploy notifications to a Slack incoming webhook: the one place that talks to Slack.

A source's ``notifications.slack_webhook`` is a secret (whoever holds the URL can post), so it
never reaches Terraform, is masked in everything else the run writes, and a failed post is
reported without the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from manager_pipeline.feedback.outcome import Outcome, OutcomeStatus
from manager_pipeline.feedback.redact import redact, register_secret


@dataclass(frozen=True)
class NotifySettings:
    """Who hears about a run's end, from the source's ``notifications`` section."""

    on_success: bool = True
    on_failure: bool = True
    slack_channel: str | None = None
    slack_webhook: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Known from now on to every sink of this process, not only to the ones handed these settings.
        register_secret(self.slack_webhook)

    @classmethod
    def of(cls, notifications: dict[str, Any] | None, slack_webhook: str | None) -> NotifySettings:
        section = notifications or {}
        return cls(
            on_success=section.get("on_success", True),
            on_failure=section.get("on_failure", True),
            slack_channel=section.get("slack_channel"),
            slack_webhook=slack_webhook,
        )

    def wants(self, outcome: Outcome) -> bool:
        """Whether this outcome is one the source asked to hear about (applies and failures only)."""
        if outcome.status is OutcomeStatus.APPLIED:
            return self.on_success
        if outcome.status is OutcomeStatus.FAILED:
            return self.on_failure
        return False

    @property
    def secrets(self) -> list[str]:
        return [self.slack_webhook] if self.slack_webhook else []


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(
    outcome: Outcome, run_url: str, channel: str | None, secrets: list[str] | None = None
) -> dict[str, Any]:
    event = outcome.event
    if outcome.status is OutcomeStatus.FAILED:
        first = (outcome.error or "").strip().splitlines()
        text = f":x: {event.source} / {event.environment}: failed at {outcome.failed_stage}: {first[0] if first else ''}"
    else:
        summary = f" ({outcome.plan.summary.line()})" if outcome.plan else ""
        text = f":white_check_mark: {event.source} / {event.environment}: {outcome.headline}{summary}"
    payload: dict[str, Any] = {"text": f"{_escape(redact(text, secrets))} <{run_url}|run>"}
    if channel:
        payload["channel"] = channel
    return payload


class SlackSink:
    """Posts to incoming webhooks; never raises, never names the URL."""

    def __init__(self, timeout_s: float = 5.0):
        self.timeout_s = timeout_s

    def post(self, webhook_url: str, payload: dict[str, Any]) -> str | None:
        """None when Slack took the message, else what went wrong (without the URL)."""
        request = urllib.request.Request(
            webhook_url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            return f"Slack answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            return f"Slack could not be reached ({type(exc).__name__})"
