from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from manager_pipeline.errors import ManagerError
from manager_pipeline.terraform.plan import PlanSummary

PLAN_FILE = "plan.tfplan"
TEXT_FILE = "plan.txt"
META_FILE = "plan.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PlanArtifact:
    """A saved plan and everything needed to decide later whether it may still be applied.

    Only derived facts are kept beside the plan file: the summary names resources, never
    values (``show -json`` would hold sensitive values in clear, so it is not stored).
    """

    plan_id: str
    source: str
    environment: str
    sha: str | None
    branch: str | None
    plan_sha256: str
    variables_digest: str
    module_digest: str
    terraform_version: str
    created_at: str
    has_changes: bool
    summary: PlanSummary
    directory: Path
    planned_outputs: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    # The validated variables the plan was made from (what Terraform received), to init an apply.
    tfvars: dict[str, Any] = field(default_factory=dict)

    @property
    def plan_file(self) -> Path:
        return self.directory / PLAN_FILE

    @property
    def text_file(self) -> Path:
        return self.directory / TEXT_FILE

    def text(self) -> str:
        return self.text_file.read_text(encoding="utf-8")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary.to_dict()
        data["directory"] = str(self.directory)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanArtifact:
        fields = dict(data)
        fields["summary"] = PlanSummary.from_dict(data["summary"])
        fields["directory"] = Path(data["directory"])
        return cls(**fields)


class RemoteFiles(Protocol):
    """Where plan files are kept besides the local folder (S3 when PLAN_ARTIFACT_BUCKET is set)."""

    def put(self, plan_id: str, name: str, path: Path) -> None: ...
    def get(self, plan_id: str, name: str, path: Path) -> bool: ...


class S3PlanFiles:
    """Plan files in an S3 bucket under ``plans/<plan_id>/``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "plans"):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def _key(self, plan_id: str, name: str) -> str:
        return f"{self.prefix}/{plan_id}/{name}"

    def put(self, plan_id: str, name: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(plan_id, name))

    def get(self, plan_id: str, name: str, path: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(plan_id, name), str(path))
        except ClientError:
            return False
        return True


class PlanStore:
    """Plans in a folder of the Dagster instance (``<root>/<plan_id>/``), and in ``remote`` when given.

    With a remote store the folder is a cache: a plan made on one machine is applied on another.
    """

    def __init__(self, root: Path, remote: RemoteFiles | None = None):
        self.root = root
        self.remote = remote

    def save(
        self,
        *,
        plan_file: Path,
        text: str,
        summary: PlanSummary,
        has_changes: bool,
        source: str,
        environment: str,
        sha: str | None,
        branch: str | None,
        variables_digest: str,
        module_digest: str,
        terraform_version: str,
        planned_outputs: dict[str, Any],
        run_id: str | None,
        tfvars: dict[str, Any],
    ) -> PlanArtifact:
        plan_id = secrets.token_hex(6)
        directory = self.root / plan_id
        directory.mkdir(parents=True)
        shutil.copyfile(plan_file, directory / PLAN_FILE)
        (directory / TEXT_FILE).write_text(text, encoding="utf-8")
        artifact = PlanArtifact(
            plan_id=plan_id,
            source=source,
            environment=environment,
            sha=sha,
            branch=branch,
            plan_sha256=sha256_file(directory / PLAN_FILE),
            variables_digest=variables_digest,
            module_digest=module_digest,
            terraform_version=terraform_version,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            has_changes=has_changes,
            summary=summary,
            directory=directory,
            planned_outputs=planned_outputs,
            run_id=run_id,
            tfvars=tfvars,
        )
        (directory / META_FILE).write_text(json.dumps(artifact.to_dict(), indent=2) + "\n")
        if self.remote:
            for name in (PLAN_FILE, TEXT_FILE, META_FILE):
                self.remote.put(plan_id, name, directory / name)
        return artifact

    def load(self, plan_id: str) -> PlanArtifact:
        if not plan_id.isalnum():
            raise ManagerError(f"no plan `{plan_id}`; `manager-pipeline plans` lists the plans")
        directory = self.root / plan_id
        if not (directory / META_FILE).is_file() and self.remote:
            directory.mkdir(parents=True, exist_ok=True)
            for name in (META_FILE, PLAN_FILE, TEXT_FILE):
                self.remote.get(plan_id, name, directory / name)
        if not (directory / META_FILE).is_file():
            raise ManagerError(f"no plan `{plan_id}`; `manager-pipeline plans` lists the plans")
        data = json.loads((directory / META_FILE).read_text())
        data["directory"] = str(directory)
        return PlanArtifact.from_dict(data)
