"""Plan many partitions in one process, side by side: the blast radius of a module change, and a
re-plan of every source at Terraform's pace.

A partitioned backfill pays Dagster's cost of a run per partition (a queue slot, a new process,
the code location imported again: seconds each). Here one run plans every partition it is given,
``parallelism`` at a time, each in its own working directory with its own state key. Every plan is
kept in the plan store as a preview: it is visible (``manager-pipeline plans``, the report) and
can never be applied. What goes wrong with one partition is its own result, never the others'.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from manager_pipeline.aws import AwsTarget
from manager_pipeline.config import ManagerConfig, SourceSpec
from manager_pipeline.contract import load_variables, resolve
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback.redact import redact_text, register_secret
from manager_pipeline.plans import PlanFacts, PlanState, Plans
from manager_pipeline.request import ResolvedRequest
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import BackendSettings, PlanSummary, prepare_workdir
from manager_pipeline.terraform.runner import LineSink, TerraformRunner
from manager_pipeline.terraform.toolchain import Toolchain
from manager_pipeline.terraform.workdir import module_digest, read_previous_state

Fetch = Callable[[SourceSpec, DispatchEvent], VariablesDocument]
# The AWS target of an environment: with the credentials of its policy's `aws:`, when it names some.
TargetFor = Callable[[str], AwsTarget]


class Sessions(Protocol):
    """What TerraformResource gives: a runner for a working directory (and its provider processes)."""

    def session(
        self, working_dir: Path, aws: AwsTarget, on_line: LineSink | None = None
    ) -> AbstractContextManager[tuple[TerraformRunner, Toolchain]]: ...


@dataclass(frozen=True)
class Partition:
    source: str
    environment: str

    @property
    def label(self) -> str:
        return f"{self.source}/{self.environment}"


@dataclass(frozen=True)
class PartitionPlan:
    """One partition's plan in a fleet run: its summary and plan id, or the first line of its error."""

    partition: Partition
    summary: PlanSummary | None = None
    plan_id: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


def fleet_partitions(
    config: ManagerConfig, sources: Iterable[str] = (), environments: Iterable[str] = ()
) -> list[Partition]:
    """Every declared partition, or those of the named sources and environments; an unknown name is a
    ConfigError that says what manager.yaml declares."""
    sources, environments = list(sources), list(environments)
    for name in sources:
        if name not in config.sources:
            known = ", ".join(sorted(config.sources)) or "none"
            raise ManagerError(f"unknown source `{name}`: manager.yaml declares {known}")
    for name in environments:
        if name not in config.environments:
            known = ", ".join(config.environments) or "none"
            raise ManagerError(f"unknown environment `{name}`: manager.yaml declares {known}")
    return [
        Partition(spec.name, environment)
        for spec in sorted(config.sources.values(), key=lambda s: s.name)
        for environment in spec.environments
        if (not sources or spec.name in sources) and (not environments or environment in environments)
    ]


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # Terraform's own diagnostic ("Error: ...") says more than the manager's preamble.
    for line in lines:
        if line.startswith("Error:") or line.startswith("│ Error:"):
            return redact_text(line.lstrip("│ ").strip())[:300]
    if not lines:
        return redact_text(text)[:300]
    # "... is not valid (1 problem):" says what follows: the first problem itself is the line to show.
    first = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return redact_text(first)[:300]


@dataclass
class FleetPlanner:
    """Plans partitions with one module: each in ``root/<source>-<environment>``, kept as a preview."""

    config: ManagerConfig
    fetch: Fetch
    target_for: TargetFor
    terraform: Sessions
    plans: Plans
    module_dir: Path
    root: Path
    run_id: str
    trigger: str = "fleet"

    def __post_init__(self) -> None:
        self.digest = module_digest(self.module_dir)

    def plan(self, partition: Partition) -> PartitionPlan:
        started = time.monotonic()
        try:
            summary, plan_id = self._plan(partition)
        except Exception as exc:  # noqa: BLE001 - one partition's failure is its own result
            return PartitionPlan(partition, error=_first_line(exc), seconds=time.monotonic() - started)
        return PartitionPlan(partition, summary=summary, plan_id=plan_id, seconds=time.monotonic() - started)

    def _plan(self, partition: Partition) -> tuple[PlanSummary, str]:
        event = DispatchEvent(partition.source, partition.environment, plan_only=True, trigger=self.trigger)
        request = ResolvedRequest.resolve(self.config, event)
        document = self.fetch(request.source, event)
        data = load_variables(document.text, list(request.environments), document.location)
        deploy = resolve(data, partition.environment, partition.source, document.location)
        register_secret(deploy.slack_webhook)
        target = self.target_for(partition.environment)
        target.ensure_state_bucket()
        backend = BackendSettings.of_partition(target, partition.source, partition.environment)
        workdir = prepare_workdir(
            self.root / f"{partition.source}-{partition.environment}",
            self.module_dir,
            deploy,
            backend,
            target.endpoint_url,
        )
        read_previous_state(workdir.path, target.client("s3"), backend)
        # Many partitions at once: their Terraform lines are not streamed (each result is reported whole).
        with self.terraform.session(workdir.path, target) as (runner, toolchain):
            runner.init(workdir.backend_file)
            has_changes, result = runner.plan(workdir.plan_file)
            plan_json = runner.show_json(workdir.plan_file)
        facts = PlanFacts.of_plan(
            event, document, request.repo, workdir, toolchain.version, has_changes, plan_json, self.run_id
        )
        saved = self.plans.save(workdir.plan_file, result.stdout, facts)
        self.plans.transition(saved.plan_id, PlanState.PREVIEW, note=f"{self.trigger}: plan only")
        # The working directory holds the values Terraform was given; the plan store keeps what is needed.
        shutil.rmtree(workdir.path, ignore_errors=True)
        return facts.summary, saved.plan_id

    def plan_all(
        self,
        partitions: list[Partition],
        parallelism: int = 0,
        on_result: Callable[[PartitionPlan], None] | None = None,
    ) -> list[PartitionPlan]:
        """Plan ``partitions``, ``parallelism`` at a time (0: one per core); results in the given order."""
        workers = max(1, min(parallelism or os.cpu_count() or 1, len(partitions) or 1))

        def one(partition: Partition) -> PartitionPlan:
            result = self.plan(partition)
            if on_result:
                on_result(result)
            return result

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet") as pool:
            return list(pool.map(one, partitions))


def ordered(results: Iterable[PartitionPlan]) -> Iterator[PartitionPlan]:
    """Failures first, then destroys and replacements (most first), then other changes, then no changes."""

    def rank(result: PartitionPlan) -> tuple:
        if result.failed or result.summary is None:
            return (0, 0, result.partition.label)
        summary = result.summary
        dangerous = summary.destroy
        if dangerous:
            return (1, -dangerous, result.partition.label)
        if summary.has_changes:
            return (2, -(summary.add + summary.change), result.partition.label)
        return (3, 0, result.partition.label)

    return iter(sorted(results, key=rank))
