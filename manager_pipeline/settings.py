"""The manager's settings, from the environment: the one reader of it (tests/unit/test_settings.py
fails when another module starts to read ``os.environ``).

Everything has a default that makes the embedded set-up work from a clone: the state of the
manager (Dagster instance, working directories, plan artifacts, reports, the local AWS stand-in's
pid file) lives under ``.manager/`` beside manager.yaml. The variables keep the names docs/operations.md
documents; they are grouped here by whom they concern (``settings.aws``, ``settings.github``,
``settings.oidc``, ``settings.celery``, ``settings.retention``, ``settings.approvers``), and where
things live is on the object itself (``settings.config_path``, ``settings.dagster_home``, ...).

An empty variable is an unset one. A value that does not fit is a ``SettingsError`` of one line
naming the variable and what to put there; a secret (``SecretStr``) is never part of a message or a
repr.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from manager_pipeline import durations
from manager_pipeline.errors import ConfigError

AwsMode = Literal["local", "endpoint", "aws"]

DEFAULT_STATE_BUCKET = "manager-pipeline-state"
DEFAULT_REGION = "us-east-1"
EXECUTORS = ("in_process", "celery")
HANDOFFS = ("memory", "database", "s3")
DEFAULT_CELERY_BROKER = "pyamqp://guest@127.0.0.1:5672//"
DEFAULT_CELERY_BACKEND = "redis://127.0.0.1:6379/0"
# A worker's environments reach its pool processes through this variable (``hand_down_worker``).
WORKER_ENVIRONMENTS = "MANAGER_WORKER_ENVIRONMENTS"
# Set but empty still means something for these: a worker for no environment is not "not a worker".
_EMPTY_IS_A_VALUE = frozenset({WORKER_ENVIRONMENTS})


class SettingsError(ConfigError, ValueError):
    """A variable whose value does not fit: one line naming it and what to put there."""


# --- the kinds of value --------------------------------------------------------------------------


class _Unfit(ValueError):
    """A value its setting cannot take; ``line(name, raw)`` says so once the variable's name is known."""

    def __init__(self, line: Callable[[str, str], str]):
        super().__init__("does not fit")
        self.line = line


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def _set_it_to(what: str) -> Callable[[str, str], str]:
    return lambda name, raw: f"{name}={_shown(raw)} is not valid: set it to {what}, or leave it unset"


def _number(kind: type, minimum: float, what: str) -> BeforeValidator:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            number = kind(value.strip())
        except ValueError:
            raise _Unfit(_set_it_to(what)) from None
        if not math.isfinite(number) or number < minimum:
            raise _Unfit(_set_it_to(what))
        return number

    return BeforeValidator(parse)


SWITCH = {"on": True, "1": True, "true": True, "yes": True, "off": False, "0": False, "false": False, "no": False}


