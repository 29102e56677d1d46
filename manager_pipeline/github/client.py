"""The one GitHub client: every call the manager makes to GitHub goes through ``GitHubClient``.

It is the only code that uses PyGithub. It holds the auth (a token, or a GitHub App
installation), the base URL (GitHub, GitHub Enterprise, or a stand-in), the timeouts and the
retry policy, and it answers in plain data (``Comment``, ``Review``, strings and numbers): no
PyGithub object and no ``GithubException`` leaves this module; a refusal by GitHub is a
``GitHubError`` carrying GitHub's status.

Its settings have one source, the Dagster ``GitHubResource`` (``defs/resources.py``), which
builds the client from its own fields; the secrets are never printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:  # PyGithub is imported when GitHub is first asked, not with the code location
    from github import Auth, GithubException

from manager_pipeline.errors import ManagerError

DEFAULT_API_URL = "https://api.github.com"
# GitHub refuses a commit status description longer than this.
STATUS_DESCRIPTION_LIMIT = 140
# A comparison listing this many files may be cut short by GitHub: the changed files are unknown.
_COMPARE_FILES_LIMIT = 300


class GitHubNotConfigured(ManagerError):
    """A source on GitHub, and no credentials to reach it."""


class GitHubError(ManagerError):
    """GitHub refused or could not answer a request; ``status`` is its HTTP status (None: unknown)."""

    def __init__(self, what: str, status: int | None, reason: str, not_found: bool = False):
        self.what, self.status, self.reason = what, status, reason
        self.not_found = not_found or status == 404
        super().__init__(f"{what}: GitHub answered {status} ({reason})")


class NotAFile(GitHubError):
    """The path asked for is a folder."""


@dataclass(frozen=True)
class Comment:
    """A comment on a pull request (issue) or on a commit."""

    id: int
    login: str | None
    body: str
    created_at: float  # seconds since the epoch; 0.0 when GitHub gave none
    edited: bool  # changed after it was posted


@dataclass(frozen=True)
class Review:
    """A pull request review."""

    id: int
    login: str | None
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, ...
    commit_id: str | None  # the commit that was reviewed
    body: str
    submitted_at: float = 0.0  # seconds since the epoch; 0.0 when GitHub gave none (a pending review)


@dataclass(frozen=True)
class Issue:
    """An open issue (pull requests, which GitHub lists as issues too, left out)."""

    number: int
    title: str
    body: str
    login: str | None = None  # who opened it


@lru_cache(maxsize=1)
def _retry_class() -> type:
    from github import GithubRetry

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

    return _Retry


def _seconds(value: datetime | None) -> float:
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _comment(comment) -> Comment:
    created, updated = _seconds(comment.created_at), _seconds(comment.updated_at)
    return Comment(
        id=comment.id,
        login=comment.user.login if comment.user else None,
        body=comment.body or "",
        created_at=created,
        edited=bool(created and updated > created),
    )


def _reason(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or exc.status)


@contextmanager
def _asking(what: str) -> Iterator[None]:
    """Turn PyGithub's exceptions into ``GitHubError`` (network errors pass through as they are)."""
    from github import GithubException, UnknownObjectException

    try:
        yield
    except GithubException as exc:
        raise GitHubError(
            what, exc.status, _reason(exc), not_found=isinstance(exc, UnknownObjectException)
        ) from None


