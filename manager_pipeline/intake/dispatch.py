"""Inbox events -> run requests (plain data): one run per delivery, source and environment.

Within what one tick reads, a newer delivery for the same source, environment and branch or
pull request supersedes the older ones: they get a note instead of a run. Runs already
queued are superseded by the sensor; a run already going checks again at its gate.

A row whose runs are requested becomes ``dispatching`` (with the runs), and ``dispatched`` only
once the sensor sees them in the instance. A run for an environment the loaded deploy job does
not have yet (manager.yaml gained it before the code location reloaded) is not requested: the
row stays pending with a note, and its other runs are requested (their run keys make asking
again harmless) until the location has reloaded.

A trigger repository's delivery (``Delivery.trigger_ref``) runs its infra sources as a push to
their default branch would: the environments whose ``apply_branches`` hold that branch, the
variables read at its head (the run resolves it), the application's repository, ref and commit
on the run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from manager_pipeline.config.model import ManagerConfig, SourceSpec
from manager_pipeline.events import HIDDEN_PREFIX, DispatchEvent
from manager_pipeline.intake.inbox import DISPATCHING, PENDING, InboxEvent
from manager_pipeline.intake.webhooks import Delivery, touches_source

INBOX_ID_TAG = HIDDEN_PREFIX + "inbox-id"
REF_TAG = HIDDEN_PREFIX + "ref"

PrTouches = Callable[[Delivery, SourceSpec], bool]
PullFiles = Callable[[str, int], "tuple[str, ...] | None"]


def pr_checker(pull_files: PullFiles | None) -> PrTouches:
    """Whether a pull request changes a source's variables; ``pull_files`` (GitHub's list of the
    files a pull request changes) is asked once per pull request head. Without it, every pull
    request of a source's repository counts as touching it."""
    files_of: dict[tuple[str, int, str | None], tuple[str, ...] | None] = {}

    def touches(delivery: Delivery, spec: SourceSpec) -> bool:
        key = (delivery.repo, delivery.pr, delivery.sha)
        if key not in files_of:
            files_of[key] = pull_files(delivery.repo, delivery.pr) if pull_files and delivery.pr else None
        return touches_source(spec, files_of[key])

    return touches


@dataclass(frozen=True)
class PlannedRun:
    source: str
    environment: str
    inbox_id: int
    delivery: Delivery

    @property
    def run_key(self) -> str:
        return f"{self.delivery.delivery_id}:{self.source}:{self.environment}"

    def tags(self) -> dict[str, str]:
        triggered = self.delivery.trigger_ref is not None
        event = DispatchEvent(
            source=self.source,
            environment=self.environment,
            # A trigger's commit is the application's: the infra source is read at its branch head.
            sha=None if triggered else self.delivery.sha,
            branch=None if triggered else self.delivery.branch,
            pr=self.delivery.pr,
            delivery_id=self.delivery.delivery_id,
            # A pull request's, and any button's ("Plan again"): a plan, never an apply.
            plan_only=self.delivery.pr is not None or self.delivery.environment is not None,
            trigger="webhook",
            # The application's pusher did not write the infra head a trigger's run plans: no author here,
            # so the approval asks GitHub for the author of the infra commit the plan was made at.
            author=None if triggered else self.delivery.author,
            trigger_repo=self.delivery.repo if triggered else None,
            trigger_ref=self.delivery.trigger_ref,
            trigger_sha=self.delivery.sha if triggered else None,
        )
        return event.to_tags() | {INBOX_ID_TAG: str(self.inbox_id), REF_TAG: self.delivery.ref_key}


def _triggered_environments(config: ManagerConfig, spec: SourceSpec, delivery: Delivery) -> tuple[list[str], str]:
    """The environments a trigger repository's delivery runs, or why none (manager.yaml changed since)."""
    trigger = spec.trigger_for(delivery.repo)
    if trigger is None:
        return [], f"{spec.name}: {delivery.repo} no longer triggers it"
    if not trigger.matches(delivery.trigger_ref or ""):
        return [], f"{spec.name}: {delivery.trigger_ref} no longer matches its trigger {delivery.repo}"
    branch = spec.default_branch
    environments = [e for e in spec.environments if branch in config.policy(e).apply_branches]
    if not environments:
        return [], f"{spec.name}: its default branch {branch} deploys to no environment"
    return environments, ""


@dataclass
class DispatchPlan:
    runs: list[PlannedRun] = field(default_factory=list)
    # inbox row id -> (state, note) or (state, note, [(source, environment), ...] requested)
    notes: dict[int, tuple] = field(default_factory=dict)


def plan_dispatch(
    events: list[InboxEvent],
    config: ManagerConfig,
    pr_touches: PrTouches,
    loaded_environments: Collection[str] | None = None,
) -> DispatchPlan:
    """``loaded_environments``: those the loaded deploy job has partitions for (None: all)."""
    newest: dict[tuple[str, str, str], PlannedRun] = {}
    reasons: dict[int, list[str]] = {}
    for event in events:
        delivery = event.delivery
        reasons.setdefault(event.id, [])
        for name in delivery.sources:
            spec = config.sources.get(name)
            if spec is None:
                reasons[event.id].append(f"{name}: no longer a source in manager.yaml")
                continue
            if delivery.trigger_ref is not None:
                environments, reason = _triggered_environments(config, spec, delivery)
                if reason:
                    reasons[event.id].append(reason)
                    continue
            elif delivery.environment is not None:
                if delivery.environment not in spec.environments:
                    reasons[event.id].append(f"{name}: no longer deploys to {delivery.environment}")
                    continue
                environments = [delivery.environment]
            elif delivery.pr is not None:
                if not pr_touches(delivery, spec):
                    reasons[event.id].append(f"{name}: the pull request changes nothing under {spec.variables_file}")
                    continue
                environments = list(spec.environments)
            else:
                environments = [e for e in spec.environments if delivery.branch in config.policy(e).apply_branches]
                if not environments:
                    reasons[event.id].append(f"{name}: branch {delivery.branch} deploys to no environment")
                    continue
            for environment in environments:
                key = (name, environment, delivery.ref_key)
                older = newest.get(key)
                if older is not None:
                    reasons[older.inbox_id].append(
                        f"{name}/{environment}: superseded by delivery {delivery.delivery_id}"
                    )
                newest[key] = PlannedRun(name, environment, event.id, delivery)
    plan = DispatchPlan()
    planned = sorted(newest.values(), key=lambda run: (run.inbox_id, run.source, run.environment))
    unloaded: set[int] = set()
    for run in planned:
        if loaded_environments is not None and run.environment not in loaded_environments:
            unloaded.add(run.inbox_id)
            reasons[run.inbox_id].append(
                f"{run.source}/{run.environment}: the loaded deploy job has no environment {run.environment} yet "
                "(reload the code location); tried again every tick"
            )
        else:
            plan.runs.append(run)
    requested: dict[int, list[tuple[str, str]]] = {}
    for run in plan.runs:
        requested.setdefault(run.inbox_id, []).append((run.source, run.environment))
    for row_id, notes in reasons.items():
        note = "; ".join(notes) or None
        if row_id in unloaded:
            plan.notes[row_id] = (PENDING, note)
        elif row_id in requested:
            plan.notes[row_id] = (DISPATCHING, note, requested[row_id])
        elif any("superseded" in n for n in notes):
            plan.notes[row_id] = ("superseded", note)
        else:
            plan.notes[row_id] = ("ignored", note)
    return plan
