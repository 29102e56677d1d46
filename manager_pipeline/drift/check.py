"""The drift check of one partition: a refresh-only plan against the state its last apply left, with
the variables of that apply, in a working directory prepared as every deploy's is (``pipeline.prepare``:
a kept errored state is pushed before the check, so a failed apply's resources do not read as drift)."""

from __future__ import annotations

from pathlib import Path

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.contract import DeployConfig
from manager_pipeline.drift.report import DriftCheck, DriftReport, DriftStatus, drift_report
from manager_pipeline.pipeline import Terraform, prepare
from manager_pipeline.plans import Plan, Plans, PlanState
from manager_pipeline.terraform import BackendSettings
from manager_pipeline.terraform.runner import LineSink
from manager_pipeline.terraform.workdir import read_state

DRIFT_PLAN_FILE = "drift.tfplan"


def last_applied(store: Plans, source: str, environment: str) -> Plan | None:
    """The partition's newest applied plan: its variables are what the manager last gave Terraform."""
    applied = store.list_plans(state=PlanState.APPLIED, source=source, environment=environment)
    return applied[-1] if applied else None


def unchecked(source: str, environment: str, plan: Plan | None) -> DriftCheck | None:
    """Why a partition whose last applied plan is ``plan`` has no state to check (never applied, or
    destroyed); None when it has."""
    if plan is None:
        return DriftCheck(source, environment, DriftStatus.NO_STATE, detail="never applied by the manager")
    if plan.destroy:
        detail = f"its infrastructure was destroyed (plan {plan.plan_id})"
        return DriftCheck(source, environment, DriftStatus.NO_STATE, detail=detail, plan_id=plan.plan_id)
    return None


def check_partition(
    terraform: Terraform,
    target: AwsTarget,
    store: Plans,
    module_dir: Path,
    path: Path,
    source: str,
    environment: str,
    *,
    shared_target: AwsTarget | None = None,
    on_line: LineSink | None = None,
) -> DriftCheck:
    """The partition's drift (``target``: its environment's AWS). A held state lock raises
    ``StateLocked``: a check never waits for or forces it."""
    plan = last_applied(store, source, environment)
    skipped = unchecked(source, environment, plan)
    if skipped is not None:
        return skipped
    assert plan is not None
    target.ensure_state_bucket()
    backend = BackendSettings.of_partition(target, source, environment)
    if read_state(target.client("s3"), backend) is None:
        detail = f"no state object at s3://{backend.bucket}/{backend.key}"
        return DriftCheck(source, environment, DriftStatus.NO_STATE, detail=detail, plan_id=plan.plan_id)
    config = DeployConfig.from_tfvars(plan.tfvars)
    prepared = prepare(terraform, target, path, module_dir, config, shared_target=shared_target, on_line=on_line)
    workdir = prepared.workdir
    with terraform.session(workdir.path, target, on_line) as (runner, _):
        differs, _ = runner.plan_refresh_only(workdir.path / DRIFT_PLAN_FILE)
        report = drift_report(runner.show_json(workdir.path / DRIFT_PLAN_FILE)) if differs else DriftReport()
    status = DriftStatus.DRIFT if report.drifted else DriftStatus.NO_DRIFT
    return DriftCheck(source, environment, status, report, plan_id=plan.plan_id)
