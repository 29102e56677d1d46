"""The approval sensor's logic: which waiting plans to review in a tick, reviewing them, and which
approved plans get an apply run. Plain functions over the plan store; the sensor (defs/plans.py)
only reads its resources and cursor and hands back what this decides."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.plans.approvals import ApprovalSource, review
from manager_pipeline.plans.record import Plan
from manager_pipeline.plans.state import PlanState
from manager_pipeline.plans.store import ApprovalRecord, Plans

Audit = Callable[[Plan, list[ApprovalRecord]], None]


class Note(Protocol):
    """A webhook's note that a pull request may have been approved (intake's NotedApproval)."""

    id: int
    repo: str
    pr: int | None
    sha: str | None


def covered(config: ManagerConfig, plan: Plan) -> bool:
    """Whether manager.yaml still has the plan's environment and source (a destroy plan's source may have
    left it: destroying what it left behind is the point)."""
    return plan.environment in config.environments and (plan.source in config.sources or plan.destroy)


def review_waiting_plan(store: Plans, config: ManagerConfig, plan: Plan, approvals, audit: Audit) -> int:
    """Review one waiting plan; how many approval records the review added."""
    if not covered(config, plan):
        return 0
    policy = config.policy(plan.environment, destroy=plan.destroy)
    age_hours = (time.time() - plan.created_at) / 3600
    if age_hours > policy.max_plan_age_hours:
        store.transition(plan.plan_id, PlanState.EXPIRED, note=f"older than {policy.max_plan_age_hours:.0f} h; re-plan")
        return 0
    verdict = review(plan, policy, store, approvals if plan.repo else None)
    audit(plan, verdict.new)
    if verdict.approved:
        store.transition(plan.plan_id, PlanState.APPROVED, note=f"approved by {', '.join(verdict.accepted)}")
    return len(verdict.new)


# Every waiting plan is reviewed against GitHub at most this often; between full polls a tick reviews
# only the plans a webhook said may have been approved, and those with new recorded approvals.
FULL_POLL_S = 15.0


@dataclass
class ApprovalCursor:
    """The approval sensor's memory: when it last reviewed every waiting plan, and how many approval
    records each waiting plan had when it was last reviewed (a new one, e.g. a console approval, is
    looked at in the next tick)."""

    full_poll_at: float = 0.0
    judged: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> "ApprovalCursor":
        try:
            data = json.loads(text) if text else {}
            judged = {str(plan_id): int(count) for plan_id, count in data.get("judged", {}).items()}
            return cls(float(data.get("full_poll_at", 0.0)), judged)
        except (ValueError, TypeError, AttributeError):
            return cls()

    def to_json(self) -> str:
        return json.dumps({"full_poll_at": self.full_poll_at, "judged": self.judged}, sort_keys=True)


def noted_plans(waiting: list[Plan], notes: Sequence[Note]) -> list[Plan]:
    """The waiting plans a note may concern: those of its pull request, and those of its repository
    without a pull request (a push's plan: GitHub finds its pull requests by commit) of the reviewed
    commit, or of any commit for a comment (which names none)."""
    chosen = []
    for plan in waiting:
        if not plan.repo:
            continue
        for note in notes:
            if note.repo.lower() != plan.repo.lower():
                continue
            if plan.pr == note.pr or (plan.pr is None and (note.sha is None or note.sha == plan.sha)):
                chosen.append(plan)
                break
    return chosen


def _new_approvals(store: Plans, config: ManagerConfig, plan: Plan, seen: int | None) -> tuple[int, bool]:
    """(how many approval records ``plan`` has, whether it should be reviewed now): it has records
    the sensor has not reviewed yet, and enough accepted ones to meet its policy (the review judges
    them again). Read from the database only."""
    records = store.approvals(plan.plan_id)
    if seen == len(records) or plan.environment not in config.environments:
        return len(records), False
    accepted = {r.login.lower() for r in records if r.accepted}
    required = config.policy(plan.environment, destroy=plan.destroy).required_approvals
    return len(records), bool(accepted) and len(accepted) >= required



@dataclass
class ApprovalTick:
    """What one tick decided: the cursor to keep, the approved plans that need an apply run, what failed."""

    cursor: ApprovalCursor
    waiting: int
    reviewed: int
    full: bool
    to_apply: list[Plan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.waiting} plan(s) wait for approval; reviewed {self.reviewed}"
            + (" (full poll)" if self.full else "")
            + (f"; {len(self.problems)} failed" if self.problems else "")
        )


def approval_tick(
    store: Plans,
    config: ManagerConfig,
    notes: Sequence[Note],
    memory: ApprovalCursor,
    approvals_for: Callable[[], ApprovalSource | None],
    audit: Audit,
    now: float | None = None,
    full_poll_s: float = FULL_POLL_S,
) -> ApprovalTick:
    """Review the waiting plans this tick should (all of them on a full poll; else those a note names
    and those with new recorded approvals), and list the approved plans that have no apply run yet.
    ``approvals_for`` gives GitHub's approvals, asked only when a plan is to be reviewed."""
    now = time.time() if now is None else now
    waiting = store.list_plans(state=PlanState.AWAITING)
    # A clock set back counts as time for a full poll too.
    full = not (0 <= now - memory.full_poll_at < full_poll_s)
    counts: dict[str, int] = {}
    selected: list[Plan] = list(waiting) if full else noted_plans(waiting, notes)
    chosen = {plan.plan_id for plan in selected}
    for plan in waiting:
        counts[plan.plan_id], due = _new_approvals(store, config, plan, memory.judged.get(plan.plan_id))
        if due and plan.plan_id not in chosen:
            selected.append(plan)
            chosen.add(plan.plan_id)
    approvals = approvals_for() if selected else None
    problems = []
    for plan in selected:
        # One plan's trouble (GitHub down, a policy gone) never holds up the others; a plan that
        # fails is tried again in the next full poll.
        try:
            counts[plan.plan_id] += review_waiting_plan(store, config, plan, approvals, audit)
        except Exception as exc:  # noqa: BLE001 - reported on the tick, retried next tick
            problems.append(f"plan {plan.plan_id}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    cursor = ApprovalCursor(full_poll_at=now if full else memory.full_poll_at, judged=counts)
    # Every approved plan without an apply run gets one; the run key makes asking again harmless.
    to_apply = [
        plan
        for plan in store.list_plans(state=PlanState.APPROVED)
        if plan.apply_run_id is None and covered(config, plan)
    ]
    return ApprovalTick(cursor, len(waiting), len(selected), full, to_apply, problems)
