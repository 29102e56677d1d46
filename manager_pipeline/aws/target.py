"""The AWS boundary: which endpoint and credentials Terraform and boto3 use, and the state bucket."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from manager_pipeline.config.model import AwsAccess
from manager_pipeline.errors import ManagerError
from manager_pipeline.redact import register_secret
from manager_pipeline.settings import AwsSettings

# Credentials a stand-in accepts; never used against real AWS.
STAND_IN_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}

# What Terraform inherits from the manager's environment. Everything else (GitHub tokens,
# webhook secrets, ...) stays out of the Terraform process and its providers.
_PASSED_THROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


# The variables that choose credentials: an environment with credentials of its own hands Terraform
# only those, never the manager's (AWS_REGION and the like still pass).
_CREDENTIAL_VARIABLES = frozenset(
    {
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    }
)
# Temporary credentials are taken again when less than this is left of them (an apply may take 20 minutes).
RENEW_BEFORE_S = 30 * 60.0
ROLE_SESSION_S = 3600

_READY_BUCKETS: set[tuple[str | None, str]] = set()


@dataclass(frozen=True)
class AwsTarget:
    """Where AWS is for this run: real, or an endpoint standing in for it."""

    settings: AwsSettings
    endpoint_url: str | None
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Set when the credentials are an environment's own (``environment_target``), and when they expire.
    environment: str | None = None
    expires_at: float | None = None

    @property
    def own_credentials(self) -> bool:
        return self.environment is not None and "AWS_ACCESS_KEY_ID" in self.credentials

    def expiring(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.expires_at is not None and self.expires_at - now < RENEW_BEFORE_S

    @property
    def is_stand_in(self) -> bool:
        return self.endpoint_url is not None

    @property
    def state_bucket(self) -> str:
        return self.settings.state_bucket

    @property
    def state_region(self) -> str:
        return self.settings.region

    def process_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a Terraform process: a few system variables, AWS's own, nothing else."""
        base = os.environ if base is None else base
        env = {
            k: v
            for k, v in base.items()
            if k in _PASSED_THROUGH
            or (
                k.startswith("AWS_")
                and not self.is_stand_in
                and not (self.own_credentials and k in _CREDENTIAL_VARIABLES)
            )
        }
        env.update(self.credentials)
        return env

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.state_region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if "AWS_ACCESS_KEY_ID" in self.credentials:
            kwargs["aws_access_key_id"] = self.credentials["AWS_ACCESS_KEY_ID"]
            kwargs["aws_secret_access_key"] = self.credentials["AWS_SECRET_ACCESS_KEY"]
            kwargs["aws_session_token"] = self.credentials.get("AWS_SESSION_TOKEN")
        return boto3.session.Session().client(service, **kwargs)

    def ensure_state_bucket(self) -> None:
        self.ensure_bucket(self.state_bucket, versioned=True)

    def ensure_bucket(self, bucket: str, versioned: bool = False) -> None:
        """A stand-in gets the bucket created (``versioned``: with versioning on, so every state it held,
        the one before a destroy too, stays readable); real AWS must already have it. Checked once per process."""
        key = (self.endpoint_url, bucket)
        if key in _READY_BUCKETS:
            return
        self._check_or_create_bucket(bucket)
        if versioned and self.is_stand_in:
            self.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        _READY_BUCKETS.add(key)

    def _check_or_create_bucket(self, bucket: str) -> None:
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise ManagerError(f"bucket {bucket}: {code or exc}") from None
        except BotoCoreError as exc:
            raise ManagerError(f"cannot reach S3 for bucket {bucket}: {exc}") from None
        if not self.is_stand_in:
            raise ManagerError(
                f"bucket {bucket} does not exist; create it (versioned, encrypted) or fix TF_STATE_BUCKET / "
                "PLAN_ARTIFACT_BUCKET"
            )
        extra = (
            {}
            if self.state_region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self.state_region}}
        )
        s3.create_bucket(Bucket=bucket, **extra)


def environment_target(base: AwsTarget, environment: str, access: AwsAccess) -> AwsTarget:
    """``base`` with ``environment``'s own credentials: its profile's (from this machine's AWS config)
    and, with a role, the role's temporary ones, assumed with them (or with this machine's own). A
    ManagerError of one line says what this machine lacks; no key is ever part of it."""
    lacks = f"this machine cannot act for {environment} ({access.label})"
    try:
        session = boto3.session.Session(profile_name=access.profile) if access.profile else boto3.session.Session()
    except ProfileNotFound:
        where = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
        raise ManagerError(
            f"{lacks}: AWS profile `{access.profile}` is not in {where}; add it, or run {environment}'s steps "
            f"on a worker that has it"
        ) from None
    stand_in = {} if access.profile or not base.is_stand_in else dict(base.credentials)
    try:
        if access.role_arn:
            sts = session.client(
                "sts",
                region_name=base.state_region,
                endpoint_url=base.endpoint_url,
                aws_access_key_id=stand_in.get("AWS_ACCESS_KEY_ID"),
                aws_secret_access_key=stand_in.get("AWS_SECRET_ACCESS_KEY"),
            )
            name = f"manager-pipeline-{environment}"[:64]
            answer = sts.assume_role(RoleArn=access.role_arn, RoleSessionName=name, DurationSeconds=ROLE_SESSION_S)
            answer = answer["Credentials"]
            keys = (answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])
            expires_at: float | None = answer["Expiration"].timestamp()
        else:
            found = session.get_credentials()
            if found is None:
                raise ManagerError(f"{lacks}: AWS profile `{access.profile}` holds no credentials; give it some")
            frozen = found.get_frozen_credentials()
            keys = (frozen.access_key, frozen.secret_key, frozen.token)
            expiry = getattr(found, "_expiry_time", None)
            expires_at = expiry.timestamp() if expiry is not None else None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ManagerError(
            f"{lacks}: {error.get('Code', 'refused')}: {error.get('Message', '')}".rstrip(": ")
            + f"; give this worker credentials that may assume it, or run {environment}'s steps on a worker that can"
        ) from None
    except BotoCoreError as exc:
        raise ManagerError(f"{lacks}: {exc}") from None
    key_id, secret, token = keys
    for value in (secret, token):
        register_secret(value)  # masked by every sink of this process from now on
    credentials = {k: v for k, v in base.credentials.items() if k not in _CREDENTIAL_VARIABLES}
    credentials |= {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    if token:
        credentials["AWS_SESSION_TOKEN"] = token
    return replace(base, credentials=credentials, environment=environment, expires_at=expires_at)
