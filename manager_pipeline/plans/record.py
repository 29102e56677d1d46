"""Plan: the one record of a saved plan, from its planning to its apply.

Its files (the binary plan and its text) live in the plan store; everything else is one row in
the manager's database. Only derived facts are kept: the summary names resources, never values
(``show -json`` holds sensitive values in clear, so it is not stored).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manager_pipeline.events import PLAN_ID_TAG, DispatchEvent
from manager_pipeline.plans.state import PlanState
from manager_pipeline.terraform.plan import PlanSummary, planned_outputs, summarize
from manager_pipeline.terraform.workdir import TFVARS_FILE

if TYPE_CHECKING:
    from manager_pipeline.sources import VariablesDocument
    from manager_pipeline.terraform.workdir import Workdir

PLAN_FILE = "plan.tfplan"
TEXT_FILE = "plan.txt"
# The policy stage's verdict on the plan (policy/engine.py's PolicyResult.to_dict(): check ids and
# resource addresses, never values).
POLICY_FILE = "policy.json"


@dataclass(frozen=True, kw_only=True)
class PlanFacts:
    """What a new plan is, as the run that made it knows it."""

    source: str
    environment: str
    sha: str | None
    # The branch the event or checkout named, and whether the commit was seen on it.
    branch: str | None
    branch_verified: bool = False
    pr: int | None = None
    author: str | None = None
    repo: str | None = None
    variables_digest: str
    module_digest: str
    terraform_version: str
    has_changes: bool
    summary: PlanSummary
    planned_outputs: dict[str, Any] = field(default_factory=dict)
    # The validated variables the plan was made from (what Terraform received), to init an apply.
    tfvars: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    # A destroy plan (`plan -destroy`): it removes everything the partition's state holds.
    destroy: bool = False

    @classmethod
    def of_plan(
        cls,
        event: DispatchEvent,
        document: VariablesDocument,
        repo: str | None,
        workdir: Workdir,
        terraform_version: str,
        has_changes: bool,
        plan_json: dict[str, Any],
        run_id: str,
    ) -> PlanFacts:
        """The facts of a plan just made in ``workdir`` (``plan_json``: its ``show -json``; values stay out)."""
        return cls(
            source=event.source,
            environment=event.environment,
            sha=document.sha,
            branch=document.branch,
            branch_verified=document.branch_verified,
            pr=event.pr,
            author=event.author,
            repo=repo,
            variables_digest=workdir.variables_digest,
            module_digest=workdir.module_digest,
            terraform_version=terraform_version,
            has_changes=has_changes,
            summary=summarize(plan_json),
            planned_outputs=planned_outputs(plan_json),
            tfvars=json.loads((workdir.path / TFVARS_FILE).read_text()),
            run_id=run_id,
            destroy=event.destroy,
        )


@dataclass(frozen=True, kw_only=True)
class Plan(PlanFacts):
    """A kept plan: its facts, where its files are, and where it stands."""

    plan_id: str
    created_at: float
    plan_sha256: str
    state: PlanState
    directory: Path
    apply_run_id: str | None = None
    note: str | None = None
    # When the plan's files were removed (MANAGER_PLAN_RETENTION); its record stays.
    files_pruned_at: float | None = None

    @property
    def candidate(self) -> bool:
        return self.state.candidate

    @property
    def plan_file(self) -> Path:
        return self.directory / PLAN_FILE

    @property
    def text_file(self) -> Path:
        return self.directory / TEXT_FILE

    @property
    def policy(self) -> dict[str, Any] | None:
        """What the policy stage found, when it checked this plan."""
        try:
            return json.loads((self.directory / POLICY_FILE).read_text())
        except (OSError, ValueError):
            return None

    def text(self) -> str:
        return self.text_file.read_text(encoding="utf-8")

    def apply_tags(self, trigger: str) -> dict[str, str]:
        """The tags of a run that applies this plan: its event, and the plan's id."""
        event = DispatchEvent(
            source=self.source,
            environment=self.environment,
            sha=self.sha,
            branch=self.branch,
            pr=self.pr,
            trigger=trigger,
            author=self.author,
            destroy=self.destroy,
        )
        return event.to_tags() | {PLAN_ID_TAG: self.plan_id}
