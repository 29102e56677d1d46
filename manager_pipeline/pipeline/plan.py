"""Stage: a saved plan of a prepared working directory, kept in the plan store (its file, text, record)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.events import DispatchEvent
from manager_pipeline.pipeline.prepare import Terraform
from manager_pipeline.plans import Plan, PlanFacts, Plans
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import Workdir
from manager_pipeline.terraform.runner import LineSink


@dataclass(frozen=True)
class MadePlan:
    plan: Plan
    # `terraform show -json` of the plan: it holds sensitive values in clear, so it never leaves the
    # process that made it (the policy stage reads it here, or makes it again from the plan file).
    plan_json: dict[str, Any]


def make_plan(
    terraform: Terraform,
    target: AwsTarget,
    workdir: Workdir,
    event: DispatchEvent,
    document: VariablesDocument,
    repo: str | None,
    store: Plans,
    run_id: str,
    *,
    on_line: LineSink | None = None,
) -> MadePlan:
    """Plan in ``workdir`` (a destroy plan for a destroy event) and keep the plan in ``store``."""
    with terraform.session(workdir.path, target, on_line) as (runner, toolchain):
        has_changes, result = runner.plan(workdir.plan_file, destroy=event.destroy)
        plan_json = runner.show_json(workdir.plan_file)
    facts = PlanFacts.of_plan(event, document, repo, workdir, toolchain.version, has_changes, plan_json, run_id=run_id)
    return MadePlan(store.save(workdir.plan_file, result.stdout, facts), plan_json)
