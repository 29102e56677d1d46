"""A run's own Terraform working directory: module copy, tfvars JSON, backend config."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from manager_pipeline.config.model import AwsAccess
from manager_pipeline.contract import DeployConfig
from manager_pipeline.errors import ManagerError

TFVARS_FILE = "manager.auto.tfvars.json"
BACKEND_FILE = "backend.hcl"
ENDPOINT_OVERRIDE_FILE = "zz_manager_endpoint_override.tf"
STATE_OVERRIDE_FILE = "zz_manager_state_override.tf.json"
PLAN_FILE = "plan.tfplan"

# What a module copy leaves behind: local state and working files, and override files a
# developer may have lying around (they would silently change what gets planned).
_IGNORED = shutil.ignore_patterns(
    ".terraform",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfplan",
    "*_override.tf",
    "*_override.tf.json",
    "override.tf",
    "override.tf.json",
    "*.auto.tfvars*",
    "terraform.tfvars*",
    ".gitignore",
)


def module_digest(module_dir: Path) -> str:
    """sha256 over the module's files (names and contents) as a run copies them."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(module_dir):
        ignored = _IGNORED(root, dirs + files)
        dirs[:] = sorted(d for d in dirs if d not in ignored)
        for name in sorted(f for f in files if f not in ignored):
            path = Path(root) / name
            digest.update(str(path.relative_to(module_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def state_key(source: str, environment: str) -> str:
    return f"{source}/{environment}/terraform.tfstate"


def _hcl_string(value: str) -> str:
    # A JSON string is an HCL string once template sequences are escaped.
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


@dataclass(frozen=True)
class BackendSettings:
    bucket: str
    region: str
    key: str
    endpoint_url: str | None = None

    @classmethod
    def of_partition(cls, target: Any, source: str, environment: str) -> BackendSettings:
        """The state backend of (``source``, ``environment``) on ``target`` (an ``AwsTarget``: its state
        bucket, region and endpoint)."""
        return cls(target.state_bucket, target.state_region, state_key(source, environment), target.endpoint_url)

    def to_hcl(self) -> str:
        lines = [
            f"bucket       = {_hcl_string(self.bucket)}",
            f"key          = {_hcl_string(self.key)}",
            f"region       = {_hcl_string(self.region)}",
            "use_lockfile = true",
            "encrypt      = true",
        ]
        if self.endpoint_url:
            url = _hcl_string(self.endpoint_url)
            lines += [
                "use_path_style              = true",
                "skip_credentials_validation = true",
                "skip_requesting_account_id  = true",
                "skip_metadata_api_check     = true",
                "skip_region_validation      = true",
                f"endpoints = {{ s3 = {url}, sts = {url}, iam = {url}, dynamodb = {url} }}",
            ]
        return "\n".join(lines) + "\n"


# The aws provider's (3.x) endpoint keys for every service the manager's module uses. Some differ
# from the API's name: CloudWatch Logs is `cloudwatchlogs`, Application Auto Scaling is
# `applicationautoscaling`, and `elb` serves Elastic Load Balancing v2 too (3.x has no `elbv2`).
STAND_IN_SERVICES = (
    "applicationautoscaling",
    "autoscaling",
    "backup",
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ec2",
    "ecs",
    "elasticache",
    "elb",
    "iam",
    "kms",
    "lambda",
    "rds",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "sts",
    "wafv2",
)

_AWS_PROVIDER_BLOCK = re.compile(r'^\s*provider\s+"aws"\s*\{', re.M)
_ALIAS = re.compile(r'^\s*alias\s*=\s*"([^"]+)"', re.M)


def _block_body(text: str, start: int) -> str:
    """The text of the block whose opening brace is at ``start``, up to its closing brace."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    return text[start + 1 :]


def _module_texts(module_dir: Path) -> list[str]:
    return [path.read_text(errors="replace") for path in sorted(module_dir.glob("*.tf"))]


def provider_aliases(module_dir: Path) -> list[str]:
    """The aliases of the module's aliased aws provider configurations (top-level .tf files)."""
    aliases: set[str] = set()
    for text in _module_texts(module_dir):
        for match in _AWS_PROVIDER_BLOCK.finditer(text):
            body = _block_body(text, match.end() - 1)
            # Only the provider's own arguments: drop nested blocks (default_tags, endpoints, ...).
            top_level = re.sub(r"\{[^{}]*\}", "", re.sub(r"\{[^{}]*\}", "", body))
            aliases.update(_ALIAS.findall(top_level))
    return sorted(aliases)


# What the AWS stand-in (moto 5.2.5) cannot do, by resource type. Against the stand-in only, a run
# leaves such resources out, or ignores attributes the stand-in never hands back (which would
# otherwise show as a change on every plan). Against AWS none of this applies.
STAND_IN_LEFT_OUT = {
    "aws_backup_selection": "moto does not implement CreateBackupSelection",
    # A plan-level test (test_features_cache_is_planned_with_tls_and_auth) checks what real AWS gets.
    "aws_elasticache_replication_group": "moto creates no member clusters for a replication group, which aws 3.39 "
    "reads right after creating it",
}
STAND_IN_UNREAD = {
    "aws_db_parameter_group": (
        ("parameter",),
        "aws 3.39 does not read a DB parameter group's parameters back from moto (moto holds them: test_database)",
    ),
    "aws_elasticache_cluster": (("security_group_ids",), "moto returns no SecurityGroups for a cache cluster"),
    "aws_rds_cluster": (
        ("scaling_configuration",),
        "moto hands back an empty Serverless scaling configuration for a provisioned Aurora cluster",
    ),
    "aws_launch_template": (
        ("tag_specifications",),
        "moto hands the template's own tags back as a `launch-template` tag specification",
    ),
    "aws_lambda_function": (
        ("image_config",),
        "moto hands back an empty image_config (command, entry point) for an image function that sets none",
    ),
}
_RESOURCE_BLOCK = re.compile(r'^resource\s+"(?P<type>[\w-]+)"\s+"(?P<name>[\w-]+)"\s*\{', re.M)


def stand_in_gaps(module_dir: Path) -> str:
    """Override blocks for the module's resources that the AWS stand-in cannot hold or read back."""
    blocks = []
    for text in _module_texts(module_dir):
        for match in _RESOURCE_BLOCK.finditer(text):
            kind, name = match["type"], match["name"]
            if kind in STAND_IN_LEFT_OUT:
                body = _block_body(text, match.end() - 1)
                off = "for_each = {}" if re.search(r"^\s*for_each\s*=", body, re.M) else "count = 0"
                blocks.append(
                    f"# {STAND_IN_LEFT_OUT[kind]}\n"
                    f'resource "{kind}" "{name}" {{\n  {off}\n}}\n'
                )
            elif kind in STAND_IN_UNREAD:
                attributes, reason = STAND_IN_UNREAD[kind]
                blocks.append(
                    f"# {reason}\n"
                    f'resource "{kind}" "{name}" {{\n'
                    f"  lifecycle {{\n    ignore_changes = [{', '.join(attributes)}]\n  }}\n}}\n"
                )
    return "\n".join(blocks)


def endpoint_override(endpoint_url: str, aliases: tuple[str, ...] | list[str] = (), gaps: str = "") -> str:
    """Provider settings that point the aws provider (3.x), and each of its aliases, at a stand-in endpoint.

    An override must name an existing provider configuration, so ``aliases`` are those the module
    declares (``provider_aliases``); ``gaps`` are the module's resource overrides for what the
    stand-in cannot do (``stand_in_gaps``).
    """
    url = _hcl_string(endpoint_url)
    endpoints = "\n".join(f"    {service} = {url}" for service in STAND_IN_SERVICES)
    blocks = []
    for alias in [None, *aliases]:
        alias_line = f"  alias                       = {_hcl_string(alias)}\n" if alias else ""
        blocks.append(
            'provider "aws" {\n'
            f"{alias_line}"
            "  s3_force_path_style         = true\n"
            "  skip_credentials_validation = true\n"
            "  skip_requesting_account_id  = true\n"
            "  skip_metadata_api_check     = true\n"
            "  skip_get_ec2_platforms      = true\n"
            "  endpoints {\n"
            f"{endpoints}\n"
            "  }\n"
            "}\n"
        )
    if gaps:
        blocks.append(gaps)
    return "# Written by manager-pipeline: this run talks to an AWS stand-in, not to AWS.\n" + "\n".join(blocks)


# What the module takes from its partition's state as the previous run left it (terraform/backup.tf):
# the region of the backup copy vault. A provider's configuration comes from the current inputs,
# also when Terraform destroys; without this, dropping the copy would point its provider at the
# main region, where the vault is not found, and leave it behind in its own region.
COPY_REGION_LOCAL = "backup_copy_region_in_state"
_COPY_VAULT = ("managed", "aws_backup_vault", "backup_copy")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def read_state(s3: Any, backend: BackendSettings) -> dict | None:
    """The partition's state object (``s3``: a boto3 S3 client on the state's bucket); None before the first apply."""
    where = f"s3://{backend.bucket}/{backend.key}"
    try:
        body = s3.get_object(Bucket=backend.bucket, Key=backend.key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise ManagerError(f"cannot read the state {where}: {exc}") from None
    except BotoCoreError as exc:
        raise ManagerError(f"cannot reach S3 for the state {where}: {exc}") from None
    try:
        state = json.loads(body)
    except ValueError:
        raise ManagerError(f"the state {where} is not JSON") from None
    return state if isinstance(state, dict) else None


def copy_region_in_state(state: dict | None) -> str | None:
    """The region of the backup copy vault ``state`` holds (from its ARN), or None."""
    for resource in (state or {}).get("resources") or []:
        if resource.get("module") or (resource.get("mode"), resource.get("type"), resource.get("name")) != _COPY_VAULT:
            continue
        for instance in resource.get("instances") or []:
            arn = str((instance.get("attributes") or {}).get("arn") or "")
            region = arn.split(":")[3] if arn.count(":") >= 5 else ""
            if not _REGION.fullmatch(region):
                raise ManagerError(f"the state's backup copy vault has no region in its ARN ({arn!r})")
            return region
    return None


def takes_previous_state(module_dir: Path) -> bool:
    """Whether the module declares the local the state override sets (an override must name an existing one)."""
    pattern = re.compile(rf"^\s*{COPY_REGION_LOCAL}\s*=", re.M)
    return any(pattern.search(text) for text in _module_texts(module_dir))


def write_state_override(target: Path, state: dict | None) -> str | None:
    """Hand the module in ``target`` what it takes from the previous ``state`` (STATE_OVERRIDE_FILE):
    the copy vault's region, which it returns. Nothing for a module that does not take it."""
    if not takes_previous_state(target):
        return None
    region = copy_region_in_state(state)
    override = {
        "//": "Written by manager-pipeline at init: from this partition's state as the previous run left it.",
        "locals": {COPY_REGION_LOCAL: region},
    }
    (target / STATE_OVERRIDE_FILE).write_text(json.dumps(override, indent=2) + "\n")
    return region


def read_previous_state(target: Path, s3: Any, backend: BackendSettings) -> str | None:
    """At init: read the partition's state and hand the module in ``target`` what it takes from it;
    the region of the backup copy vault the state holds, or None. A module that takes nothing from
    it costs no read."""
    if not takes_previous_state(target):
        return None
    return write_state_override(target, read_state(s3, backend))


def copy_region_of(working_dir: Path) -> str | None:
    """The copy vault region ``read_previous_state`` found for this working directory, or None. A run
    whose copy provider is in another region than the main one needs Terraform's own provider
    processes (one shared process serves one region), also when it only destroys the copy."""
    try:
        override = json.loads((working_dir / STATE_OVERRIDE_FILE).read_text())
    except (OSError, ValueError):
        return None
    region = (override.get("locals") or {}).get(COPY_REGION_LOCAL) if isinstance(override, dict) else None
    return region if isinstance(region, str) else None


@dataclass(frozen=True)
class Workdir:
    path: Path
    backend: BackendSettings
    module_digest: str
    variables_digest: str
    # What another machine needs to build the same directory (``rebuild_workdir``): the module's folder
    # (its copy is checked against module_digest), every file init wrote beside it (backend config,
    # tfvars, overrides: no secret in any), and the environment's credentials by name.
    module_dir: Path | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    access: AwsAccess | None = None

    @property
    def plan_file(self) -> Path:
        return self.path / PLAN_FILE

    @property
    def backend_file(self) -> Path:
        return self.path / BACKEND_FILE


def copy_module(target: Path, module_dir: Path, backend: BackendSettings, endpoint_url: str | None) -> str:
    """A fresh copy of the module in ``target``, set up for its state backend; the module's digest."""
    if not (module_dir / "main.tf").is_file() and not any(module_dir.glob("*.tf")):
        raise FileNotFoundError(f"{module_dir} holds no Terraform module")
    digest = module_digest(module_dir)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(module_dir, target, ignore=_IGNORED)
    (target / BACKEND_FILE).write_text(backend.to_hcl())
    if endpoint_url:
        override = endpoint_override(endpoint_url, provider_aliases(target), stand_in_gaps(target))
        (target / ENDPOINT_OVERRIDE_FILE).write_text(override)
    return digest


def prepare_workdir(
    target: Path, module_dir: Path, config: DeployConfig, backend: BackendSettings, endpoint_url: str | None
) -> Workdir:
    """Copy the module into ``target`` and write the run's inputs beside it."""
    digest = copy_module(target, module_dir, backend, endpoint_url)
    (target / TFVARS_FILE).write_text(json.dumps(config.to_tfvars(), indent=2, sort_keys=True) + "\n")
    return Workdir(path=target, backend=backend, module_digest=digest, variables_digest=config.digest)


def prune_workdirs(root: Path, older_than_s: float, keep: str | None = None) -> list[str]:
    """Remove the working directories under ``root`` untouched for ``older_than_s``; their names."""
    removed = []
    cutoff = time.time() - older_than_s
    for entry in root.iterdir() if root.is_dir() else ():
        try:
            if entry.name != keep and entry.is_dir() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


# The files init writes beside the module copy: with the module, they are the whole working directory.
WRITTEN_FILES = (BACKEND_FILE, TFVARS_FILE, ENDPOINT_OVERRIDE_FILE, STATE_OVERRIDE_FILE)


def portable(workdir: Workdir, module_dir: Path, access: AwsAccess | None = None) -> Workdir:
    """``workdir`` with what travels: the module's folder, the files init wrote, the credentials' names."""
    files = {name: (workdir.path / name).read_text() for name in WRITTEN_FILES if (workdir.path / name).is_file()}
    return replace(workdir, module_dir=module_dir, files=files, access=access)


def built_at(workdir: Workdir, target: Path) -> bool:
    """Whether ``target`` holds ``workdir``, initialised: init made it here, or an earlier step built it here."""
    return (target / ".terraform").is_dir() and all(
        (target / name).is_file() and (target / name).read_text() == text for name, text in workdir.files.items()
    )


def rebuild_workdir(workdir: Workdir, target: Path) -> Workdir:
    """The working directory ``workdir`` describes, built again in ``target`` (on another machine than
    init's) from what travelled; it still needs ``terraform init``. A module that is not the one init
    copied is refused: every worker must run the same manager version."""
    module_dir = workdir.module_dir
    if module_dir is None or not workdir.files:
        raise ManagerError("the working directory came without its module and files: init it again on this machine")
    digest = module_digest(module_dir) if module_dir.is_dir() else "missing"
    if digest != workdir.module_digest:
        raise ManagerError(
            f"the Terraform module {module_dir} here is not the one init used (sha256 {digest[:12]}, init's "
            f"{workdir.module_digest[:12]}): run the same manager version on every worker; nothing was applied"
        )
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(module_dir, target, ignore=_IGNORED)
    for name, text in workdir.files.items():
        (target / name).write_text(text)
    return replace(workdir, path=target)
