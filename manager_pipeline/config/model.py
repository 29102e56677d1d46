"""What the rest of the manager uses of manager.yaml: the resolved, frozen values (``ManagerConfig``,
``SourceSpec``, ``EnvironmentPolicy``), paths resolved and the defaults that depend on other settings
filled in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Mapping

from manager_pipeline.errors import UnknownSourceError
from manager_pipeline.policy.rules import ChecksFile
from manager_pipeline.yamlfile import suggest

DEFAULT_ENVIRONMENTS = ("staging", "production")
DEFAULT_VARIABLES_FILE = "infra/variables.yml"
# When the drift check of an environment's partitions runs by default: daily, 06:00 UTC.
DEFAULT_DRIFT_SCHEDULE = "0 6 * * *"


@dataclass(frozen=True)
class EnvironmentPolicy:
    """How one environment may be deployed: decided here, checked in one place (approvals/)."""

    name: str
    auto_apply: bool = False
    apply_branches: tuple[str, ...] = ("main",)
    required_approvals: int = 0
    # GitHub logins, and `org/team` slugs whose members may approve.
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False
    max_plan_age_hours: float = 7 * 24
    # The environment's own AWS credentials; None: the manager's (the process's default credentials).
    aws: AwsAccess | None = None
    # The cron expression of its drift check (defs/drift.py); None: no scheduled check.
    drift_schedule: str | None = DEFAULT_DRIFT_SCHEDULE
    # Its policy checks as manager.yaml writes them (policy/rules.py resolves them); None: the defaults.
    checks: ChecksFile | None = None

    @property
    def gated(self) -> bool:
        return not self.auto_apply

    def for_destroy(self) -> EnvironmentPolicy:
        """A destroy is never applied unattended: it needs approval in every environment, auto_apply or not."""
        return replace(self, auto_apply=False, required_approvals=max(1, self.required_approvals))


@dataclass(frozen=True)
class AwsAccess:
    """Which AWS credentials one environment's runs use: a profile of the worker's AWS config, a role
    assumed with the worker's credentials (or the profile's), or both. Names and ARNs only, never keys."""

    profile: str | None = None
    role_arn: str | None = None

    @property
    def label(self) -> str:
        parts = ([f"profile `{self.profile}`"] if self.profile else []) + (
            [f"role {self.role_arn}"] if self.role_arn else []
        )
        return " and ".join(parts)


@dataclass(frozen=True)
class TriggerSpec:
    """An application repository whose pushes or releases start its infra source's runs."""

    repo: str
    # Glob patterns (`main`, `release/*`, `v*`) of the branches and tags that trigger.
    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # The environment variable holding the repository's own webhook secret (never the secret itself).
    webhook_secret_env: str | None = None

    def matches(self, ref: str) -> bool:
        """Whether a full ref (`refs/heads/main`, `refs/tags/v1.2.0`) triggers."""
        for prefix, patterns in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if ref.startswith(prefix):
                return any(fnmatchcase(ref.removeprefix(prefix), pattern) for pattern in patterns)
        return False


@dataclass(frozen=True)
class SourceSpec:
    """One source repository: where its variables come from and where it deploys."""

    name: str
    environments: tuple[str, ...]
    variables_file: str = DEFAULT_VARIABLES_FILE
    path: Path | None = None
    repo: str | None = None
    default_branch: str = "main"
    # The environment variable holding this source's webhook secret (never the secret itself).
    webhook_secret_env: str | None = None
    # How its deliveries authenticate: `any` (an OIDC token or an HMAC signature) or `oidc` (a token only).
    auth: str = "any"
    # Application repositories whose pushes or releases start this (infra) source's runs.
    triggers: tuple[TriggerSpec, ...] = ()

    def trigger_for(self, repo: str) -> TriggerSpec | None:
        return next((t for t in self.triggers if t.repo.lower() == repo.lower()), None)

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else f"github:{self.repo}"


@dataclass(frozen=True)
class ManagerConfig:
    path: Path
    sources: Mapping[str, SourceSpec]
    environments: Mapping[str, EnvironmentPolicy]
    terraform_dir: Path
    # sha256 of the file as read: which version of manager.yaml a decision was made under.
    digest: str = ""

    def source(self, name: str) -> SourceSpec:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            raise UnknownSourceError(
                f"unknown source `{name}`{suggest(name, self.sources)} (registered in {self.path.name}: {known})"
            ) from None

    def policy(self, environment: str, destroy: bool = False) -> EnvironmentPolicy:
        """The environment's policy; for a destroy plan, its stricter form (``for_destroy``)."""
        try:
            policy = self.environments[environment]
        except KeyError:
            known = ", ".join(self.environments)
            raise UnknownSourceError(
                f"unknown environment `{environment}`{suggest(environment, self.environments)} (known: {known})"
            ) from None
        return policy.for_destroy() if destroy else policy

    def check_partition(self, source: str, environment: str) -> SourceSpec:
        """The source, if it deploys to ``environment``; else an error saying what to fix."""
        spec = self.source(source)
        self.policy(environment)
        if environment not in spec.environments:
            raise UnknownSourceError(
                f"source `{source}` does not deploy to `{environment}` "
                f"(its environments: {', '.join(spec.environments)}); add it under the source in {self.path.name}"
            )
        return spec

    @cached_property
    def sources_by_repo(self) -> dict[str, tuple[SourceSpec, ...]]:
        """GitHub ``owner/name`` (lowercase) -> the sources that live in it."""
        found: dict[str, list[SourceSpec]] = {}
        for spec in self.sources.values():
            if spec.repo:
                found.setdefault(spec.repo.lower(), []).append(spec)
        return {repo: tuple(specs) for repo, specs in found.items()}

    @cached_property
    def sources_by_trigger(self) -> dict[str, tuple[SourceSpec, ...]]:
        """A trigger repository's ``owner/name`` (lowercase) -> the infra sources it triggers."""
        found: dict[str, list[SourceSpec]] = {}
        for spec in self.sources.values():
            for trigger in spec.triggers:
                found.setdefault(trigger.repo.lower(), []).append(spec)
        return {repo: tuple(specs) for repo, specs in found.items()}

    def partitions(self) -> list[tuple[str, str]]:
        return [(s.name, env) for s in self.sources.values() for env in s.environments]
