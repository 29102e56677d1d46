"""manager.yaml -> ManagerConfig: the registered sources and each environment's policy.

Two layers. The file as written is described by pydantic models (``ManagerFile``,
``SourceFile``, ``PolicyFile``): they hold every rule of manager.yaml and give its JSON Schema
(``manager-pipeline schema --manager``). Every problem they find is reported at once, each
placed like variables.yml's: ``manager.yaml:LINE:COLUMN: key.path: what to change``. What the
rest of the manager uses are the resolved, frozen values: ``ManagerConfig``, ``SourceSpec`` and
``EnvironmentPolicy`` (paths resolved, defaults that depend on other settings filled in).
"""

from __future__ import annotations

import hashlib
import re
from fnmatch import fnmatchcase
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Mapping

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from manager_pipeline.cron import cron_problem
from manager_pipeline.errors import ConfigError, Problem, UnknownSourceError
from manager_pipeline.yamlfile import YamlDocument, parse_yaml, suggest

DEFAULT_ENVIRONMENTS = ("staging", "production")
DEFAULT_VARIABLES_FILE = "infra/variables.yml"
# When the drift check of an environment's partitions runs by default: daily, 06:00 UTC.
DEFAULT_DRIFT_SCHEDULE = "0 6 * * *"

# Names end up in partition keys ("staging|name"), state keys and run tags.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+$")
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([hd])$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_APPROVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9_.-]+)?$")
AUTH_MODES = ("any", "oidc")
_NAME_RULE = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"


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


# --- manager.yaml as written: pydantic models --------------------------------------------------


def _fail(message: str) -> PydanticCustomError:
    # Through the context: braces in the message (or in what the user wrote) stay as they are.
    return PydanticCustomError("manager", "{message}", {"message": message})


def _rule(check: Callable[[Any], bool], message: Callable[[Any], str]) -> AfterValidator:
    def validate(value: Any) -> Any:
        if not check(value):
            raise _fail(message(value))
        return value

    return AfterValidator(validate)


def _pattern(regex: re.Pattern[str]) -> Any:
    return Field(json_schema_extra={"pattern": regex.pattern})


def _known_environment(value: str, info: ValidationInfo) -> str:
    """A source's environment must be one `environments:` defines (told through the context)."""
    known = (info.context or {}).get("environments")
    if known is not None and value not in known:
        raise _fail(f"`{value}` is not defined under `environments:`{suggest(value, known)}")
    return value


def _duration_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise _fail(f"expected hours or days such as `12h` or `7d`, got {value!r}")
    return value


def _hours(text: str) -> float:
    match = _AGE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise _fail(f"expected hours or days such as `12h` or `7d`, got {text!r}")
    return float(match.group(1)) * (24 if match.group(2) == "d" else 1)


def _duration(text: str) -> str:
    _hours(text)
    return text


def _relative_inside(text: str) -> bool:
    return bool(text) and not Path(text).is_absolute() and ".." not in Path(text).parts


Text = Annotated[str, _rule(bool, lambda v: "expected a non-empty name"), Field(json_schema_extra={"minLength": 1})]
SourceName = Annotated[
    str, _rule(_NAME.match, lambda v: f"{v!r} is not a valid source name ({_NAME_RULE})"), _pattern(_NAME)
]
EnvironmentName = Annotated[
    str, _rule(_NAME.match, lambda v: f"{v!r} is not a valid environment name ({_NAME_RULE})"), _pattern(_NAME)
]
EnvironmentRef = Annotated[str, AfterValidator(_known_environment)]
Repo = Annotated[str, _rule(_REPO.match, lambda v: f"expected a GitHub `owner/name`, got {v!r}"), _pattern(_REPO)]
Approver = Annotated[
    str,
    _rule(_APPROVER.match, lambda v: f"{v!r} is neither a GitHub login nor an `org/team` slug"),
    _pattern(_APPROVER),
]
Duration = Annotated[str, BeforeValidator(_duration_text), AfterValidator(_duration), _pattern(_AGE)]


