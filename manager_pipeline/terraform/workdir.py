"""A run's own Terraform working directory: module copy, tfvars JSON, backend config."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.contract import DeployConfig

TFVARS_FILE = "manager.auto.tfvars.json"
BACKEND_FILE = "backend.hcl"
ENDPOINT_OVERRIDE_FILE = "zz_manager_endpoint_override.tf"
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


def endpoint_override(endpoint_url: str) -> str:
    """Provider settings that point the aws provider (3.x) at a stand-in endpoint."""
    url = _hcl_string(endpoint_url)
    services = ("ec2", "s3", "sts", "iam", "dynamodb", "sqs", "sns", "rds", "elb", "autoscaling", "cloudwatch", "kms")
    endpoints = "\n".join(f"    {service} = {url}" for service in services)
    return (
        "# Written by manager-pipeline: this run talks to an AWS stand-in, not to AWS.\n"
        'provider "aws" {\n'
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


@dataclass(frozen=True)
class Workdir:
    path: Path
    backend: BackendSettings
    module_digest: str
    variables_digest: str

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
        (target / ENDPOINT_OVERRIDE_FILE).write_text(endpoint_override(endpoint_url))
    return digest


def prepare_workdir(
    target: Path, module_dir: Path, config: DeployConfig, backend: BackendSettings, endpoint_url: str | None
) -> Workdir:
    """Copy the module into ``target`` and write the run's inputs beside it."""
    digest = copy_module(target, module_dir, backend, endpoint_url)
    (target / TFVARS_FILE).write_text(json.dumps(config.to_tfvars(), indent=2, sort_keys=True) + "\n")
    return Workdir(path=target, backend=backend, module_digest=digest, variables_digest=config.digest)
