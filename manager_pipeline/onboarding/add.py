"""`add-source`: register a source in one step.

``add_source`` checks everything before it writes: the name, the environments, the repository (its
default branch), the variables file at that branch's head against the contract, and the webhooks
the repository has. Then it writes manager.yaml and, with a token that may, creates the webhook
(signed with a new secret of the source's own: its environment variable's NAME goes into
manager.yaml, the value is printed once, to the operator); otherwise it prints what to paste in
the repository's webhook settings. For a repository it also prints the `gh api` command that makes
its default branch wait for the manager's check of each environment (onboarding/protection.py).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.config.model import DEFAULT_ENVIRONMENTS, ManagerConfig, SourceSpec
from manager_pipeline.config.schema import _NAME, _NAME_RULE, _REPO
from manager_pipeline.errors import ContractError, SourceError
from manager_pipeline.onboarding.errors import OnboardingError
from manager_pipeline.onboarding.manager_yaml import (
    NewSource,
    add_entry,
    check_added,
    default_environments,
    diff,
    read_manager,
    write_atomically,
)
from manager_pipeline.onboarding.protection import protection_lines
from manager_pipeline.onboarding.request import AddRequest
from manager_pipeline.onboarding.webhook import WEBHOOK_EVENTS, describe_webhook, events_text, plan_webhook
from manager_pipeline.settings import GitHubSettings
from manager_pipeline.yamlfile import YamlDocument, parse_yaml, suggest


def check_request(request: AddRequest, config: ManagerConfig, document: YamlDocument) -> tuple[str, ...] | None:
    """Everything wrong with the request that manager.yaml alone tells; the environments given, deduplicated."""
    name = request.name
    if not _NAME.match(name):
        raise OnboardingError(f"{name!r} is not a valid source name ({_NAME_RULE})")
    if name in config.sources:
        index = list(config.sources).index(name)
        place = document.place(("sources", index, "name"))
        where = f"{config.path.name}:{place.line}" if place else config.path.name
        raise OnboardingError(
            f"source `{name}` is already registered ({where}); choose another name, or "
            f"`manager-pipeline remove-source {name}` first"
        )
    if (request.repo is None) == (request.path is None):
        raise OnboardingError("give exactly one of --repo OWNER/NAME (GitHub) or --path FOLDER (a local checkout)")
    if request.repo is not None and not _REPO.match(request.repo):
        raise OnboardingError(f"--repo {request.repo!r} is not a GitHub `owner/name`")
    variables = Path(request.variables_file)
    if not request.variables_file or variables.is_absolute() or ".." in variables.parts:
        raise OnboardingError(
            f"--variables-file {request.variables_file!r} must be a relative path inside the repository"
        )
    if request.repo is not None:
        for spec in config.sources.values():
            if (spec.repo or "").lower() == request.repo.lower() and spec.variables_file == request.variables_file:
                raise OnboardingError(
                    f"{request.repo}:{request.variables_file} is already registered as source `{spec.name}`"
                )
    environments = None
    if request.environments is not None:
        environments = tuple(dict.fromkeys(e.strip() for e in request.environments if e.strip()))
        if not environments:
            raise OnboardingError("--environments names no environment")
        for environment in environments:
            if environment not in config.environments:
                raise OnboardingError(
                    f"unknown environment `{environment}`{suggest(environment, config.environments)} "
                    f"({config.path.name} defines: {', '.join(config.environments)})"
                )
    elif not default_environments(config):
        raise OnboardingError(
            f"{config.path.name} defines none of {', '.join(DEFAULT_ENVIRONMENTS)}; give --environments "
            f"(defined: {', '.join(config.environments)})"
        )
    return environments


@dataclass(frozen=True)
class _Variables:
    where: str
    warnings: tuple[str, ...]


def _check_variables(raw: bytes, origin: str, spec: SourceSpec, config: ManagerConfig) -> _Variables:
    """The contract's verdict on the file, for every environment the source deploys to."""
    from manager_pipeline.contract import check_document, contract_warnings, parse_variables, resolve
    from manager_pipeline.sources.document import decode_variables

    try:
        text = decode_variables(spec, raw)
    except SourceError as exc:
        raise OnboardingError(str(exc)) from None
    document = parse_variables(text, origin)
    data = check_document(document, list(config.environments), origin)
    problems = []
    for environment in spec.environments:
        try:
            resolve(data, environment, spec.name, origin)
        except ContractError as exc:
            problems += exc.problems
    if problems:
        raise ContractError(problems)
    return _Variables(origin, tuple(str(w) for w in contract_warnings(data, origin, document)))


def _github_failure(what: str, exc) -> OnboardingError:
    if exc.status in (401, 403):
        return OnboardingError(f"GitHub refused {what} ({exc.reason}); check the manager's GitHub credentials")
    return OnboardingError(f"{what} failed: GitHub answered {exc.status} ({exc.reason})")