class GitHubClient:
    """GitHub's REST API as the manager uses it: reads for sources, polling and approvals; writes for feedback.

    Build it with ``GitHubResource.client()``; the keyword arguments are that resource's fields.
    """

    def __init__(
        self,
        *,
        api_url: str,
        token: str | None,
        app_id: str | None,
        app_private_key: str | None,
        installation_id: int | None,
        timeout: float,
        retries: int,
        backoff: float,
        max_rate_limit_wait: float,
        throttle: bool,
    ) -> None:
        auth = self.credentials(token, app_id, app_private_key, installation_id)
        if auth is None:
            raise GitHubNotConfigured(
                "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and "
                "GITHUB_APP_INSTALLATION_ID"
            )
        from github import Auth, Github

        # The App's own auth (a JWT), for GET /app: an installation token may not ask who the App is.
        self._app_auth = Auth.AppAuth(app_id, app_private_key) if isinstance(auth, Auth.AppInstallationAuth) else None
        self._api_url, self._timeout = api_url.rstrip("/"), max(1, round(timeout))
        self._own_login: str | None = None
        retry = _retry_class()(
            total=retries,
            backoff_factor=backoff,
            secondary_rate_wait=min(60.0, max_rate_limit_wait),
            max_rate_limit_wait=max_rate_limit_wait,
        )
        self._github = Github(
            auth=auth,
            base_url=api_url.rstrip("/"),
            timeout=max(1, round(timeout)),
            retry=retry,
            # PyGithub's pacing (0.25 s between requests, 1 s between writes), which GitHub asks
            # integrations to keep to avoid secondary rate limits; off for stand-ins.
            seconds_between_requests=0.25 if throttle else None,
            seconds_between_writes=1.0 if throttle else None,
            per_page=100,
            lazy=True,
        )

    def __repr__(self) -> str:
        return f"GitHubClient({self._github.requester.base_url})"

    @staticmethod
    def credentials(
        token: str | None, app_id: str | None, app_private_key: str | None, installation_id: int | None
    ) -> Auth.Auth | None:
        """The auth these settings give (a token first, else an App installation), None without credentials."""
        from github import Auth

        if token:
            return Auth.Token(token)
        if app_id and app_private_key and installation_id:
            return Auth.AppAuth(app_id, app_private_key).get_installation_auth(installation_id)
        return None

    # --- reads: sources ---------------------------------------------------------------------

    def file_at(self, repo: str, path: str, sha: str) -> bytes:
        """The bytes of ``path`` at commit ``sha``; ``NotAFile`` for a folder."""
        with _asking(f"{path} at commit {sha}"):
            content = self._github.get_repo(repo).get_contents(path, ref=sha)
            if isinstance(content, list):
                raise NotAFile(f"{path} at commit {sha}", None, "a folder, not a file")
            return content.decoded_content

    def head_sha(self, repo: str, branch: str) -> str:
        """The commit ``branch`` points at now."""
        with _asking(f"branch `{branch}`"):
            # Asked directly: PyGithub puts the name in the path as it is, and GitHub's {branch} is one
            # segment (a branch `feature/x` is `feature%2Fx`).
            path = f"/repos/{repo}/branches/{quote(branch, safe='')}"
            _, data = self._github.requester.requestJsonAndCheck("GET", path)
            return data["commit"]["sha"]

    def tag_commit(self, repo: str, tag: str) -> str:
        """The commit ``tag`` names (an annotated tag's commit, not the tag object)."""
        with _asking(f"tag `{tag}`"):
            # Asked directly: a lazy PyGithub commit would take the ref in its URL for the sha.
            path = f"/repos/{repo}/commits/tags/{quote(tag, safe='')}"
            _, data = self._github.requester.requestJsonAndCheck("GET", path)
            return data["sha"]

    def pull_files(self, repo: str, number: int) -> tuple[str, ...] | None:
        """Files a pull request changes; None when GitHub cannot say."""
        from github import GithubException

        try:
            return tuple(f.filename for f in self._github.get_repo(repo).get_pull(number).get_files())
        except GithubException:
            return None

    def changed_files(self, repo: str, base: str, head: str) -> tuple[str, ...] | None:
        """Files changed from ``base`` to ``head``; None when GitHub cannot say (too many, or gone)."""
        from github import GithubException

        try:
            comparison = self._github.get_repo(repo).compare(base, head)
            files = [f.filename for f in comparison.files]
        except GithubException:
            return None
        return None if len(files) >= _COMPARE_FILES_LIMIT else tuple(files)

    # --- reads: pull requests, approvals --------------------------------------------------

    def pulls_of_commit(self, repo: str, sha: str) -> list[int]:
        """Numbers of the pull requests whose head is ``sha``."""
        with _asking(f"pull requests of commit {sha}"):
            return [pull.number for pull in self._github.get_repo(repo).get_commit(sha).get_pulls()]

    def reviews(self, repo: str, number: int) -> list[Review]:
        with _asking(f"reviews of pull request #{number}"):
            return [
                Review(
                    r.id, r.user.login if r.user else None, r.state, r.commit_id, r.body or "", _seconds(r.submitted_at)
                )
                for r in self._github.get_repo(repo).get_pull(number).get_reviews()
            ]

    def issue_comments(self, repo: str, number: int) -> list[Comment]:
        """The comments of a pull request (or issue), oldest first, every page."""
        with _asking(f"comments of #{number}"):
            return [_comment(c) for c in self._github.get_repo(repo).get_issue(number).get_comments()]

    def commit_comments(self, repo: str, sha: str) -> list[Comment]:
        with _asking(f"comments of commit {sha}"):
            return [_comment(c) for c in self._github.get_repo(repo).get_commit(sha).get_comments()]

    def commit_author(self, repo: str, sha: str) -> str | None:
        """The GitHub login of the commit's author; None when the commit is not linked to an account."""
        with _asking(f"commit {sha}"):
            commit = self._github.get_repo(repo).get_commit(sha)
            return commit.author.login if commit.author else None

    def in_team(self, login: str, team: str) -> bool:
        """Whether ``login`` is an active member of ``team`` (``org/slug``); an invitation not yet
        accepted is not membership.

        Asked as GitHub's description has it (GET /orgs/{org}/teams/{team_slug}/memberships/{username}):
        PyGithub's ``Team.has_in_members`` asks ``.../teams/{slug}/members/{username}``, which is not
        an operation of GitHub's REST API."""
        org, slug = team.split("/", 1)
        path = f"/orgs/{quote(org, safe='')}/teams/{quote(slug, safe='')}/memberships/{quote(login, safe='')}"
        with _asking(f"team {team}"):
            status, _, body = self._github.requester.requestJson("GET", path)
        if status != 200:
            return False  # 404: not a member (or no such team); as PyGithub's check, any refusal denies
        try:
            return json.loads(body).get("state") == "active"
        except (ValueError, AttributeError):
            return False

    # --- writes: feedback ------------------------------------------------------------------

    def create_status(self, repo: str, sha: str, context: str, state: str, description: str, target_url: str) -> None:
        """Set the commit status of ``context``; a description past GitHub's limit is shortened.

        The text must already be redacted (``feedback/github_items.py`` does it before any cut).
        """
        if len(description) > STATUS_DESCRIPTION_LIMIT:
            description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        with _asking(f"status of commit {sha}"):
            self._github.get_repo(repo).get_commit(sha).create_status(
                state=state, target_url=target_url, description=description, context=context
            )

    def create_issue_comment(self, repo: str, number: int, body: str) -> None:
        with _asking(f"comment on #{number}"):
            self._github.get_repo(repo).get_issue(number).create_comment(body)

    def create_commit_comment(self, repo: str, sha: str, body: str) -> None:
        with _asking(f"comment on commit {sha}"):
            self._github.get_repo(repo).get_commit(sha).create_comment(body)

    def edit_issue_comment(self, repo: str, comment_id: int, body: str) -> None:
        with _asking(f"edit of comment {comment_id}"):
            self._github.requester.requestJsonAndCheck(
                "PATCH", f"/repos/{repo}/issues/comments/{comment_id}", input={"body": body}
            )

    def delete_issue_comment(self, repo: str, comment_id: int) -> None:
        with _asking(f"deletion of comment {comment_id}"):
            self._github.requester.requestJsonAndCheck("DELETE", f"/repos/{repo}/issues/comments/{comment_id}")

    # --- writes: check runs (a GitHub App only; feedback/delivery.py) -----------------------

    def check_runs(self, repo: str, sha: str, name: str) -> list[CheckRun]:
        """This App's check runs named ``name`` on commit ``sha``, newest first, every one (not only the latest):
        another App's of the same name (which this one could not update) are left out."""
        path = f"/repos/{repo}/commits/{sha}/check-runs"
        parameters: dict[str, Any] = {"check_name": name, "filter": "all", "per_page": 100}
        if self._app_auth is not None and str(self._app_auth.app_id).isdigit():
            parameters["app_id"] = int(self._app_auth.app_id)
        with _asking(f"check runs of commit {sha}"):
            _, data = self._github.requester.requestJsonAndCheck("GET", path, parameters=parameters)
        return [_check_run(item) for item in data.get("check_runs") or []]

    def create_check_run(self, repo: str, body: dict[str, Any]) -> CheckRun:
        """POST /repos/{repo}/check-runs with ``body`` as GitHub documents it (name, head_sha, ...); a
        403 means the App may not write checks (``checks: write`` not granted)."""
        with _asking(f"new check run {body.get('name')} of commit {body.get('head_sha')}"):
            _, data = self._github.requester.requestJsonAndCheck("POST", f"/repos/{repo}/check-runs", input=body)
        return _check_run(data)

    def update_check_run(self, repo: str, check_run_id: int, body: dict[str, Any]) -> None:
        """PATCH a check run; the annotations of ``body.output`` are added to those it has."""
        with _asking(f"update of check run {check_run_id}"):
            self._github.requester.requestJsonAndCheck("PATCH", f"/repos/{repo}/check-runs/{check_run_id}", input=body)

    def permission(self, repo: str, login: str) -> str:
        """``login``'s permission on ``repo`` as GitHub states it: admin, write, read or none (maintain
        counts as write, triage as read); none for someone GitHub does not know."""
        path = f"/repos/{repo}/collaborators/{quote(login, safe='')}/permission"
        with _asking(f"permission of {login} on {repo}"):
            status, _, body = self._github.requester.requestJson("GET", path)
        if status == 404:
            return "none"
        if status >= 400:
            raise GitHubError(f"permission of {login} on {repo}", status, str(status))
        try:
            return str(json.loads(body).get("permission") or "none")
        except (ValueError, AttributeError):
            return "none"

    # --- writes: drift issues (feedback/drift_issue.py) ------------------------------------

    def open_issues(self, repo: str) -> list[Issue]:
        """The repository's open issues, every page; pull requests left out."""
        with _asking(f"open issues of {repo}"):
            return [
                Issue(issue.number, issue.title or "", issue.body or "", issue.user.login if issue.user else None)
                for issue in self._github.get_repo(repo).get_issues(state="open")
                if issue.pull_request is None
            ]

    def create_issue(self, repo: str, title: str, body: str) -> int:
        with _asking(f"new issue of {repo}"):
            return self._github.get_repo(repo).create_issue(title=title, body=body).number

    def edit_issue(self, repo: str, number: int, body: str | None = None, state: str | None = None) -> None:
        changes = {key: value for key, value in (("body", body), ("state", state)) if value is not None}
        with _asking(f"edit of issue #{number}"):
            self._github.requester.requestJsonAndCheck("PATCH", f"/repos/{repo}/issues/{number}", input=changes)

    # --- polling: conditional requests (an unchanged answer, 304, costs no rate limit) -------

    def get_if_changed(
        self, path: str, etag: str | None, parameters: dict[str, Any] | None = None
    ) -> tuple[bool, Any, str | None]:
        """(changed, JSON answer, ETag) of ``GET path``; unchanged since ``etag``: (False, None, etag)."""
        headers = {"If-None-Match": etag} if etag else {}
        status, response_headers, body = self._github.requester.requestJson("GET", path, parameters, headers)
        new_etag = next((v for k, v in response_headers.items() if k.lower() == "etag"), None)
        if status == 304:
            return False, None, etag
        if status >= 400:
            try:
                reason = json.loads(body).get("message") or str(status)
            except (ValueError, AttributeError):
                reason = str(status)
            raise GitHubError(f"GET {path}", status, reason)
        return True, json.loads(body) if body else None, new_etag

    def branch_head(self, repo: str, branch: str, etag: str | None) -> tuple[bool, str | None, str | None]:
        """(changed, head sha, etag) of a branch, asked conditionally; unchanged answers carry no sha."""
        changed, data, etag = self.get_if_changed(f"/repos/{repo}/branches/{quote(branch, safe='')}", etag)
        return (True, data["commit"]["sha"], etag) if changed else (False, None, etag)

    def token_login(self) -> str:
        """The login GitHub says this client's token belongs to (GET /user)."""
        with _asking("who the token belongs to"):
            return self._github.get_user().login

    def own_login(self) -> str:
        """The login GitHub shows on what this client writes: the token's user (GET /user), or for a
        GitHub App its bot, ``<app-slug>[bot]`` (GET /app, asked with the App's JWT). Asked once.

        Kept comments and issues are the manager's only when this login wrote them: a hidden marker
        alone is something anyone who can comment can type."""
        if self._own_login is None:
            if self._app_auth is None:
                self._own_login = self.token_login()
            else:
                from github import GithubIntegration

                with _asking("which GitHub App this is"):
                    app = GithubIntegration(
                        base_url=self._api_url, auth=self._app_auth, timeout=self._timeout
                    ).get_app()
                    self._own_login = f"{app.slug}[bot]"
        return self._own_login

    def open_pulls(self, repo: str, etag: str | None) -> tuple[bool, list[dict[str, Any]], str | None]:
        """(changed, open pull requests as number/sha/ref/author/head_repo/author_association, etag),
        asked conditionally."""
        changed, data, etag = self.get_if_changed(f"/repos/{repo}/pulls", etag, {"state": "open", "per_page": 100})
        if not changed:
            return False, [], etag
        return True, [_pull_fields(p) for p in data], etag

    def pull_request(self, repo: str, number: int) -> dict[str, Any]:
        """Pull request ``number`` as GitHub has it now, as number/sha/ref/author/head_repo/author_association
        (the fields ``open_pulls`` gives): what an OIDC delivery's unsigned body may not decide."""
        with _asking(f"pull request #{number} of {repo}"):
            _, data = self._github.requester.requestJsonAndCheck("GET", f"/repos/{repo}/pulls/{number}")
        return _pull_fields(data)

    # --- onboarding: the repository, its webhooks ------------------------------------------

    def repository(self, repo: str) -> Repository:
        """The repository's name as GitHub spells it, its default branch and web address."""
        with _asking(f"repository {repo}"):
            found = self._github.get_repo(repo, lazy=False)
            return Repository(found.full_name, found.default_branch, found.html_url or "")

    def hooks(self, repo: str) -> list[Hook]:
        """The repository's webhooks (GitHub answers 404 or 403 to a token that may not manage them)."""
        with _asking(f"webhooks of {repo}"):
            return [_hook(h) for h in self._github.get_repo(repo).get_hooks()]

    def create_hook(self, repo: str, url: str, secret: str, events: list[str] | tuple[str, ...]) -> Hook:
        """A new active `web` hook sending JSON to ``url``, signed with ``secret`` (never logged here)."""
        config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
        with _asking(f"new webhook of {repo}"):
            return _hook(self._github.get_repo(repo).create_hook("web", config, list(events), True))


