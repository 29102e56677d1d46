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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        config_path = Path(env.get("MANAGER_CONFIG") or "manager.yaml").absolute()
        home = Path(env.get("MANAGER_HOME") or config_path.parent / ".manager").absolute()
        dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").absolute()
        cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        tools_dir = Path(env.get("MANAGER_TOOLS_DIR") or cache / "manager-pipeline").absolute()
        terraform_bin = Path(env["TERRAFORM_BIN"]).absolute() if env.get("TERRAFORM_BIN") else None
        return cls(
            config_path=config_path,
            home=home,
            dagster_home=dagster_home,
            tools_dir=tools_dir,
            terraform_bin=terraform_bin,
            aws=AwsSettings.from_env(env),
            webserver_url=(env.get("DAGSTER_WEBSERVER_URL") or "http://127.0.0.1:3000").rstrip("/"),
            providers=_providers(env.get("MANAGER_PROVIDERS") or "mirror"),
            provider_server=(env.get("MANAGER_PROVIDER_SERVER") or "on").lower() not in ("off", "0", "false", "no"),
            database_url=env.get("MANAGER_DATABASE_URL") or f"sqlite:///{dagster_home / 'manager.db'}",
            polling=(env.get("MANAGER_POLLING") or "off").lower() in ("on", "1", "true", "yes"),
            artifact_bucket=env.get("PLAN_ARTIFACT_BUCKET") or None,
            lock_timeout=env.get("MANAGER_LOCK_TIMEOUT") or "60s",
            workdir_retention_hours=_hours(env.get("MANAGER_WORKDIR_RETENTION") or "7d", "MANAGER_WORKDIR_RETENTION"),
            plan_retention_hours=_hours(env.get("MANAGER_PLAN_RETENTION") or "30d", "MANAGER_PLAN_RETENTION"),
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