def _drift_schedule(value: Any) -> Any:
    """A cron expression, or `off` (YAML reads a bare `off` as false): False."""
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return False
    problem = cron_problem(value) if isinstance(value, str) else f"expected a cron expression or `off`, got {value!r}"
    if problem:
        raise _fail(problem)
    return value


DriftSchedule = Annotated[
    str | bool,
    BeforeValidator(_drift_schedule),
    Field(json_schema_extra={"anyOf": [{"type": "string"}, {"const": False}]}),
]
Approvals = Annotated[
    int,
    _rule(lambda v: 0 <= v <= 10, lambda v: f"expected a whole number from 0 to 10, got {v!r}"),
    Field(json_schema_extra={"minimum": 0, "maximum": 10}),
]


class _FileModel(BaseModel):
    """A mapping of manager.yaml: known keys only, YAML types as written (no "yes" for true)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    _expects: ClassVar[str] = "expected a mapping"

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise _fail(cls._expects)
        return data


_PROFILE = re.compile(r"^[A-Za-z0-9_.+=,@-]{1,64}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$")


class AwsAccessFile(_FileModel):
    """An environment's own AWS credentials (names only: the keys stay with the workers)."""

    _expects: ClassVar[str] = "expected a mapping such as `{profile: prod-deployer}` or `{role_arn: arn:aws:iam::...}`"

    profile: Annotated[
        str, _rule(_PROFILE.match, lambda v: f"{v!r} is not an AWS profile name (letters, digits, _.+=,@-)")
    ] | None = Field(None, description="a profile of the worker's AWS config (~/.aws/config or AWS_CONFIG_FILE)")
    role_arn: Annotated[
        str,
        _rule(_ROLE_ARN.match, lambda v: "expected an IAM role ARN such as arn:aws:iam::123456789012:role/deployer"),
        _pattern(_ROLE_ARN),
    ] | None = Field(None, description="a role assumed for the environment's runs (with the profile's credentials)")

    @model_validator(mode="after")
    def _something(self) -> AwsAccessFile:
        if not self.profile and not self.role_arn:
            raise _fail("give a `profile`, a `role_arn`, or both (the role is assumed with the profile's credentials)")
        return self

    def access(self) -> AwsAccess:
        return AwsAccess(profile=self.profile, role_arn=self.role_arn)


class PolicyFile(_FileModel):
    """How an environment may be deployed."""

    _expects: ClassVar[str] = "expected a mapping of settings such as `{auto_apply: true}`"

    auto_apply: bool = Field(False, description="apply after the plan without approval")
    apply_branches: list[Text] = Field(["main"], min_length=1, description="branches whose commits may apply")
    required_approvals: Approvals = Field(
        1, description="approvals a plan needs before it applies (default 1; 0 with `auto_apply: true`)"
    )
    approvers: list[Approver] = Field(
        [], min_length=1, description="GitHub logins and `org/team` slugs whose members may approve"
    )
    allow_self_approval: bool = Field(False, description="whether the author of a change may approve it")
    max_plan_age: Duration = Field("7d", description="how old a plan may be when it applies: `12h`, `7d`")
    aws: AwsAccessFile | None = Field(
        None,
        description="the environment's own AWS credentials (default: the manager's); only workers that hold them "
        "run its steps",
    )
    drift_schedule: DriftSchedule = Field(
        DEFAULT_DRIFT_SCHEDULE,
        description="when the drift check of its partitions runs: a cron expression (UTC), or `off`",
    )

    @model_validator(mode="after")
    def _approvals_fit_auto_apply(self) -> PolicyFile:
        if "required_approvals" not in self.model_fields_set:
            return self
        count = self.required_approvals
        if self.auto_apply and count:
            raise _fail("`auto_apply: true` applies without approval; drop `required_approvals`")
        if not self.auto_apply and not count:
            raise _fail(
                "`required_approvals: 0` would apply without approval; require 1 or more, or set `auto_apply: true`"
            )
        if count and not self.approvers:
            raise _fail(
                f"requires {count} approval(s) but names no `approvers`; list GitHub logins or `org/team` "
                "slugs, or set `auto_apply: true`"
            )
        return self

    def policy(self, name: str) -> EnvironmentPolicy:
        explicit = "required_approvals" in self.model_fields_set
        return EnvironmentPolicy(
            name=name,
            auto_apply=self.auto_apply,
            apply_branches=tuple(self.apply_branches),
            required_approvals=self.required_approvals if explicit else (0 if self.auto_apply else 1),
            approvers=tuple(self.approvers),
            allow_self_approval=self.allow_self_approval,
            max_plan_age_hours=_hours(self.max_plan_age),
            aws=self.aws.access() if self.aws else None,
            drift_schedule=self.drift_schedule or None,
        )