@dataclass(frozen=True)
class CheckRun:
    """A check run as GitHub shows it: what finds it again (``external_id``) and where it stands."""

    id: int
    name: str
    external_id: str
    status: str  # queued, in_progress, completed
    app_id: int | None


def _check_run(data: dict[str, Any]) -> CheckRun:
    app = data.get("app") or {}
    return CheckRun(
        id=int(data["id"]),
        name=str(data.get("name") or ""),
        external_id=str(data.get("external_id") or ""),
        status=str(data.get("status") or ""),
        app_id=app.get("id") if isinstance(app, dict) else None,
    )


def _pull_fields(pull: dict[str, Any]) -> dict[str, Any]:
    head = pull["head"]
    return {
        "number": pull["number"],
        "sha": head["sha"],
        "ref": head["ref"],
        "author": (pull.get("user") or {}).get("login"),
        "head_repo": (head.get("repo") or {}).get("full_name"),
        "author_association": pull.get("author_association"),
    }


@dataclass(frozen=True)
class Repository:
    full_name: str
    default_branch: str
    html_url: str


@dataclass(frozen=True)
class Hook:
    """A repository webhook as GitHub shows it (the secret is never shown back)."""

    id: int
    url: str
    content_type: str
    events: tuple[str, ...]
    active: bool


def _hook(hook) -> Hook:
    config = hook.config or {}
    return Hook(
        id=hook.id,
        url=str(config.get("url") or ""),
        content_type=str(config.get("content_type") or "form"),
        events=tuple(hook.events or ()),
        active=bool(hook.active),
    )
