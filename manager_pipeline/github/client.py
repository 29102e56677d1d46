"""A PyGithub client with the manager's auth, timeouts and retry policy.

Auth is a token (``GITHUB_TOKEN``) or a GitHub App installation (``GITHUB_APP_ID``,
``GITHUB_APP_PRIVATE_KEY``, ``GITHUB_APP_INSTALLATION_ID``); the base URL comes from
``GITHUB_API_URL`` (GitHub Enterprise, or a stand-in). The secrets live in this settings
object only, which never prints them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from github import Auth, Github, GithubRetry

from manager_pipeline.errors import ManagerError

DEFAULT_API_URL = "https://api.github.com"


class GitHubNotConfigured(ManagerError):
    """A source on GitHub, and no credentials to reach it."""


class _Retry(GithubRetry):
    """GitHub's own retry policy (5xx, rate-limited 403s), plus 429 answers.

    A 429 without ``Retry-After`` is a primary rate limit: wait until ``X-RateLimit-Reset``.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        super().__init__(**kwargs)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and response.status == 429 and "Retry-After" not in response.headers:
            reset = response.headers.get("X-RateLimit-Reset", "")
            if reset.isdigit():
                wait = max(0.0, int(reset) - time.time()) + 1
                if self.max_rate_limit_wait is None or wait <= self.max_rate_limit_wait:
                    response.headers["Retry-After"] = str(int(wait))
        return super().increment(method, url, response, error, _pool, _stacktrace)


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    app_id: str | None = None
    app_private_key: str | None = field(default=None, repr=False)
    installation_id: int | None = None
    timeout: float = 15.0
    retries: int = 5
    backoff: float = 0.5
    max_rate_limit_wait: float = 300.0
    # PyGithub's pacing (0.25 s between requests, 1 s between writes), which GitHub asks
    # integrations to keep to avoid secondary rate limits; off for stand-ins.
    throttle: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.token or (self.app_id and self.app_private_key and self.installation_id))

    def auth(self) -> Auth.Auth:
        if self.token:
            return Auth.Token(self.token)
        if self.app_id and self.app_private_key and self.installation_id:
            return Auth.AppAuth(self.app_id, self.app_private_key).get_installation_auth(self.installation_id)
        raise GitHubNotConfigured(
            "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and "
            "GITHUB_APP_INSTALLATION_ID"
        )


def connect(settings: GitHubSettings) -> Github:
    retry = _Retry(
        total=settings.retries,
        backoff_factor=settings.backoff,
        secondary_rate_wait=min(60.0, settings.max_rate_limit_wait),
        max_rate_limit_wait=settings.max_rate_limit_wait,
    )
    return Github(
        auth=settings.auth(),
        base_url=settings.api_url.rstrip("/"),
        timeout=max(1, round(settings.timeout)),
        retry=retry,
        seconds_between_requests=0.25 if settings.throttle else None,
        seconds_between_writes=1.0 if settings.throttle else None,
        per_page=100,
        lazy=True,
    )
