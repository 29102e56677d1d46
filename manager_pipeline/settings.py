"""Where things live, from the environment. One place reads these variables.

Everything has a default that makes the embedded set-up work from a clone: the state of
the manager (Dagster instance, working directories, plan artifacts, reports, the local AWS
stand-in's pid file) lives under ``.manager/`` beside manager.yaml.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

AwsMode = Literal["local", "endpoint", "aws"]

DEFAULT_STATE_BUCKET = "manager-pipeline-state"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class AwsSettings:
    """Which AWS the manager talks to.

    ``local``: the embedded moto server, started on demand (the default).
    ``endpoint``: another AWS-compatible endpoint (``AWS_ENDPOINT_URL``).
    ``aws``: real AWS, only when ``MANAGER_AWS=aws`` says so explicitly.
    """

    mode: AwsMode
    endpoint_url: str | None
    region: str
    state_bucket: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsSettings:
        endpoint = env.get("AWS_ENDPOINT_URL") or None
        explicit = env.get("MANAGER_AWS", "").strip().lower()
        if explicit not in ("", "local", "aws"):
            raise ValueError(f"MANAGER_AWS must be 'local' or 'aws', not {explicit!r}")
        mode: AwsMode
        if explicit == "aws":
            mode = "aws"
        elif endpoint:
            mode = "endpoint"
        else:
            mode = "local"
        bucket = env.get("TF_STATE_BUCKET") or DEFAULT_STATE_BUCKET
        if mode == "aws" and not env.get("TF_STATE_BUCKET"):
            raise ValueError("MANAGER_AWS=aws needs TF_STATE_BUCKET: the S3 bucket that holds Terraform state")
        region = env.get("TF_STATE_REGION") or env.get("AWS_REGION") or DEFAULT_REGION
        return cls(mode=mode, endpoint_url=endpoint, region=region, state_bucket=bucket)


def _hours(value: str, name: str) -> float:
    text = value.strip().lower()
    try:
        hours = float(text[:-1]) * 24 if text.endswith("d") else float(text.removesuffix("h"))
    except ValueError:
        hours = math.nan
    if not (0 < hours < math.inf):
        raise ValueError(f"{name}={value!r} is not a duration: give hours or days above zero, e.g. 12h or 7d")
    return hours


EXECUTORS = ("in_process", "celery")
HANDOFFS = ("memory", "database", "s3")
DEFAULT_CELERY_BROKER = "pyamqp://guest@127.0.0.1:5672//"
DEFAULT_CELERY_BACKEND = "redis://127.0.0.1:6379/0"


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be {' or '.join(repr(a) for a in allowed)}, not {value!r}")
    return value


def _scale_out(env: Mapping[str, str], aws: AwsSettings) -> tuple[str, str]:
    """(executor, handoff): where steps run and how their values reach the next step. Steps on Celery
    workers (other machines) need what every worker reaches: the database, the artifact bucket, AWS."""
    executor = _one_of("MANAGER_EXECUTOR", (env.get("MANAGER_EXECUTOR") or "in_process").strip().lower(), EXECUTORS)
    default = "memory" if executor == "in_process" else "database"
    handoff = _one_of("MANAGER_HANDOFF", (env.get("MANAGER_HANDOFF") or default).strip().lower(), HANDOFFS)
    if handoff == "s3" and not env.get("PLAN_ARTIFACT_BUCKET"):
        raise ValueError("MANAGER_HANDOFF=s3 keeps values in PLAN_ARTIFACT_BUCKET: set it, or MANAGER_HANDOFF=database")
    if executor == "in_process":
        return executor, handoff
    needs = "MANAGER_EXECUTOR=celery runs steps on other machines"
    if handoff == "memory":
        raise ValueError(f"{needs}: MANAGER_HANDOFF=memory cannot reach them; set it to database or s3 (or unset it)")
    if not env.get("MANAGER_DATABASE_URL"):
        raise ValueError(f"{needs}: set MANAGER_DATABASE_URL to a database every worker reaches (postgresql://...)")
    if not env.get("PLAN_ARTIFACT_BUCKET"):
        raise ValueError(f"{needs}: set PLAN_ARTIFACT_BUCKET, the S3 bucket through which saved plans travel")
    if aws.mode == "local":
        raise ValueError(
            f"{needs}: the embedded AWS stand-in is this machine's own; set AWS_ENDPOINT_URL or MANAGER_AWS=aws"
        )
    return executor, handoff


def _worker_environments(env: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = env.get("MANAGER_WORKER_ENVIRONMENTS")
    if raw is None:
        return None
    return tuple(name for name in (part.strip() for part in raw.split(",")) if name)


def _providers(value: str) -> str:
    if value not in ("mirror", "registry"):
        raise ValueError(f"MANAGER_PROVIDERS must be 'mirror' or 'registry', not {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    config_path: Path
    home: Path
    dagster_home: Path
    tools_dir: Path
    terraform_bin: Path | None
    aws: AwsSettings
    webserver_url: str
    providers: str = "mirror"
    provider_server: bool = True
    database_url: str = ""
    polling: bool = False
    artifact_bucket: str | None = None
    lock_timeout: str = "60s"
    workdir_retention_hours: float = 7 * 24
    # The files of a plan that can never be applied again are kept this long after its last change.
    plan_retention_hours: float = 30 * 24
    # Where steps run (this process, or Celery workers) and how op values reach the next step.
    executor: str = "in_process"
    handoff: str = "memory"
    celery_broker: str = DEFAULT_CELERY_BROKER
    celery_backend: str = DEFAULT_CELERY_BACKEND
    # A Celery worker's environments (`manager-pipeline worker --environments`): the only ones whose
    # credentials it holds, so the only ones whose steps it runs. None: not a worker.
    worker_environments: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        config_path = Path(env.get("MANAGER_CONFIG") or "manager.yaml").absolute()
        home = Path(env.get("MANAGER_HOME") or config_path.parent / ".manager").absolute()
        dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").absolute()
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        tools_dir = Path(env.get("MANAGER_TOOLS_DIR") or cache / "manager-pipeline").absolute()
        terraform_bin = Path(env["TERRAFORM_BIN"]).absolute() if env.get("TERRAFORM_BIN") else None
        aws = AwsSettings.from_env(env)
        executor, handoff = _scale_out(env, aws)
        return cls(
            config_path=config_path,
            home=home,
            dagster_home=dagster_home,
            tools_dir=tools_dir,
            terraform_bin=terraform_bin,
            aws=aws,
            webserver_url=(env.get("DAGSTER_WEBSERVER_URL") or "http://127.0.0.1:3000").rstrip("/"),
            providers=_providers(env.get("MANAGER_PROVIDERS") or "mirror"),
            provider_server=(env.get("MANAGER_PROVIDER_SERVER") or "on").lower() not in ("off", "0", "false", "no"),
            database_url=env.get("MANAGER_DATABASE_URL") or f"sqlite:///{dagster_home / 'manager.db'}",
            polling=(env.get("MANAGER_POLLING") or "off").lower() in ("on", "1", "true", "yes"),
            artifact_bucket=env.get("PLAN_ARTIFACT_BUCKET") or None,
            lock_timeout=env.get("MANAGER_LOCK_TIMEOUT") or "60s",
            workdir_retention_hours=_hours(env.get("MANAGER_WORKDIR_RETENTION") or "7d", "MANAGER_WORKDIR_RETENTION"),
            plan_retention_hours=_hours(env.get("MANAGER_PLAN_RETENTION") or "30d", "MANAGER_PLAN_RETENTION"),
            executor=executor,
            handoff=handoff,
            celery_broker=env.get("MANAGER_CELERY_BROKER") or DEFAULT_CELERY_BROKER,
            celery_backend=env.get("MANAGER_CELERY_BACKEND") or DEFAULT_CELERY_BACKEND,
            worker_environments=_worker_environments(env),
        )

    @property
    def workdirs(self) -> Path:
        return self.home / "workdirs"

    @property
    def plans_dir(self) -> Path:
        return self.dagster_home / "plans"

    @property
    def reports_dir(self) -> Path:
        return self.dagster_home / "reports"
