"""The AWS boundary: which endpoint and credentials Terraform and boto3 use, and the state bucket."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from manager_pipeline.errors import ManagerError
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


_READY_BUCKETS: set[tuple[str | None, str]] = set()


@dataclass(frozen=True)
class AwsTarget:
    """Where AWS is for this run: real, or an endpoint standing in for it."""

    settings: AwsSettings
    endpoint_url: str | None
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

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
        env = {k: v for k, v in base.items() if k in _PASSED_THROUGH or (k.startswith("AWS_") and not self.is_stand_in)}
        env.update(self.credentials)
        return env

    def client(self, service: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.state_region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
            kwargs["aws_access_key_id"] = self.credentials["AWS_ACCESS_KEY_ID"]
            kwargs["aws_secret_access_key"] = self.credentials["AWS_SECRET_ACCESS_KEY"]
        return boto3.session.Session().client(service, **kwargs)

    def ensure_state_bucket(self) -> None:
        self.ensure_bucket(self.state_bucket)

    def ensure_bucket(self, bucket: str) -> None:
        """A stand-in gets the bucket created; real AWS must already have it. Checked once per process."""
        key = (self.endpoint_url, bucket)
        if key in _READY_BUCKETS:
            return
        self._check_or_create_bucket(bucket)
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
