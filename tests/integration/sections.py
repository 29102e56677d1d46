"""What the section tests share: a Stack (one working directory on one state, driven like a run
drives it), the documents they apply, and the way they open a working directory on the stand-in.

Each test_sections_* module gets a stack of its own (the ``stack`` fixture in conftest.py: one
state, networking applied once), so the modules run side by side under pytest-xdist. The inputs go
through the contract as a run's do (load_variables -> resolve -> to_tfvars).
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from manager_pipeline.contract import load_variables, resolve
from manager_pipeline.terraform import BackendSettings, ensure_toolchain, state_key
from manager_pipeline.terraform.runner import TerraformRunner
from manager_pipeline.terraform.workdir import (
    ENDPOINT_OVERRIDE_FILE,
    PLAN_FILE,
    TFVARS_FILE,
    copy_module,
    endpoint_override,
    provider_aliases,
)

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "terraform"
# The original pipeline's example, as it ships (shared/mission/upstream-variables.extended.yml).
EXTENDED = Path(__file__).resolve().parents[2] / "examples" / "original_pipeline" / "variables.extended.yml"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
def base_document(project: str) -> dict:
    return {
        "project_name": project,
        "cloud_provider": "aws",
        "environments": {
            "staging": {
                "region": REGION,
                "instance_type": "t3.micro",
                "min_instances": 1,
                "max_instances": 3,
                "enable_monitoring": False,
                "backup_retention_days": 3,
            }
        },
        "networking": {"vpc_cidr": "10.40.0.0/16", "availability_zones": 2, "enable_nat_gateway": False},
        "tags": {"Team": "platform", "Stage": "{{ environment }}"},
    }


def tfvars_for(document: dict) -> dict:
    """What a run hands Terraform for this document's staging environment."""
    data = load_variables(json.dumps(document), list(document["environments"]))
    return resolve(data, "staging", "app").to_tfvars()


@dataclass
class Stack:
    """One working directory on one state, driven like a run drives it."""

    path: Path
    runner: TerraformRunner
    project: str
    endpoint: str
    # Without the shared provider process: one process serving two configurations of the aws
    # provider (the backup copy region's alias) mixes them up, and Terraform hangs on retries.
    solo_runner: TerraformRunner | None = None

    @property
    def name(self) -> str:
        return f"{self.project}-staging"

    def client(self, service: str, region: str = REGION):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region, **_boto_credentials())

    def apply(self, document: dict, solo: bool = False) -> dict:
        """Plan and apply ``document``; the module's outputs (values only; a null output is left out)."""
        runner = self.solo_runner if solo else self.runner
        (self.path / TFVARS_FILE).write_text(json.dumps(tfvars_for(document), indent=2, sort_keys=True))
        plan_file = self.path / PLAN_FILE
        runner.plan(plan_file)
        runner.apply(plan_file)
        return {name: output["value"] for name, output in runner.outputs().items()}

    def assert_no_changes(self, solo: bool = False) -> None:
        changed, result = (self.solo_runner if solo else self.runner).plan(self.path / PLAN_FILE)
        assert not changed, "a re-plan right after apply shows changes:\n" + "\n".join(
            line for line in result.stdout.splitlines() if line.strip().startswith(("#", "~", "+", "-", "Plan:"))
        )

    def state(self) -> list[str]:
        return self.runner._check("state list", self.runner._run("state list")).stdout.split()

    def state_rm(self, *addresses: str) -> None:
        self.runner._check("state rm", self.runner._run("state rm", *addresses))


def _boto_credentials() -> dict:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _open_stack(root: Path, endpoint: str, tools_dir: Path, project: str, gaps: bool = True):
    """A working directory with the module on its own state key, its provider started once."""
    bucket = f"sections-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **_boto_credentials()).create_bucket(Bucket=bucket)
    backend = BackendSettings(bucket=bucket, region=REGION, key=state_key(project, "staging"), endpoint_url=endpoint)
    copy_module(root, MODULE, backend, endpoint)
    if not gaps:
        # Provider settings only: every resource of the module, the stand-in's gaps included.
        (root / ENDPOINT_OVERRIDE_FILE).write_text(endpoint_override(endpoint, provider_aliases(root)))
    toolchain = ensure_toolchain(tools_dir)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(root)),
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
        **toolchain.env(),
    }
    return root, toolchain, env


def with_section(stack: Stack, **sections) -> dict:
    document = base_document(stack.project)
    document.update(copy.deepcopy(sections))
    return document


def gone(call, *codes: str) -> bool:
    """True when ``call`` fails with one of the not-found ``codes``."""
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in codes
    return False