SecretEnv = Annotated[
    str,
    _rule(
        _ENV_NAME.match,
        # The value is not echoed: it may be the secret itself, pasted in the wrong place.
        lambda v: "expected the NAME of an environment variable holding the secret (A-Z, 0-9, _), not the secret",
    ),
    _pattern(_ENV_NAME),
]
RefPattern = Annotated[
    str,
    _rule(
        lambda v: bool(v) and not v.startswith("refs/"),
        lambda v: f"expected a branch or tag name or glob such as `main` or `v*`, got {v!r}",
    ),
]


class TriggerFile(_FileModel):
    """An application repository whose pushes (to `branches`, of `tags`) or published releases (of
    `tags`) start the source's runs."""

    _expects: ClassVar[str] = "expected a mapping such as `{repo: acme/web-app, branches: [main]}`"

    repo: Repo = Field(description="the application repository `owner/name`")
    branches: list[RefPattern] = Field([], description="branches whose pushes trigger: names or globs (`release/*`)")
    tags: list[RefPattern] = Field([], description="tags whose push or published release triggers: globs (`v*`)")
    webhook_secret_env: SecretEnv | None = Field(
        None,
        description=(
            "the environment variable (of the webhook receiver) holding this repository's own webhook secret "
            "(else GITHUB_WEBHOOK_SECRET, the organisation's hook)"
        ),
    )

    @model_validator(mode="after")
    def _something_triggers(self) -> TriggerFile:
        if not self.branches and not self.tags:
            raise _fail(
                "name the `branches` or `tags` (or both) whose pushes or releases trigger, e.g. `branches: [main]`"
            )
        return self

    def spec(self) -> TriggerSpec:
        return TriggerSpec(
            repo=self.repo,
            branches=tuple(self.branches),
            tags=tuple(self.tags),
            webhook_secret_env=self.webhook_secret_env,
        )