def switch(what: str = "on or off") -> BeforeValidator:
    """On or off, written ``on/off``, ``1/0``, ``true/false`` or ``yes/no`` in any case."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().lower() not in SWITCH:
            raise _Unfit(_set_it_to(what))
        return SWITCH[value.strip().lower()]

    return BeforeValidator(parse)


def _one_of(*allowed: str) -> BeforeValidator:
    def parse(value: Any) -> Any:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in allowed:
            choices = " or ".join(repr(a) for a in allowed)
            raise _Unfit(lambda name, raw: f"{name} must be {choices}, not {text!r}")
        return text

    return BeforeValidator(parse)


def _matching(pattern: str, what: str) -> BeforeValidator:
    def parse(value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(pattern, value.strip()):
            raise _Unfit(_set_it_to(what))
        return value.strip() if isinstance(value, str) else value

    return BeforeValidator(parse)


def _duration(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return durations.hours(value, bare_hours=True)
    except durations.DurationError:
        raise _Unfit(
            lambda name, raw: (
                f"{name}={raw!r} is not a duration: give hours or days above zero, e.g. {durations.EXAMPLES}"
            )
        ) from None


def _names(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return tuple(name for name in (part.strip() for part in value.split(",")) if name)


Hours = Annotated[float, BeforeValidator(_duration)]
Switch = Annotated[bool, switch()]


def _one_line(error: ValidationError) -> str:
    """The problems of ``error`` in one line, each naming its variable; never a value that may be secret."""
    lines = []
    for problem in error.errors(include_url=False):
        cause = (problem.get("ctx") or {}).get("error")
        name = str(problem["loc"][-1]) if problem["loc"] else "a setting"
        if isinstance(cause, _Unfit):
            lines.append(cause.line(name, str(problem["input"])))
        elif isinstance(cause, ValueError):
            lines.append(str(cause))
        else:
            lines.append(f"{name} is not valid: {problem['msg']}")
    return "; ".join(lines)


def _variables(env: Mapping[str, str]) -> dict[str, str]:
    """The set variables of ``env``. Only names with no lowercase letter: a field's own name (``token``,
    ``region``) is never taken for a variable of the same name."""
    return {
        name: value
        for name, value in env.items()
        if not any(c.islower() for c in name) and (value != "" or name in _EMPTY_IS_A_VALUE)
    }


class _Group(BaseModel):
    """A group of settings; each field names its variable (``validation_alias``)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None):
        """This group alone, for a caller that needs no other; ``Settings.from_env`` reads them all."""
        try:
            return cls.model_validate(_variables(os.environ if env is None else env))
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None


# --- the groups ----------------------------------------------------------------------------------


