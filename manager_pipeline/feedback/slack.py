"""Deploy notifications to a Slack incoming webhook: the one place that talks to Slack.

A source's ``notifications.slack_webhook`` is a secret (whoever holds the URL can post), so it
never reaches Terraform, is masked in everything else the run writes, and a failed post is
reported without the URL.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from manager_pipeline.contract.rules import SLACK_WEBHOOK_RULE, is_slack_webhook
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.redact import redact, register_secret
from manager_pipeline.settings import SlackSettings


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


# Slack asks a sender that posts too fast to wait (429 with Retry-After) and has its own outages (5xx): a few
# tries, waits of seconds, and then the run goes on without the message. Only answers are retried: a post
# that may have reached Slack (a dropped connection, a timeout) is not sent twice, and urllib3 would log the
# URL, whose path is the secret, on each such retry.
RETRY = Retry(
    total=2,
    connect=0,
    read=0,
    other=0,
    redirect=0,
    status=2,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"POST"}),
    backoff_factor=0.5,
    backoff_max=4.0,
    retry_after_max=5,
    raise_on_status=False,
    raise_on_redirect=False,
)


class _MachineTrust(HTTPAdapter):
    """Trusts the certificates this machine does (OpenSSL's, SSL_CERT_FILE), as Terraform and the AWS target
    do, beside requests' own bundle."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs.setdefault("ssl_context", ssl.create_default_context())
        super().init_poolmanager(*args, **kwargs)


class SlackSink:
    """Posts to incoming webhooks; never raises, never names the URL.

    Only to https://hooks.slack.com (the contract refuses any other URL; checked again here), never
    following a redirect. ``endpoint`` (``MANAGER_SLACK_URL``) is where that host is reached instead: a
    stand-in in tests."""

    def __init__(self, timeout_s: float = 5.0, retry: Retry = RETRY, endpoint: str | None = None):
        self.timeout_s, self.retry = timeout_s, retry
        self.endpoint = endpoint if endpoint is not None else SlackSettings.from_env().endpoint

    def post(self, webhook_url: str, payload: dict[str, Any]) -> str | None:
        """None when Slack took the message, else what went wrong (without the URL)."""
        if not is_slack_webhook(webhook_url):
            return f"the Slack webhook {SLACK_WEBHOOK_RULE}: nothing posted"
        if self.endpoint:
            webhook_url = self.endpoint.rstrip("/") + "/" + webhook_url.split("/", 3)[3]
        with requests.Session() as session:
            session.mount("https://", _MachineTrust(max_retries=self.retry))
            session.mount("http://", HTTPAdapter(max_retries=self.retry))
            try:
                response = session.post(webhook_url, json=payload, timeout=self.timeout_s, allow_redirects=False)
            except (requests.RequestException, OSError, ValueError) as exc:
                return f"Slack could not be reached ({type(exc).__name__})"
        if not response.ok or response.is_redirect:
            return f"Slack answered HTTP {response.status_code}"
        return None
