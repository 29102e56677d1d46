"""GitHub: the credentials, the App installation's permissions, each source and its webhook secret.

Every read goes through ``GitHubClient`` except the App's own installation, which GitHub shows only
to the App itself (a JWT, not the installation token the client holds): that one call is
``app_permissions``. Nothing here writes to a repository.
"""

from __future__ import annotations

from collections.abc import Mapping

from manager_pipeline.config.model import ManagerConfig, SourceSpec
from manager_pipeline.doctor.result import CheckResult, could_not_run, failed, ok
from manager_pipeline.errors import ManagerError
from manager_pipeline.github.client import GitHubClient, GitHubError

CREDENTIALS = "github credentials"
PERMISSIONS = "github permissions"
ORGANISATION_SECRET = "GITHUB_WEBHOOK_SECRET"

_LEVELS = {"read": 1, "write": 2, "admin": 3}
# What the manager does with each permission of its GitHub App (docs/setup.md lists the same).
NEEDED_PERMISSIONS: dict[str, tuple[str, str]] = {
    "contents": ("read", "to read variables files and commits"),
    "statuses": ("write", "to post commit statuses (the manager posts statuses; checks: write alone does not do)"),
    "pull_requests": ("write", "to read pull requests and reviews and comment on them"),
    "issues": ("write", "to comment and open drift issues"),
    "repository_hooks": ("write", "for add-source to create a repository's webhook"),
}
TEAM_PERMISSION = ("members", "read", "to check `org/team` approvers")


def github_sources(config: ManagerConfig) -> list[SourceSpec]:
    return [spec for spec in config.sources.values() if spec.repo]


def _unreachable(exc: BaseException) -> str:
    return f"cannot reach GitHub ({type(exc).__name__}); check GITHUB_API_URL and the network to it"


def _app_mode(resource) -> bool:
    return not resource._secret("token") and bool(resource.app_id)


def check_credentials(resource, config: ManagerConfig) -> CheckResult:
    """A token GitHub accepts, or an App installation it gives a token for."""
    if not resource.configured:
        if not github_sources(config):
            return ok(CREDENTIALS, "not needed: no source on GitHub")
        return failed(
            CREDENTIALS,
            "no GitHub credentials, and manager.yaml has sources on GitHub: set GITHUB_TOKEN, or GITHUB_APP_ID, "
            "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID (docs/setup.md, step 1)",
        )
    if _app_mode(resource):
        permissions = app_permissions(resource)
        if isinstance(permissions, CheckResult):
            return permissions
        return ok(CREDENTIALS, f"GitHub App {resource.app_id}, installation {resource.installation_id}")
    try:
        login = resource.client(quick=True).token_login()
    except GitHubError as exc:
        if exc.status == 401:
            return failed(CREDENTIALS, "GitHub refuses GITHUB_TOKEN (401 Bad credentials): make a new token and set it")
        return failed(CREDENTIALS, f"GitHub answered {exc.status} ({exc.reason}) for the token: check GITHUB_TOKEN")
    except OSError as exc:
        return could_not_run(CREDENTIALS, _unreachable(exc))
    return ok(CREDENTIALS, f"a token of `{login}`")