class SourceFile(_FileModel):
    """One source: a local checkout (`path`) or a GitHub repository (`repo`)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["path"]}, {"required": ["repo"]}]})
    _expects: ClassVar[str] = "expected a mapping with `name` and `path` or `repo`"

    name: SourceName = Field(description=f"the partition name: {_NAME_RULE}")
    path: Annotated[str, _rule(bool, lambda v: "expected a folder path")] | None = Field(
        None, description="a local checkout, relative to manager.yaml (read through git)"
    )
    repo: Repo | None = Field(None, description="a GitHub repository `owner/name`")
    variables_file: Annotated[
        str, _rule(_relative_inside, lambda v: f"expected a relative path inside the repository, got {v!r}")
    ] = Field(DEFAULT_VARIABLES_FILE, description="where variables.yml is inside the source")
    environments: list[EnvironmentRef] | None = Field(
        None,
        min_length=1,
        description=f"environments it deploys to (default: those of {list(DEFAULT_ENVIRONMENTS)} defined)",
    )
    default_branch: Text = Field("main", description="the branch polled and used when no commit is given")
    webhook_secret_env: SecretEnv | None = Field(
        None,
        description=(
            "the environment variable (of the webhook receiver) holding this repository's own webhook secret; "
            "deliveries for the repository verify with it (or with GITHUB_WEBHOOK_SECRET, the organisation's hook)"
        ),
    )
    auth: Annotated[
        str, _rule(lambda v: v in AUTH_MODES, lambda v: f"expected one of {', '.join(AUTH_MODES)}, got {v!r}")
    ] = Field(
        "any",
        json_schema_extra={"enum": list(AUTH_MODES)},
        description=(
            "how deliveries for the repository authenticate: `any` (a GitHub Actions OIDC token, or an HMAC "
            "signature) or `oidc` (a token only: signatures, even GITHUB_WEBHOOK_SECRET's, are refused)"
        ),
    )

    triggers: list[TriggerFile] | None = Field(
        None,
        min_length=1,
        description=(
            "application repositories whose pushes or releases start this source's runs (its variables are "
            "read at the head of its default branch; a GitHub source only)"
        ),
    )

    @model_validator(mode="after")
    def _one_location(self) -> SourceFile:
        if (self.path is None) == (self.repo is None):
            raise _fail("give exactly one of `path` (a local checkout) or `repo` (GitHub owner/name)")
        if self.triggers and self.repo is None:
            raise _fail("`triggers` need a GitHub source: use `repo:` (its statuses go to both repositories)")
        return self

    def spec(self, root: Path, defined: Mapping[str, Any]) -> SourceSpec:
        environments = (
            tuple(self.environments)
            if self.environments is not None
            else tuple(e for e in DEFAULT_ENVIRONMENTS if e in defined)
        )
        return SourceSpec(
            name=self.name,
            environments=environments,
            variables_file=self.variables_file,
            path=(root / self.path).resolve() if self.path is not None else None,
            repo=self.repo,
            default_branch=self.default_branch,
            webhook_secret_env=self.webhook_secret_env,
            auth=self.auth,
            triggers=tuple(t.spec() for t in self.triggers or ()),
        )


_DEFAULT_POLICIES = {"staging": {"auto_apply": True}, "production": {"auto_apply": False}}


class ManagerFile(_FileModel):
    """manager.yaml: the registered sources and each environment's policy."""

    model_config = ConfigDict(title="manager.yaml")
    _expects: ClassVar[str] = "expected a mapping with `sources:` and `environments:`"

    environments: dict[EnvironmentName, PolicyFile | None] | None = Field(
        None, description="environment name -> its policy (default: `staging: {auto_apply: true}`, gated `production`)"
    )
    sources: list[SourceFile] | None = Field(None, description="the source repositories that send variables")
    terraform_dir: Text = Field("terraform", description="the Terraform module, relative to manager.yaml")

    @field_validator("environments", mode="before")
    @classmethod
    def _a_mapping_of_environments(cls, value: Any) -> Any:
        if value is not None and (not isinstance(value, dict) or not value):
            raise _fail(
                "expected a mapping of environment names to their settings, such as `staging: {auto_apply: true}`"
            )
        return value

    @field_validator("sources", mode="before")
    @classmethod
    def _a_list_of_sources(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise _fail("expected a list of sources (`- name: ...` with `path:` or `repo:`)")
        return value

    @classmethod
    def check(cls, data: Any) -> ManagerFile:
        """Validated, or ValidationError listing every problem (the sources' environments included)."""
        raw = data.get("environments") if isinstance(data, dict) else None
        defined = _DEFAULT_POLICIES if raw is None else raw if isinstance(raw, dict) else None
        return cls.model_validate(data, context={"environments": list(defined) if defined is not None else None})

    def config(self, path: Path, digest: str = "") -> ManagerConfig:
        root = path.parent
        raw = self.environments if self.environments is not None else {
            name: PolicyFile.model_validate(settings) for name, settings in _DEFAULT_POLICIES.items()
        }
        environments = {name: (settings or PolicyFile()).policy(name) for name, settings in raw.items()}
        sources = {item.name: item.spec(root, environments) for item in self.sources or ()}
        return ManagerConfig(
            path=path,
            sources=sources,
            environments=environments,
            terraform_dir=(root / self.terraform_dir).resolve(),
            digest=digest,
        )


def manager_schema() -> dict[str, Any]:
    """The JSON Schema of manager.yaml (what `manager-pipeline schema --manager` prints)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **ManagerFile.model_json_schema()}


# --- problems, placed -------------------------------------------------------------------------


def _dotted(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping of manager.yaml may hold, for did-you-mean."""
    if not loc:
        model: type[BaseModel] = ManagerFile
    elif len(loc) == 2 and loc[0] == "sources":
        model = SourceFile
    elif len(loc) == 2 and loc[0] == "environments":
        model = PolicyFile
    elif len(loc) == 3 and loc[0] == "environments" and loc[2] == "aws":
        model = AwsAccessFile
    elif len(loc) == 4 and loc[0] == "sources" and loc[2] == "triggers":
        model = TriggerFile
    else:
        return []
    return list(model.model_fields)


def _got(value: Any) -> str:
    hint = f' (quote it: "{value}")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"got {value!r}{hint}"


def _explain(error: Mapping[str, Any]) -> tuple[tuple[Any, ...], str, bool]:
    """(where, what to change, placed at the key) for one pydantic error."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    if loc and loc[-1] == "[key]":
        return loc[:-1], error["msg"], True
    if kind == "extra_forbidden":
        return loc, f"unknown key `{loc[-1]}`{suggest(loc[-1], _keys_at(loc[:-1]))}", True
    if kind == "missing":
        return loc[:-1], f"`{loc[-1]}` is required", False
    if kind == "bool_type":
        return loc, f"expected true or false, {_got(value)}", False
    if kind == "int_type":
        return loc, f"expected a whole number, {_got(value)}", False
    if kind == "string_type":
        return loc, f"expected text, {_got(value)}", False
    if kind in ("list_type", "too_short"):
        example = f"; write [{value}]" if isinstance(value, str) and value else ""
        return loc, f"expected a non-empty list of names, got {value!r}{example}", False
    return loc, error["msg"], False


def _duplicates(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Sources registered twice (one name is one partition), each flagged after its first."""
    items = data.get("sources") if isinstance(data, dict) else None
    first: dict[str, int] = {}
    found = []
    for index, item in enumerate(items if isinstance(items, list) else ()):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            message = f"source `{name}` is defined twice (first as sources[{first[name]}])"
            found.append((("sources", index, "name"), message))
        else:
            first[name] = index
    return found


def _trigger_conflicts(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Trigger repositories that are a source's own repository (its pushes are a source's already), or
    named twice for one source."""
    items = data.get("sources") if isinstance(data, dict) else None
    items = [item if isinstance(item, dict) else {} for item in (items if isinstance(items, list) else ())]
    repos = {str(item["repo"]).lower(): item.get("name") for item in items if isinstance(item.get("repo"), str)}
    found = []
    for index, item in enumerate(items):
        triggers = item.get("triggers")
        seen: set[str] = set()
        for position, trigger in enumerate(triggers if isinstance(triggers, list) else ()):
            repo = trigger.get("repo") if isinstance(trigger, dict) else None
            if not isinstance(repo, str):
                continue
            loc = ("sources", index, "triggers", position, "repo")
            if repo.lower() in repos:
                found.append((loc, f"{repo} is the repository of source `{repos[repo.lower()]}`; a trigger repository "
                                   "holds no variables of its own: remove the trigger or that source"))
            elif repo.lower() in seen:
                found.append((loc, f"{repo} is named twice; give it one entry with all its `branches` and `tags`"))
            seen.add(repo.lower())
    return found


def check_document(document: YamlDocument, origin: str = "manager.yaml") -> ManagerFile:
    """The validated file, or ConfigError listing every problem at its line and column."""
    data = {} if document.data is None else document.data
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str, at_key: bool = False) -> None:
        place = document.place(loc, key=at_key)
        problems.append(
            Problem(_dotted(loc), message, origin, place.line if place else None, place.column if place else None)
        )

    model = None
    try:
        model = ManagerFile.check(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            add(*_explain(error))
    for loc, message in _duplicates(data) + _trigger_conflicts(data):
        add(loc, message)
    if problems:
        raise ConfigError(problems=sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path)))
    assert model is not None
    return model


def parse_config(text: str | bytes, path: Path) -> ManagerConfig:
    """ManagerConfig, or YamlError (not YAML) / ConfigError (every problem, placed)."""
    document = parse_yaml(text, str(path))
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return check_document(document, path.name).config(path, hashlib.sha256(raw).hexdigest())


def load_config(path: Path) -> ManagerConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; create manager.yaml or point MANAGER_CONFIG at one") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder; point MANAGER_CONFIG at the manager.yaml file in it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check MANAGER_CONFIG") from None
    return parse_config(text, path)
