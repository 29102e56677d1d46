"""Decommissioning: what a destroy of one partition works from, and which partitions of sources that
left manager.yaml still hold infrastructure.

A destroy plans with the variables of the partition's last applied plan (its record keeps what
Terraform received, its commit and repository), so it works after the source's repository or
variables file is gone, and after the source left manager.yaml. Such a source keeps its partition
while any environment's state holds a resource: the partition sync reports it with the command that
destroys it, and retires it only once that destroy is applied. The state objects stay in their
versioned bucket: the state before a destroy can always be read back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.config.model import ManagerConfig, SourceSpec
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.plans import Plan, Plans, PlanState
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform.workdir import BackendSettings, read_state


def state_addresses(state: dict | None) -> tuple[str, ...]:
    """The addresses of the resources a Terraform state (its JSON) holds; () for none, or no state."""
    addresses = []
    for resource in (state or {}).get("resources") or []:
        if resource.get("mode") != "managed":
            continue
        address = f"{resource.get('type')}.{resource.get('name')}"
        if resource.get("module"):
            address = f"{resource['module']}.{address}"
        for instance in resource.get("instances") or []:
            key = instance.get("index_key")
            addresses.append(address if key is None else f"{address}[{json.dumps(key)}]")
    return tuple(sorted(addresses))


@dataclass(frozen=True)
class PartitionState:
    """What one partition's state object holds (``exists``: whether there is one at all)."""

    source: str
    environment: str
    where: str
    exists: bool
    addresses: tuple[str, ...] = ()

    @property
    def holds_infrastructure(self) -> bool:
        return bool(self.addresses)


def partition_states(target: AwsTarget, partitions: Iterable[tuple[str, str]]) -> list[PartitionState]:
    """The state of each (source, environment), read from the state bucket."""
    s3 = None
    found = []
    for source, environment in partitions:
        if s3 is None:
            target.ensure_state_bucket()
            s3 = target.client("s3")
        backend = BackendSettings.of_partition(target, source, environment)
        state = read_state(s3, backend)
        where = f"s3://{backend.bucket}/{backend.key}"
        found.append(PartitionState(source, environment, where, state is not None, state_addresses(state)))
    return found


def check_state_versioned(target: AwsTarget) -> None:
    """A destroy only where the state bucket keeps every version: the state before it stays readable."""
    bucket = target.state_bucket
    try:
        status = target.client("s3").get_bucket_versioning(Bucket=bucket).get("Status")
    except (BotoCoreError, ClientError) as exc:
        raise ManagerError(f"cannot read the versioning of the state bucket {bucket}: {exc}") from None
    if status != "Enabled":
        raise ManagerError(
            f"the state bucket {bucket} is not versioned ({status or 'never enabled'}): enable versioning on it, "
            "so the state before the destroy stays recoverable, then destroy again; nothing was planned"
        )


def last_applied_plan(store: Plans, source: str, environment: str) -> Plan | None:
    """The partition's newest applied plan that built something (not a destroy): its variables, commit and
    repository are what a destroy works from."""
    applied = store.list_plans(state=PlanState.APPLIED, source=source, environment=environment)
    built = [plan for plan in applied if not plan.destroy]
    return built[-1] if built else None


def recorded_source(plan: Plan) -> SourceSpec:
    """The source as ``plan`` knew it, for a destroy after the source left manager.yaml."""
    return SourceSpec(name=plan.source, environments=(plan.environment,), repo=plan.repo)


def nothing_to_destroy(state: PartitionState, config: ManagerConfig) -> str | None:
    """Why a destroy of ``state``'s partition has nothing to do (one line), or None when it has."""
    if state.holds_infrastructure:
        return None
    what = f"its state {state.where} holds no resources" if state.exists else f"there is no state at {state.where}"
    unknown = ""
    if state.source not in config.sources:
        known = ", ".join(sorted(config.sources)) or "none"
        unknown = f" (`{state.source}` is not a source in {config.path.name} either; registered: {known})"
    return f"{state.source}/{state.environment}: nothing to destroy: {what}{unknown}; nothing was planned"


def unbuildable(state: PartitionState, built_by: Plan | None, config: ManagerConfig) -> str | None:
    """Why a destroy of a partition whose state holds resources cannot be planned (one line), or None."""
    if built_by is not None or not state.holds_infrastructure:
        return None
    if state.source in config.sources:
        fix = (
            f"deploy it once with `manager-pipeline run --source {state.source} --env {state.environment}` "
            "(its applied plan is what a destroy works from)"
        )
    else:
        fix = f"register `{state.source}` in {config.path.name} again and deploy it once"
    return (
        f"{state.where} holds {len(state.addresses)} resource(s), but no plan of {state.source}/{state.environment} "
        f"was applied by this manager, so the variables they were built with are unknown: {fix}, or remove them "
        "with Terraform by hand; nothing was planned"
    )


@dataclass(frozen=True)
class DestroyInputs:
    """What the destroy run plans from: the request, and the last applied plan's variables and commit."""

    request: ResolvedRequest
    document: VariablesDocument
    deploy_config: DeployConfig
    built_by: Plan


def destroy_inputs(config: ManagerConfig, store: Plans, event: DispatchEvent) -> DestroyInputs:
    """The inputs of a destroy of ``event``'s partition; a ManagerError when no applied plan gives them."""
    built_by = last_applied_plan(store, event.source, event.environment)
    if built_by is None:
        raise ManagerError(
            f"nothing to destroy for {event.source}/{event.environment}: no plan of it was applied by this manager "
            f"(`manager-pipeline destroy {event.source} {event.environment}` says what its state holds)"
        )
    document = VariablesDocument(
        source=built_by.source,
        text=json.dumps(built_by.tfvars, indent=2, sort_keys=True),
        location=f"the variables of plan {built_by.plan_id} (applied last)",
        sha=built_by.sha,
        branch=built_by.branch,
        branch_verified=built_by.branch_verified,
    )
    return DestroyInputs(
        request=ResolvedRequest.resolve(config, event, recorded_source(built_by)),
        document=document,
        deploy_config=DeployConfig.from_tfvars(built_by.tfvars),
        built_by=built_by,
    )


def left_behind(target: AwsTarget, config: ManagerConfig, removed: Iterable[str]) -> list[PartitionState]:
    """The partitions of sources that left manager.yaml whose state still holds resources (in any of the
    manager's environments): their source partitions stay until those are destroyed."""
    partitions = [(source, environment) for source in removed for environment in config.environments]
    return [state for state in partition_states(target, partitions) if state.holds_infrastructure]


def waiting_report(kept: list[PartitionState]) -> str:
    """One line naming each kept partition, what its state holds and the command that destroys it."""
    parts = [
        f"`{state.source}` in {state.environment} ({len(state.addresses)} resource(s) in {state.where}): "
        f"`manager-pipeline destroy {state.source} {state.environment}`"
        for state in kept
    ]
    return (
        "kept the partitions of sources that left manager.yaml with infrastructure still in their state: "
        + "; ".join(parts)
        + ". Approve and apply each destroy plan; a source's partition is retired once its states hold nothing"
    )