def app_permissions(resource) -> dict[str, str] | CheckResult:
    """The permissions of the App's installation, as GitHub gives them with an installation token."""
    from github import Auth, GithubException, GithubIntegration

    try:
        integration = GithubIntegration(
            auth=Auth.AppAuth(resource.app_id, resource._secret("app_private_key")),
            base_url=resource.api_url.rstrip("/"),
            timeout=max(1, round(resource.timeout)),
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        granted = integration.get_access_token(resource.installation_id)
    except GithubException as exc:
        if exc.status == 401:
            return failed(
                CREDENTIALS,
                f"GitHub refuses the App's key (401): check GITHUB_APP_ID ({resource.app_id}) and "
                "GITHUB_APP_PRIVATE_KEY",
            )
        if exc.status == 404:
            return failed(
                CREDENTIALS,
                f"GitHub App {resource.app_id} has no installation {resource.installation_id}: install the App on the "
                "organisation and set GITHUB_APP_INSTALLATION_ID to the installation's id",
            )
        return failed(CREDENTIALS, f"GitHub answered {exc.status} for the App's installation token")
    except (ValueError, TypeError) as exc:
        return failed(CREDENTIALS, f"GITHUB_APP_PRIVATE_KEY is not a usable PEM private key ({type(exc).__name__})")
    except OSError as exc:
        return could_not_run(CREDENTIALS, _unreachable(exc))
    return dict(granted.permissions or {})


def needed_permissions(config: ManagerConfig) -> dict[str, tuple[str, str]]:
    needed = dict(NEEDED_PERMISSIONS)
    if any("/" in approver for policy in config.environments.values() for approver in policy.approvers):
        needed[TEAM_PERMISSION[0]] = TEAM_PERMISSION[1:]
    return needed


def check_permissions(resource, config: ManagerConfig) -> CheckResult:
    """The App's installation grants what the manager does; a token's access is seen per source."""
    if not resource.configured:
        return ok(PERMISSIONS, "not needed: no GitHub credentials and no source on GitHub") if not github_sources(
            config
        ) else could_not_run(PERMISSIONS, "no GitHub credentials to ask with (see github credentials)")
    if not _app_mode(resource):
        return ok(PERMISSIONS, "a token: GitHub shows no permissions of it; each source's access is checked below")
    granted = app_permissions(resource)
    if isinstance(granted, CheckResult):
        return could_not_run(PERMISSIONS, "the App's installation could not be read (see github credentials)")
    missing = [
        f"{name}: {level} ({why})"
        for name, (level, why) in needed_permissions(config).items()
        if _LEVELS.get(granted.get(name, ""), 0) < _LEVELS[level]
    ]
    if missing:
        return failed(
            PERMISSIONS,
            f"the App's installation lacks {'; '.join(missing)}: grant it in the App's settings (Permissions) and "
            "accept the new permissions on the installation",
        )
    return ok(PERMISSIONS, "the App's installation grants " + ", ".join(f"{n}: {granted[n]}" for n in sorted(granted)))


def check_source(client: GitHubClient | None, spec: SourceSpec) -> CheckResult:
    """The source's repository is readable and holds its variables file at the head of its default branch."""
    name = f"source {spec.name}"
    if spec.path is not None:
        from manager_pipeline.sources import LocalSource

        try:
            LocalSource(spec).check_readable()
        except ManagerError as exc:
            return failed(name, str(exc))
        return ok(name, f"{spec.path}: {spec.variables_file} present")
    if client is None:
        return could_not_run(name, f"{spec.repo}: no GitHub credentials to read it with (see github credentials)")
    try:
        repository = client.repository(spec.repo)
    except GitHubError as exc:
        if exc.not_found or exc.status == 403:
            return failed(
                name,
                f"{spec.repo}: not readable with these credentials (GitHub answered {exc.status}): give the token "
                "access to it, or install the App on it",
            )
        return failed(name, f"{spec.repo}: GitHub answered {exc.status} ({exc.reason})")
    except OSError as exc:
        return could_not_run(name, _unreachable(exc))
    branch = spec.default_branch
    try:
        head = client.head_sha(spec.repo, branch)
    except GitHubError as exc:
        return failed(
            name,
            f"{spec.repo}: no branch `{branch}` ({exc.status}); set the source's default_branch (GitHub's is "
            f"`{repository.default_branch}`)",
        )
    try:
        client.file_at(spec.repo, spec.variables_file, head)
    except GitHubError as exc:
        if exc.not_found:
            return failed(
                name,
                f"{spec.repo}: no {spec.variables_file} at the head of `{branch}` ({head[:7]}): add it (check it with "
                "`manager-pipeline validate FILE`) or set the source's variables_file",
            )
        return failed(name, f"{spec.repo}: {spec.variables_file} not readable (GitHub answered {exc.status})")
    for trigger in spec.triggers:
        try:
            client.repository(trigger.repo)
        except GitHubError as exc:
            return failed(name, f"trigger repository {trigger.repo}: not readable ({exc.status}); give access to it")
    return ok(name, f"{spec.repo}@{branch} ({head[:7]}): {spec.variables_file} present")


def check_webhook_secret(spec: SourceSpec, env: Mapping[str, str], polling: bool) -> CheckResult:
    """Deliveries for the source can be verified: its own secret, the organisation's, or OIDC only."""
    name = f"webhook secret {spec.name}"
    for trigger in spec.triggers:
        if trigger.webhook_secret_env and not env.get(trigger.webhook_secret_env):
            return failed(
                name,
                f"trigger {trigger.repo}: webhook_secret_env names {trigger.webhook_secret_env}, which is not set "
                "for the receiver: set it to that repository's webhook secret",
            )
    if spec.auth == "oidc":
        return ok(name, "deliveries carry GitHub Actions OIDC tokens (auth: oidc): no secret needed")
    if spec.webhook_secret_env:
        if env.get(spec.webhook_secret_env):
            return ok(name, f"{spec.webhook_secret_env} is set (the repository's own secret)")
        return failed(
            name,
            f"webhook_secret_env names {spec.webhook_secret_env}, which is not set for the receiver: set it to the "
            f"secret of {spec.repo}'s webhook (add-source printed it), or remove webhook_secret_env",
        )
    if env.get(ORGANISATION_SECRET):
        return ok(name, f"{ORGANISATION_SECRET} is set (the organisation's or App's webhook)")
    if polling:
        return ok(name, "no webhook secret; MANAGER_POLLING=on polls GitHub instead")
    return failed(
        name,
        f"no secret verifies deliveries for {spec.repo}: set {ORGANISATION_SECRET} (the App's or organisation's "
        "webhook secret), give the source a webhook_secret_env, or set MANAGER_POLLING=on",
    )


def source_client(resource) -> GitHubClient | None:
    """A client that answers fast (``quick``: one retry, a short timeout): doctor asks once."""
    return resource.client(quick=True) if resource.configured else None
