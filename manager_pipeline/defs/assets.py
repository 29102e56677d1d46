"""The fleet as Dagster assets: what every partition (environment x source) holds and what it was last
planned to become, and the checks that turn amber or red when a person must act.

- ``infrastructure`` is materialized by every apply that succeeded: its outputs (sensitive ones masked),
  what the state holds by resource type, the plan, the commit and a link to the source. A destroy that
  applied materializes it too, with ``status: destroyed``, and its ``live`` check turns amber: the
  partition no longer reads as live. A failed apply turns ``live`` red.
- ``terraform_plan`` is materialized by every plan (deploy, destroy, fleet preview): the counts, what it
  destroys, its approval state; its ``approved`` check is amber while a plan waits for approval and red
  when an apply was refused.
- ``drift`` on ``infrastructure``: amber when a drift check found a change made outside the manager.

Dagster records checks per partition, and its Checks tab shows each check's latest evaluation with its
partition and the history of every partition; a run's own page lists the evaluations it made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from manager_pipeline.defs.partitions import deploy_partitions, partition_key
from manager_pipeline.plans import Plan
from manager_pipeline.redact import redact, redact_text

INFRASTRUCTURE = AssetKey("infrastructure")
TERRAFORM_PLAN = AssetKey("terraform_plan")
OWNERS = ["team:platform"]

LIVE = AssetCheckSpec(
    "live",
    asset=INFRASTRUCTURE,
    description="Red: the partition's last apply failed. Amber: its infrastructure was destroyed. Green: what the "
    "manager last applied is live.",
)
DRIFT = AssetCheckSpec(
    "drift",
    asset=INFRASTRUCTURE,
    description="Amber: a drift check found resources changed outside the manager (the drift issue says which).",
)
APPROVED = AssetCheckSpec(
    "approved",
    asset=TERRAFORM_PLAN,
    description="Amber: the partition's newest plan waits for approval. Red: an apply of it was refused.",
)
POLICY = AssetCheckSpec(
    "policy",
    asset=TERRAFORM_PLAN,
    description="Red: an enforced policy check failed (the plan is policy-failed). Amber: checks that only warn failed.",
)
CHECKS = [LIVE, DRIFT, APPROVED, POLICY]


def fleet_assets(environments) -> list[AssetSpec]:
    partitions = deploy_partitions(environments)
    return [
        AssetSpec(
            INFRASTRUCTURE,
            partitions_def=partitions,
            description="What Terraform manages for each source and environment: materialized by every apply that "
            "succeeded (outputs, resources by type, the plan and commit); a destroy marks its partition destroyed.",
            owners=OWNERS,
            kinds={"terraform", "aws"},
            group_name="fleet",
        ),
        AssetSpec(
            TERRAFORM_PLAN,
            partitions_def=partitions,
            description="The newest saved plan of each source and environment: materialized by every plan (deploy, "
            "destroy, fleet preview) with its counts, what it destroys and its approval state.",
            owners=OWNERS,
            kinds={"terraform"},
            group_name="fleet",
        ),
    ]


@multi_asset_check(
    specs=CHECKS,
    name="fleet_checks",
    description="Recorded by the manager's runs (deploy, apply_plan, destroy, drift_check, plan_fleet) for the "
    "partition they ran; there is nothing to execute here.",
)
def fleet_checks() -> AssetCheckResult:
    raise Failure(
        "these checks are recorded by the manager's runs of each partition: start a deploy, an apply or a drift check "
        "of the partition instead (manager-pipeline run / apply / drift)"
    )


def _partition(plan: Plan) -> str:
    return partition_key(plan.source, plan.environment)


def check(spec: AssetCheckSpec, partition: str, passed: bool, description: str, warn: bool = False):
    """One evaluation of ``spec`` for ``partition``: amber (``warn``) or red when it did not pass."""
    severity = AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR
    return AssetCheckEvaluation(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=passed,
        partition=partition,
        severity=severity,
        description=redact_text(description)[:1000],
    )


def plan_materialization(plan: Plan, state: str, note: str = "") -> AssetMaterialization:
    """The partition's newest plan, as a person judges it: counts, destroys first, its state."""
    summary = plan.summary
    metadata: dict[str, Any] = {
        "state": state,
        "summary": summary.line(),
        "destroys": MetadataValue.md(
            "\n".join(f"- `{redact_text(address)}`" for address in summary.deletions) or "nothing"
        ),
        "plan_id": plan.plan_id,
        "commit": plan.sha or "(not in git)",
        "branch": plan.branch or "(unknown)",
        "add": summary.add,
        "change": summary.change,
        "destroy": summary.destroy,
        "kind": "destroy" if plan.destroy else "deploy",
    }
    if note:
        metadata["note"] = redact_text(note)[:1000]
    if plan.run_id:
        metadata["planned_by_run"] = plan.run_id
    return AssetMaterialization(TERRAFORM_PLAN, partition=_partition(plan), metadata=metadata)


def source_link(plan: Plan) -> str | None:
    if plan.repo and plan.sha:
        return f"https://github.com/{plan.repo}/tree/{plan.sha}/infra"
    return None


def infrastructure_materialization(
    plan: Plan, outputs: Mapping[str, Any], resources: Mapping[str, int], run_url: str
) -> AssetMaterialization:
    """What the partition holds after ``plan`` applied: live, or destroyed."""
    metadata: dict[str, Any] = {
        "status": "destroyed" if plan.destroy else "live",
        "resources": sum(resources.values()),
        "resources_by_type": MetadataValue.json(dict(resources)),
        "outputs": MetadataValue.json(redact(dict(outputs))),
        "plan_id": plan.plan_id,
        "commit": plan.sha or "(not in git)",
        "branch": plan.branch or "(unknown)",
        "apply_run": MetadataValue.url(run_url),
    }
    link = source_link(plan)
    if link:
        metadata["source"] = MetadataValue.url(link)
    return AssetMaterialization(INFRASTRUCTURE, partition=_partition(plan), metadata=metadata)