class AwsSettings(_Group):
    """Which AWS the manager talks to, and its buckets.

    ``local``: the embedded moto server, started on demand (the default).
    ``endpoint``: another AWS-compatible endpoint (``AWS_ENDPOINT_URL``).
    ``aws``: real AWS, only when ``MANAGER_AWS=aws`` says so explicitly.
    """

    mode: AwsMode = "local"
    endpoint_url: str | None = Field(None, validation_alias="AWS_ENDPOINT_URL")
    region: str = Field(DEFAULT_REGION, validation_alias=AliasChoices("TF_STATE_REGION", "AWS_REGION"))
    state_bucket: str = Field(DEFAULT_STATE_BUCKET, validation_alias="TF_STATE_BUCKET")
    # Where saved plans (and values handed between steps, and kept errored states) travel between machines.
    artifact_bucket: str | None = Field(None, validation_alias="PLAN_ARTIFACT_BUCKET")

    @model_validator(mode="before")
    @classmethod
    def _mode(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "mode" in data:
            return data
        explicit = str(data.get("MANAGER_AWS", "")).strip().lower()
        if explicit not in ("", "local", "aws"):
            raise ValueError(f"MANAGER_AWS must be 'local' or 'aws', not {explicit!r}")
        if explicit == "aws" and not data.get("TF_STATE_BUCKET"):
            raise ValueError("MANAGER_AWS=aws needs TF_STATE_BUCKET: the S3 bucket that holds Terraform state")
        mode = "aws" if explicit == "aws" else "endpoint" if data.get("AWS_ENDPOINT_URL") else "local"
        return {**data, "mode": mode}


class GitHubSettings(_Group):
    """How the manager reaches GitHub, and the secret GitHub signs its deliveries with.

    Unset (None): ``GitHubResource``'s default, which stays its only declaration."""

    api_url: str | None = Field(None, validation_alias="GITHUB_API_URL")
    token: SecretStr | None = Field(None, validation_alias="GITHUB_TOKEN")
    app_id: str | None = Field(None, validation_alias="GITHUB_APP_ID")
    app_private_key: SecretStr | None = Field(None, validation_alias="GITHUB_APP_PRIVATE_KEY")
    installation_id: Annotated[int | None, _number(int, 1, "the GitHub App installation's id, e.g. 12345678")] = Field(
        None, validation_alias="GITHUB_APP_INSTALLATION_ID"
    )
    timeout: Annotated[float | None, _number(float, 0.001, "a number of seconds, e.g. 15 (no unit)")] = Field(
        None, validation_alias="GITHUB_TIMEOUT"
    )
    retries: Annotated[int | None, _number(int, 0, "a whole number of retries, e.g. 5 (0: none)")] = Field(
        None, validation_alias="GITHUB_RETRIES"
    )
    backoff: Annotated[float | None, _number(float, 0, "a number of seconds, e.g. 0.5 (no unit)")] = Field(
        None, validation_alias="GITHUB_RETRY_BACKOFF"
    )
    max_rate_limit_wait: Annotated[float | None, _number(float, 0, "a number of seconds, e.g. 300 (no unit)")] = Field(
        None, validation_alias="GITHUB_MAX_RATE_LIMIT_WAIT"
    )
    throttle: Annotated[bool | None, switch("on or off (off only for a stand-in)")] = Field(
        None, validation_alias="GITHUB_THROTTLE"
    )
    # The organisation's (or GitHub App's) webhook secret; a source may name one of its own in manager.yaml.
    webhook_secret: SecretStr | None = Field(None, validation_alias="GITHUB_WEBHOOK_SECRET")
    # The receiver's public URL, for the webhooks `add-source` creates.
    webhook_url: str | None = Field(None, validation_alias="MANAGER_WEBHOOK_URL")
    # The manager's own repository (owner/name): the only one a fleet run's blast-radius summary is
    # posted to; a run's config may name any pull request, so none elsewhere. Unset: none is posted.
    manager_repository: Annotated[
        str | None, _matching(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "owner/name, e.g. acme/manager-pipeline")
    ] = Field(None, validation_alias="MANAGER_REPOSITORY")


class SlackSettings(_Group):
    """Where https://hooks.slack.com is reached: Slack itself, unless a stand-in is named (tests)."""

    endpoint: str | None = Field(None, validation_alias="MANAGER_SLACK_URL")


class OidcSettings(_Group):
    """Whose GitHub Actions OIDC tokens the receiver takes. Unset: ``OidcVerifier``'s defaults (GitHub's
    issuer, the audience ``manager-pipeline``)."""

    issuer: str | None = Field(None, validation_alias="MANAGER_OIDC_ISSUER")
    audience: str | None = Field(None, validation_alias="MANAGER_OIDC_AUDIENCE")


class CelerySettings(_Group):
    """Where steps run (this process, or Celery workers) and how op values reach the next step."""

    executor: Annotated[str, _one_of(*EXECUTORS)] = Field("in_process", validation_alias="MANAGER_EXECUTOR")
    # Default: in memory in one process, through the database across machines.
    handoff: Annotated[str, _one_of(*HANDOFFS)] = Field("memory", validation_alias="MANAGER_HANDOFF")
    broker: str = Field(DEFAULT_CELERY_BROKER, validation_alias="MANAGER_CELERY_BROKER")
    backend: str = Field(DEFAULT_CELERY_BACKEND, validation_alias="MANAGER_CELERY_BACKEND")
    # Signs every value handed on through the database or S3 (HMAC-SHA256); a value that fails is
    # refused. Held by the code location and the workers only, never by the webhook receiver, which
    # reaches the same database.
    handoff_key: SecretStr | None = Field(None, validation_alias="MANAGER_HANDOFF_KEY")
    # A Celery worker's environments (`manager-pipeline worker --environments`): the only ones whose
    # credentials it holds, so the only ones whose steps it runs. None: not a worker.
    worker_environments: Annotated[tuple[str, ...] | None, BeforeValidator(_names)] = Field(
        None, validation_alias=WORKER_ENVIRONMENTS
    )

    @model_validator(mode="before")
    @classmethod
    def _handoff_default(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "MANAGER_HANDOFF" in data or "handoff" in data:
            return data
        executor = str(data.get("MANAGER_EXECUTOR", data.get("executor", "in_process"))).strip().lower()
        return {**data, "MANAGER_HANDOFF": "memory" if executor == "in_process" else "database"}


class RetentionSettings(_Group):
    """How long what a run leaves behind is kept."""

    # Working directories hold the values Terraform was given.
    workdir_hours: Hours = Field(7 * 24.0, validation_alias="MANAGER_WORKDIR_RETENTION")
    # The files of a plan that can never be applied again, after its last change.
    plan_hours: Hours = Field(30 * 24.0, validation_alias="MANAGER_PLAN_RETENTION")


class ApproverSettings(_Group):
    """Who approves from this machine's CLI: the operator's own GitHub token, verified by GitHub."""

    token: SecretStr | None = Field(None, validation_alias="MANAGER_APPROVER_TOKEN")


# --- all of them ---------------------------------------------------------------------------------


class NamedSecrets(Mapping[str, str]):
    """Secrets manager.yaml names by their variable (a source's or a trigger's ``webhook_secret_env``),
    looked up in the environment the settings were read from. Its repr shows no value."""

    def __init__(self, env: Mapping[str, str]):
        self._env = env

    def __getitem__(self, name: str) -> str:
        return self._env[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)

    def __repr__(self) -> str:
        return f"NamedSecrets({len(self._env)} variables)"


class _Environment(PydanticBaseSettingsSource):
    """The process's whole environment as one mapping: the variables' names are irregular
    (``TF_STATE_BUCKET``, ``GITHUB_TOKEN``, ``MANAGER_AWS``), so each group takes its own from it."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str] | None = None):
        super().__init__(settings_cls)
        self.env = os.environ if env is None else env

    def get_field_value(self, field, field_name):
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.env)


DEFAULT_UI = "http://127.0.0.1:3000"
# Where `manager-pipeline ui` last served the UI (its --port): the links every command prints follow it.
UI_ADDRESS_FILE = "ui-address"


def _ui_address(home: Path) -> str | None:
    try:
        text = (home / UI_ADDRESS_FILE).read_text().strip()
    except OSError:
        return None
    return text if text.startswith(("http://", "https://")) else None


class Settings(BaseSettings):
    """Every setting of the manager: ``Settings.from_env()`` (the process's environment) or
    ``Settings.from_env(mapping)``."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    config_path: Path
    home: Path
    dagster_home: Path
    tools_dir: Path
    terraform_bin: Path | None = None
    webserver_url: str = "http://127.0.0.1:3000"
    # `proxy`: an authenticating proxy fronts the UI (docs/setup.md); only then may `ui` listen beyond loopback.
    ui_auth: Annotated[str, _one_of("", "proxy")] = Field("", validation_alias="MANAGER_UI_AUTH")
    providers: Annotated[str, _one_of("mirror", "registry")] = Field("mirror", validation_alias="MANAGER_PROVIDERS")
    provider_server: Switch = Field(True, validation_alias="MANAGER_PROVIDER_SERVER")
    # May hold a password (postgresql://user:password@host/db): kept out of the repr and of dumps. A str,
    # not a SecretStr, because every store opens it as it stands (SQLAlchemy masks it in its own messages).
    database_url: str = Field("", repr=False, exclude=True)
    polling: Switch = Field(False, validation_alias="MANAGER_POLLING")
    # Terraform's -lock-timeout, in Terraform's own grammar (60s, 5m).
    lock_timeout: str = Field("60s", validation_alias="MANAGER_LOCK_TIMEOUT")
    aws: AwsSettings
    github: GitHubSettings
    oidc: OidcSettings
    celery: CelerySettings
    retention: RetentionSettings
    approvers: ApproverSettings
    _environment: Mapping[str, str] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, _Environment(settings_cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        try:
            # Only this mapping (not the process's environment under it): tests build settings from a dict.
            settings = cls() if env is None else cls(_build_sources=((_Environment(cls, env),), {}))
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None
        settings._environment = os.environ if env is None else env
        return settings

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        env = _variables(data)
        config_path = Path(env.get("MANAGER_CONFIG") or "manager.yaml").absolute()
        home = Path(env.get("MANAGER_HOME") or config_path.parent / ".manager").absolute()
        dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").absolute()
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return {
            **env,
            "config_path": config_path,
            "home": home,
            "dagster_home": dagster_home,
            "tools_dir": Path(env.get("MANAGER_TOOLS_DIR") or cache / "manager-pipeline").absolute(),
            "terraform_bin": Path(env["TERRAFORM_BIN"]).absolute() if env.get("TERRAFORM_BIN") else None,
            "webserver_url": (env.get("DAGSTER_WEBSERVER_URL") or _ui_address(home) or DEFAULT_UI).rstrip("/"),
            "database_url": env.get("MANAGER_DATABASE_URL") or f"sqlite:///{dagster_home / 'manager.db'}",
            **{group: env for group in ("aws", "github", "oidc", "celery", "retention", "approvers")},
        }

    @model_validator(mode="after")
    def _scale_out(self) -> Settings:
        """Steps on Celery workers (other machines) need what every worker reaches: the database, the
        artifact bucket, AWS."""
        executor, handoff, bucket = self.celery.executor, self.celery.handoff, self.aws.artifact_bucket
        if handoff == "s3" and not bucket:
            raise ValueError(
                "MANAGER_HANDOFF=s3 keeps values in PLAN_ARTIFACT_BUCKET: set it, or MANAGER_HANDOFF=database"
            )
        if handoff != "memory" and self.celery.handoff_key is None:
            raise ValueError(
                f"MANAGER_HANDOFF={handoff} signs the values it hands on: set MANAGER_HANDOFF_KEY (e.g. `openssl rand "
                "-hex 32`) for the code location and every worker, never for the webhook receiver"
            )
        if executor == "in_process":
            return self
        needs = "MANAGER_EXECUTOR=celery runs steps on other machines"
        if handoff == "memory":
            raise ValueError(
                f"{needs}: MANAGER_HANDOFF=memory cannot reach them; set it to database or s3 (or unset it)"
            )
        if self.embedded_database:
            raise ValueError(f"{needs}: set MANAGER_DATABASE_URL to a database every worker reaches (postgresql://...)")
        if not bucket:
            raise ValueError(f"{needs}: set PLAN_ARTIFACT_BUCKET, the S3 bucket through which saved plans travel")
        if self.aws.mode == "local":
            raise ValueError(
                f"{needs}: the embedded AWS stand-in is this machine's own; set AWS_ENDPOINT_URL or MANAGER_AWS=aws"
            )
        return self

    def for_worker(self, environments: Sequence[str]) -> Settings:
        """These settings as a Celery worker of ``environments`` has them."""
        celery = self.celery.model_copy(update={"worker_environments": tuple(environments)})
        return self.model_copy(update={"celery": celery})

    @property
    def embedded_database(self) -> bool:
        """The manager's tables are in the SQLite file in DAGSTER_HOME (no MANAGER_DATABASE_URL)."""
        return self.database_url == f"sqlite:///{self.dagster_home / 'manager.db'}"

    @property
    def named_secrets(self) -> NamedSecrets:
        return NamedSecrets(self._environment)

    @property
    def workdirs(self) -> Path:
        return self.home / "workdirs"

    @property
    def plans_dir(self) -> Path:
        return self.dagster_home / "plans"

    @property
    def reports_dir(self) -> Path:
        return self.dagster_home / "reports"

    @property
    def kept_policies_dir(self) -> Path:
        """Each environment's last good policy (policy/last_good.py): what stands in for a bad policy file."""
        return self.home / "policies"

    # The names callers used before the groups; each is its group's field.
    @property
    def artifact_bucket(self) -> str | None:
        return self.aws.artifact_bucket

    @property
    def executor(self) -> str:
        return self.celery.executor

    @property
    def handoff(self) -> str:
        return self.celery.handoff

    @property
    def celery_broker(self) -> str:
        return self.celery.broker

    @property
    def celery_backend(self) -> str:
        return self.celery.backend

    @property
    def worker_environments(self) -> tuple[str, ...] | None:
        return self.celery.worker_environments

    @property
    def workdir_retention_hours(self) -> float:
        return self.retention.workdir_hours

    @property
    def plan_retention_hours(self) -> float:
        return self.retention.plan_hours


def hand_down_worker(environments: Sequence[str]) -> None:
    """Tell the processes this one starts (a Celery worker's pool) that they act for ``environments``
    only: they read their settings afresh (``Settings.from_env()``) when they load the code location."""
    os.environ[WORKER_ENVIRONMENTS] = ",".join(environments)
