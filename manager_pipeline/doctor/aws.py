"""AWS: each environment's credentials, the state bucket and the plan artifact bucket.

Read-only calls through ``AwsTarget`` (the same endpoint and credentials runs use): STS
get-caller-identity, S3 head-bucket and the bucket's settings. Nothing is created; on a stand-in a
missing bucket is fine (the manager creates it there on first use), on real AWS it is not.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from manager_pipeline.aws.standin import LocalAws
from manager_pipeline.aws.target import STAND_IN_CREDENTIALS, AwsTarget, environment_target
from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.doctor.result import CheckResult, could_not_run, failed, ok
from manager_pipeline.errors import ManagerError
from manager_pipeline.settings import Settings

STATE_BUCKET = "state bucket"
ARTIFACT_BUCKET = "plan artifact bucket"
_PUBLIC_GROUPS = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
_BLOCK_ALL = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def base_target(settings: Settings) -> AwsTarget | CheckResult:
    """The manager's own target, as runs build it; the embedded stand-in is not started for this."""
    aws = settings.aws
    if aws.mode == "aws":
        return AwsTarget(settings=aws, endpoint_url=None)
    endpoint = aws.endpoint_url
    if aws.mode == "local":
        running = LocalAws(settings.home).running()
        if running is None:
            return ok(
                "aws",
                "the embedded AWS stand-in (not running now; the manager starts it on first use): set MANAGER_AWS=aws "
                "and TF_STATE_BUCKET for real AWS",
            )
        endpoint = running.endpoint_url
    return AwsTarget(settings=aws, endpoint_url=endpoint, credentials=dict(STAND_IN_CREDENTIALS))


def _code(exc: ClientError) -> str:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(exc.response.get("Error", {}).get("Code") or status)


def check_environment(base: AwsTarget, policy: EnvironmentPolicy) -> CheckResult:
    """The environment's credentials work (sts get-caller-identity) and reach the state bucket."""
    name = f"aws {policy.name}"
    whose = f"{policy.name}'s credentials ({policy.aws.label})" if policy.aws else "the manager's credentials"
    try:
        target = environment_target(base, policy.name, policy.aws) if policy.aws else base
        identity = target.client("sts").get_caller_identity()
    except ManagerError as exc:
        return failed(name, str(exc))
    except EndpointConnectionError as exc:
        return could_not_run(name, f"cannot reach AWS ({exc.kwargs.get('endpoint_url', 'STS')}): check the network")
    except ClientError as exc:
        return failed(name, f"AWS refuses {whose} ({_code(exc)}): give {policy.name} working credentials")
    except BotoCoreError as exc:
        return failed(
            name, f"{whose} do not work ({type(exc).__name__}: {exc}); configure them (docs/setup.md, step 3)"
        )
    try:
        target.client("s3").head_bucket(Bucket=target.state_bucket)
    except ClientError as exc:
        code = _code(exc)
        if code in ("404", "NoSuchBucket", "NotFound") and target.is_stand_in:
            pass  # created on first use on a stand-in (the state bucket check says so)
        elif code in ("404", "NoSuchBucket", "NotFound"):
            return failed(name, f"state bucket {target.state_bucket} does not exist (see state bucket)")
        else:
            return failed(
                name,
                f"{whose} may not use state bucket {target.state_bucket} ({code}): grant the state statements of "
                "docs/iam-policy.json",
            )
    except BotoCoreError as exc:
        return could_not_run(name, f"cannot reach S3 ({type(exc).__name__})")
    return ok(name, f"acts as {identity.get('Arn', '?')} and reaches state bucket {target.state_bucket}")


