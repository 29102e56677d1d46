"""A new source's webhook on GitHub: the receiver's URL, the secret that signs it (a new one of the source's
own, or the organisation's), whether the manager's token may create it, and what to paste when it may not."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.onboarding.errors import OnboardingError
from manager_pipeline.onboarding.request import AddRequest
from manager_pipeline.settings import GitHubSettings

WEBHOOK_EVENTS = ("push", "pull_request", "issue_comment", "pull_request_review")
# How GitHub's webhook form names them ("Let me select individual events").
EVENT_TITLES = {
    "push": "Pushes",
    "pull_request": "Pull requests",
    "issue_comment": "Issue comments",
    "pull_request_review": "Pull request reviews",
}
ORGANISATION_SECRET = "GITHUB_WEBHOOK_SECRET"


def secret_env_name(name: str, taken: set[str] = frozenset()) -> str:
    """``WEB_WEBHOOK_SECRET`` for source `web`: the receiver's variable holding its own secret."""
    base = re.sub(r"[^A-Z0-9]", "_", name.upper())
    base = f"S_{base}" if base[:1].isdigit() else base
    candidate, count = f"{base}_WEBHOOK_SECRET", 1
    while candidate in taken:
        count += 1
        candidate = f"{base}_{count}_WEBHOOK_SECRET"
    return candidate


def webhook_url(given: str | None, settings: GitHubSettings | Mapping[str, str]) -> str | None:
    """The receiver's public URL: --webhook-url, else MANAGER_WEBHOOK_URL (of the GitHub settings, or of a
    mapping of variables); a bare host gets /webhooks/github."""
    from manager_pipeline.intake.receiver import PATH

    if not isinstance(settings, GitHubSettings):
        settings = GitHubSettings.from_env(settings)
    url = (given or settings.webhook_url or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OnboardingError(f"webhook URL {url!r} is not an http(s) URL such as https://manager.example.com{PATH}")
    return url.rstrip("/") + PATH if parts.path in ("", "/") else url


@dataclass
class _Webhook:
    """What add-source does about the repository's webhook."""

    url: str | None
    secret_env: str | None  # the variable whose value signs it
    own_secret: bool  # a new secret of the source's own (its NAME goes into manager.yaml)
    existing: object | None = None  # a Hook already sending to the URL
    cannot_manage: str | None = None  # why the token cannot create it (then: what to paste)


def plan_webhook(client, request: AddRequest, config: ManagerConfig, settings: GitHubSettings) -> _Webhook:
    from manager_pipeline.github.client import GitHubError

    url = webhook_url(request.webhook_url, settings)
    if request.org_secret:
        plan = _Webhook(url, ORGANISATION_SECRET, own_secret=False)
    else:
        taken = {s.webhook_secret_env for s in config.sources.values() if s.webhook_secret_env}
        plan = _Webhook(url, secret_env_name(request.name, taken | {ORGANISATION_SECRET}), own_secret=True)
    if url is None:
        plan.cannot_manage = "no webhook URL: give --webhook-url or set MANAGER_WEBHOOK_URL to have it created"
        return plan
    try:
        hooks = client.hooks(request.repo)
    except GitHubError as exc:
        if exc.status in (403, 404):
            plan.cannot_manage = (
                f"the manager's GitHub token may not manage webhooks of {request.repo} (GitHub answered {exc.status})"
            )
        else:
            plan.cannot_manage = (
                f"listing the webhooks of {request.repo} failed (GitHub answered {exc.status}: {exc.reason})"
            )
        return plan
    same = [h for h in hooks if h.url.rstrip("/") == url.rstrip("/")]
    if same:
        plan.existing, plan.secret_env, plan.own_secret = same[0], None, False
    elif request.org_secret and not request.dry_run and settings.webhook_secret is None:
        raise OnboardingError(
            f"--org-secret: {ORGANISATION_SECRET} is not set here, so the webhook cannot be given it; set it, or "
            "leave out --org-secret for a secret of the source's own"
        )
    return plan


def events_text(events) -> str:
    return ", ".join(events)


def _paste(out: Callable[[str], None], plan: _Webhook, repo: str, html_url: str) -> None:
    settings = f"{html_url.rstrip('/')}/settings/hooks/new" if html_url else f"the settings of {repo}, Webhooks"
    out(f"{plan.cannot_manage}; add it by hand at {settings}:")
    from manager_pipeline.intake.receiver import PATH

    out(f"  Payload URL:       {plan.url or 'https://<the receiver, reachable from GitHub>' + PATH}")
    out("  Content type:      application/json")
    out(f"  Secret:            the value of {plan.secret_env}" + (" (below)" if plan.own_secret else ""))
    out("  SSL verification:  enabled")
    out(f"  Events:            Let me select individual events: {', '.join(EVENT_TITLES[e] for e in WEBHOOK_EVENTS)}")
    out("  Active:            yes")


def describe_webhook(out, plan: _Webhook, repo: str, dry_run: bool = False, html_url: str = "") -> None:
    if plan.existing is not None:
        hook = plan.existing
        missing = [e for e in WEBHOOK_EVENTS if e not in hook.events and "*" not in hook.events]
        out(
            f"a webhook to {plan.url} already exists on {repo} (id {hook.id}); not creating a second. It signs "
            f"with the secret it was given: {ORGANISATION_SECRET}, or set `webhook_secret_env` on the source to "
            "the variable holding it"
            + (f"; it does not send {', '.join(missing)}: add them in its settings" if missing else "")
        )
    elif dry_run:
        if plan.cannot_manage is not None:
            out(f"would print what to paste in {repo}'s webhook settings ({plan.cannot_manage})")
        else:
            secret = f"a new secret in {plan.secret_env}" if plan.own_secret else plan.secret_env
            out(
                f"would create a webhook on {repo}: {plan.url} (application/json; events "
                f"{events_text(WEBHOOK_EVENTS)}), signed with {secret}"
            )
    elif plan.cannot_manage is not None:
        _paste(out, plan, repo, html_url)
