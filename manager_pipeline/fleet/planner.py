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
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.config.model import ManagerConfig, SourceSpec
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.pipeline import Terraform, make_plan, prepare, read_config
from manager_pipeline.plans import Plans, PlanState
from manager_pipeline.policy import Checkov, PlanToScan, PolicyResult, load_reviewed_skips, resolve_policy, scan_many
from manager_pipeline.redact import redact_text
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import PlanSummary
from manager_pipeline.terraform.workdir import module_digest

# Plans checked in one engine call: more per call amortise its start, fewer bound its memory.
BATCH = 50

Fetch = Callable[[SourceSpec, DispatchEvent], VariablesDocument]
# The AWS target of an environment: with the credentials of its policy's `aws:`, when it names some.
TargetFor = Callable[[str], AwsTarget]


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
    # The policy checks that fail on this plan and not on the partition's newest plan before it
    # ("CKV_ID address"); None: not checked (see ``policy_note``).
    new_policy_failures: tuple[str, ...] | None = None
    policy_note: str = ""

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
    terraform: Terraform
    plans: Plans
    module_dir: Path
    root: Path
    run_id: str
    trigger: str = "fleet"
    # The manager's own AWS target, where kept states of failed applies are shared (None: each environment's).
    shared_target: AwsTarget | None = None
    # The policy engine: every plan is checked in one engine call per batch (None: plans are not checked).
    checkov: Checkov | None = None

    def __post_init__(self) -> None:
        self.digest = module_digest(self.module_dir)
        # Each plan's JSON until the policy batch has read it (sensitive values: never written, dropped after).
        self._plan_json: dict[Partition, dict] = {}
        self._lock = threading.Lock()

    def plan(self, partition: Partition) -> PartitionPlan:
        started = time.monotonic()
        try:
            summary, plan_id = self._plan(partition)
        except Exception as exc:  # noqa: BLE001 - one partition's failure is its own result
            return PartitionPlan(partition, error=_first_line(exc), seconds=time.monotonic() - started)
        return PartitionPlan(partition, summary=summary, plan_id=plan_id, seconds=time.monotonic() - started)

    def _plan(self, partition: Partition) -> tuple[PlanSummary, str]:
        # The same stages as a deploy run's, in the same order: nothing re-assembled here.
        event = DispatchEvent(partition.source, partition.environment, plan_only=True, trigger=self.trigger)
        request = ResolvedRequest.resolve(self.config, event)
        document = self.fetch(request.source, event)
        deploy = read_config(document, request.environments, partition.environment, partition.source)
        target = self.target_for(partition.environment)
        # Many partitions at once: their Terraform lines are not streamed (each result is reported whole).
        prepared = prepare(
            self.terraform,
            target,
            self.root / f"{partition.source}-{partition.environment}",
            self.module_dir,
            deploy,
            shared_target=self.shared_target,
        )
        made = make_plan(
            self.terraform, target, prepared.workdir, event, document, request.repo, self.plans, self.run_id
        )
        saved = made.plan
        self.plans.transition(saved.plan_id, PlanState.PREVIEW, note=f"{self.trigger}: plan only")
        if self.checkov is not None:
            with self._lock:
                self._plan_json[partition] = made.plan_json
        # The working directory holds the values Terraform was given; the plan store keeps what is needed.
        shutil.rmtree(prepared.workdir.path, ignore_errors=True)
        return saved.summary, saved.plan_id

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
            results = list(pool.map(one, partitions))
        return self._check_policies(results)

    def _check_policies(self, results: list[PartitionPlan]) -> list[PartitionPlan]:
        """The policy checks of every plan, in one engine call per batch; each result says which checks its
        plan fails that the partition's newest plan before it did not (what the module change introduces)."""
        if self.checkov is None:
            return results
        known = self.checkov.checks
        reviewed = load_reviewed_skips(self.module_dir, known=known)
        planned = [r for r in results if r.plan_id and r.partition in self._plan_json]
        verdicts: dict[str, PolicyResult] = {}
        note = ""
        for start in range(0, len(planned), BATCH):
            batch = planned[start : start + BATCH]
            items = [
                PlanToScan(
                    self._plan_json[r.partition],
                    resolve_policy(
                        r.partition.environment,
                        self.config.policy(r.partition.environment).checks,
                        root=self.config.path.parent,
                        reviewed_skips=reviewed,
                    ),
                    r.partition.source,
                )
                for r in batch
            ]
            try:
                for result, verdict in zip(batch, scan_many(items, checkov=self.checkov), strict=True):
                    verdicts[result.plan_id] = verdict
                    self.plans.attach_policy(result.plan_id, verdict.to_dict())
            except ManagerError as exc:
                note = f"not checked: {_first_line(exc)}"
        self._plan_json.clear()
        checked = []
        for result in results:
            verdict = verdicts.get(result.plan_id or "")
            if verdict is None:
                checked.append(replace(result, policy_note=note) if result.plan_id else result)
                continue
            found = {f"{f.check_id} {f.resource}" for f in (*verdict.failures, *verdict.warnings)}
            before = self._earlier_failures(result.partition)
            checked.append(replace(result, new_policy_failures=tuple(sorted(found - before))))
        return checked

    def _earlier_failures(self, partition: Partition) -> set[str]:
        """What the policy found on the partition's newest plan that is not a preview (empty: none checked)."""
        earlier = self.plans.newest_candidate(partition.source, partition.environment)
        verdict = earlier.policy if earlier else None
        if not verdict:
            return set()
        return {f"{f['check_id']} {f['resource']}" for f in (*verdict.get("failures", ()), *verdict.get("warnings", ()))}


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