def _bucket_problems(s3, bucket: str, versioned: bool, strict: bool) -> list[str]:
    """What is wrong with an existing bucket: versioning (``versioned``), default encryption, public access.
    ``strict`` (real AWS) counts a setting S3 gives every new bucket today as missing when it is."""
    problems = []
    if versioned:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if status != "Enabled":
            problems.append(
                f"versioning is {status or 'off'} (every state version must stay readable): aws s3api "
                f"put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"
            )
    try:
        s3.get_bucket_encryption(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        if strict:
            problems.append(
                f"no default encryption: aws s3api put-bucket-encryption --bucket {bucket} "
                "--server-side-encryption-configuration "
                "'{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\"}}]}'"
            )
    grants = s3.get_bucket_acl(Bucket=bucket).get("Grants", [])
    if any(grant.get("Grantee", {}).get("URI") in _PUBLIC_GROUPS for grant in grants):
        problems.append("its ACL grants access to everyone: remove the AllUsers/AuthenticatedUsers grants")
    try:
        if s3.get_bucket_policy_status(Bucket=bucket).get("PolicyStatus", {}).get("IsPublic"):
            problems.append("its bucket policy makes it public: remove the statements for Principal \"*\"")
    except ClientError as exc:
        if _code(exc) not in ("NoSuchBucketPolicy", "NotImplemented"):
            raise
    try:
        block = s3.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration", {})
    except ClientError as exc:
        if _code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        block = {}
    if strict and not all(block.get(key) for key in _BLOCK_ALL):
        problems.append(
            f"public access is not blocked: aws s3api put-public-access-block --bucket {bucket} "
            "--public-access-block-configuration "
            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
        )
    return problems


def _check_bucket(target: AwsTarget, name: str, bucket: str, versioned: bool, setting: str) -> CheckResult:
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = _code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            if target.is_stand_in:
                return ok(name, f"{bucket} is not there yet: the manager creates it on the stand-in at first use")
            return failed(name, f"{bucket} does not exist: create it (docs/setup.md, step 2) or fix {setting}")
        return failed(
            name, f"{bucket}: S3 answered {code} to the manager's credentials; grant them docs/iam-policy.json"
        )
    except EndpointConnectionError:
        return could_not_run(name, f"cannot reach S3 for {bucket}: check AWS_ENDPOINT_URL or the network")
    except BotoCoreError as exc:
        return could_not_run(name, f"cannot ask S3 about {bucket} ({type(exc).__name__}: {exc})")
    try:
        problems = _bucket_problems(s3, bucket, versioned, strict=not target.is_stand_in)
    except ClientError as exc:
        return failed(
            name,
            f"{bucket}: may not read the bucket's settings ({_code(exc)}): grant s3:GetBucket* (docs/iam-policy.json)",
        )
    except BotoCoreError as exc:
        return could_not_run(name, f"cannot ask S3 about {bucket} ({type(exc).__name__})")
    if problems:
        return failed(name, f"{bucket}: " + "; ".join(problems))
    held = ("versioned, " if versioned else "") + ("not public" if target.is_stand_in else "encrypted, not public")
    # Real S3 encrypts and blocks public access on every new bucket; a stand-in's buckets need neither.
    spared = (
        " (a stand-in: default encryption and a public access block are not required)" if target.is_stand_in else ""
    )
    return ok(name, f"{bucket}: {held}{spared}")


def check_state_bucket(target: AwsTarget) -> CheckResult:
    """TF_STATE_BUCKET exists, is versioned, encrypted by default and not public."""
    return _check_bucket(target, STATE_BUCKET, target.state_bucket, versioned=True, setting="TF_STATE_BUCKET")


def check_artifact_bucket(target: AwsTarget, settings: Settings) -> CheckResult:
    """PLAN_ARTIFACT_BUCKET, when set: exists, encrypted, not public (saved plans hold the variables)."""
    if not settings.artifact_bucket:
        if settings.executor != "in_process":
            return failed(ARTIFACT_BUCKET, "steps run on other machines and PLAN_ARTIFACT_BUCKET is not set: set it")
        return ok(ARTIFACT_BUCKET, "not set: saved plans stay in DAGSTER_HOME (set PLAN_ARTIFACT_BUCKET for workers)")
    bucket = settings.artifact_bucket
    return _check_bucket(target, ARTIFACT_BUCKET, bucket, versioned=False, setting="PLAN_ARTIFACT_BUCKET")