def _check_repository(client, request: AddRequest, spec: SourceSpec, config: ManagerConfig):
    """(repository, head sha, verdict on its variables file); OnboardingError for an unknown repo or no file."""
    from manager_pipeline.github.client import GitHubError, NotAFile

    repo = request.repo
    try:
        info = client.repository(repo)
    except GitHubError as exc:
        if exc.not_found:
            raise OnboardingError(
                f"unknown repository `{repo}` on GitHub (or the manager's GitHub credentials cannot read it); "
                "check --repo"
            ) from None
        raise _github_failure(f"reading repository {repo}", exc) from None
    try:
        head = client.head_sha(repo, info.default_branch)
    except GitHubError as exc:
        raise _github_failure(f"reading branch `{info.default_branch}` of {repo}", exc) from None
    where = f"{repo}@{head[:12]}:{request.variables_file}"
    try:
        raw = client.file_at(repo, request.variables_file, head)
    except NotAFile:
        raise OnboardingError(f"{where} is a folder, not a variables file; check --variables-file") from None
    except GitHubError as exc:
        if exc.not_found:
            raise OnboardingError(
                f"{repo} has no {request.variables_file} at the head of `{info.default_branch}` ({head[:12]}); "
                "commit it there first, or give --variables-file"
            ) from None
        raise _github_failure(f"reading {where}", exc) from None
    spec = dataclasses.replace(spec, default_branch=info.default_branch)
    return info, head, _check_variables(raw, where, spec, config)


def _protection(out, repo: str, branch: str, environments, settings: GitHubSettings) -> None:
    """The branch protection to set (printed: it needs a repository admin; docs/operations.md)."""
    for line in protection_lines(repo, branch, environments, settings.app_id if not settings.token else None):
        out(line)


def add_source(
    request: AddRequest,
    config_path: Path,
    github: Callable[[], object] | None,
    out: Callable[[str], None] = print,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Register a source, check its repository and variables file, set up its webhook; see the module doc.

    ``github``: builds the ``GitHubClient`` (None: no credentials). Bad input raises OnboardingError
    (manager.yaml untouched); an invalid variables file raises ContractError.
    """
    settings = GitHubSettings.from_env(environ)
    original, text, config = read_manager(config_path)
    environments = check_request(request, config, parse_yaml(text, config_path.name))
    path = None
    if request.path is not None:
        folder = Path(request.path).absolute()
        path = os.path.relpath(folder, config.path.parent.absolute())
    entry = NewSource(request.name, request.repo, path, request.variables_file, environments)
    spec = entry.spec(config)
    plan = None
    if request.repo is not None:
        if github is None:
            raise OnboardingError(
                "add-source --repo reads the repository through GitHub: set GITHUB_TOKEN, or GITHUB_APP_ID, "
                "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID"
            )
        client = github()
        info, head, verdict = _check_repository(client, request, spec, config)
        out(f"{request.repo}: default branch `{info.default_branch}` at {head[:12]}")
        entry = dataclasses.replace(entry, default_branch=info.default_branch)
        if request.webhook:
            plan = plan_webhook(client, request, config, settings)
            if plan.own_secret:
                entry = dataclasses.replace(entry, webhook_secret_env=plan.secret_env)
    else:
        from manager_pipeline.sources import LocalSource

        try:
            LocalSource(spec).check_readable()
        except SourceError as exc:
            raise OnboardingError(str(exc)) from None
        local = LocalSource(spec).variables_path
        verdict = _check_variables(local.read_bytes(), str(local), spec, config)
    for warning in verdict.warnings:
        out(f"warning: {warning}")
    spec = entry.spec(config)
    out(f"{verdict.where} is valid for {', '.join(spec.environments)}")

    new_text = add_entry(text, entry, config_path.name)
    check_added(new_text, config, entry)
    partitions = ", ".join(f"{e}|{entry.name}" for e in spec.environments)
    if request.dry_run:
        out(diff(text, new_text, config_path.name).rstrip("\n"))
        out(f"dry run: would add source `{entry.name}` ({spec.location}; partitions {partitions}) to {config_path}")
        if request.repo is not None:
            _protection(out, request.repo, info.default_branch, spec.environments, settings)
        if plan is not None:
            describe_webhook(out, plan, request.repo, dry_run=True)
        return
    write_atomically(config_path, original, new_text)
    out(f"added source `{entry.name}` ({spec.location}; partitions {partitions}) to {config_path}")
    if request.repo is not None:
        _protection(out, request.repo, info.default_branch, spec.environments, settings)
    if request.repo is None:
        out("a local checkout: no webhook (runs read its working tree, or a commit given with --sha)")
        return
    if plan is None:
        out("no webhook (--no-webhook): deliveries come from a workflow, or polling (MANAGER_POLLING=on)")
        return
    organisation = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    secret = secrets.token_hex(32) if plan.own_secret else organisation
    if plan.existing is None and plan.cannot_manage is None:
        from manager_pipeline.github.client import GitHubError

        try:
            hook = client.create_hook(request.repo, plan.url, secret, WEBHOOK_EVENTS)
            out(
                f"created webhook {hook.id} on {request.repo}: {plan.url} (application/json; events "
                f"{events_text(WEBHOOK_EVENTS)}), signed with {plan.secret_env}"
            )
        except GitHubError as exc:
            plan.cannot_manage = (
                f"creating the webhook on {request.repo} failed (GitHub answered {exc.status}: {exc.reason})"
            )
    describe_webhook(out, plan, request.repo, html_url=info.html_url)
    if plan.own_secret:
        out(
            "Add this line to the webhook receiver's environment and restart it (`serve-webhooks`); until then "
            "the repository's deliveries, GitHub's first `ping` too, are refused (401: redeliver it from the "
            "webhook's settings). The secret is shown this once and kept nowhere else:"
        )
        out(f"  export {plan.secret_env}={secret}")
