from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


class PlanStore:
    """Plans under a folder of the Dagster instance: ``<root>/<plan_id>/``."""

    def __init__(self, root: Path):
        self.root = root

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
        )
        (directory / META_FILE).write_text(json.dumps(artifact.to_dict(), indent=2) + "\n")
        return artifact

    def load(self, plan_id: str) -> PlanArtifact:
        meta = self.root / plan_id / META_FILE
        if not plan_id.isalnum() or not meta.is_file():
            raise ManagerError(f"no plan `{plan_id}`; `manager-pipeline plans` lists the plans")
        return PlanArtifact.from_dict(json.loads(meta.read_text()))

    def list(self) -> list[PlanArtifact]:
        plans = [PlanArtifact.from_dict(json.loads(p.read_text())) for p in self.root.glob(f"*/{META_FILE}")]
        return sorted(plans, key=lambda p: p.created_at)
