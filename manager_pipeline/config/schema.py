"""manager.yaml as written: pydantic models (``ManagerFile``, ``SourceFile``, ``PolicyFile``) that hold every
rule of the file and give its JSON Schema (``manager-pipeline schema --manager``), and turn a valid file
into the resolved values of ``model.py``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Mapping

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from manager_pipeline import durations
from manager_pipeline.config.cron import cron_problem
from manager_pipeline.config.model import (
    DEFAULT_DRIFT_SCHEDULE,
    DEFAULT_ENVIRONMENTS,
    DEFAULT_VARIABLES_FILE,
    AwsAccess,
    EnvironmentPolicy,
    ManagerConfig,
    SourceSpec,
    TriggerSpec,
)
from manager_pipeline.policy.rules import ChecksFile
from manager_pipeline.yamlfile import suggest

# Names end up in partition keys ("staging|name"), state keys and run tags.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_APPROVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9_.-]+)?$")
AUTH_MODES = ("any", "oidc")
_NAME_RULE = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"


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
    try:
        return durations.hours(text)
    except durations.DurationError:
        raise _fail(f"expected hours or days such as `12h` or `7d`, got {text!r}") from None


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
Duration = Annotated[
    str, BeforeValidator(_duration_text), AfterValidator(_duration), _pattern(re.compile(durations.PATTERN))
]


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
    checks: ChecksFile | None = Field(
        None,
        description="the policy checks of its plans (docs/policies.md): what is enforced or only warns, skips with "
        "reasons, the platform team's own policies; default: production enforces, others warn",
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

    def policy(self, name: str, root: Path | None = None) -> EnvironmentPolicy:
        explicit = "required_approvals" in self.model_fields_set
        checks = self.checks
        if checks is not None and checks.custom_policies and root is not None:
            # The platform team's own policies, found from wherever the run is: relative to manager.yaml.
            checks = checks.model_copy(update={"custom_policies": str((root / checks.custom_policies).resolve())})
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
            checks=checks,
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
        environments = {name: (settings or PolicyFile()).policy(name, root) for name, settings in raw.items()}
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
