"""Who may approve a plan, and whether it has enough approvals: gathered from GitHub and the
console, judged under the environment's policy, recorded once each."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from manager_pipeline.config.model import EnvironmentPolicy
from manager_pipeline.plans.record import Plan
from manager_pipeline.plans.state import PlanState
from manager_pipeline.plans.store import ApprovalRecord, Plans

TeamCheck = Callable[[str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """Someone who said "approve": a GitHub review, a `/approve` comment, or an operator."""

    login: str
    via: str
    origin: str
    reason: str | None = None
    # The plan a `/approve <env> <plan-id>` comment names; None for reviews and the bare form.
    plan_id: str | None = None


class ApprovalSource(Protocol):
    def candidates(self, repo: str, sha: str, environment: str, pulls: list[int], since: float) -> list[Candidate]: ...
    def in_team(self, login: str, team: str) -> bool: ...
    def author(self, repo: str, sha: str) -> str | None: ...
    def pulls_for(self, repo: str, sha: str) -> list[int]: ...


def judge(policy: EnvironmentPolicy, author: str | None, candidate: Candidate, in_team: TeamCheck) -> str | None:
    """None when ``candidate`` may approve under ``policy``; else why not."""
    login = candidate.login.lower()
    if not policy.approvers:
        return f"{policy.name} has no approvers; list them under `approvers` in manager.yaml"
    if not policy.allow_self_approval:
        if author is None:
            return (
                f"the author of the change is unknown, so {policy.name}'s rule against self-approval cannot be "
                "checked; re-plan from a pull request or push (they carry the author), or set allow_self_approval"
            )
        if login == author.lower():
            return f"{candidate.login} is the author of the change and {policy.name} does not allow self-approval"
    logins = {a.lower() for a in policy.approvers if "/" not in a}
    if login in logins:
        return None
    teams = [a for a in policy.approvers if "/" in a]
    if any(in_team(candidate.login, team) for team in teams):
        return None
    return f"{candidate.login} is not an approver of {policy.name} (approvers: {', '.join(policy.approvers)})"


def approved_by(policy: EnvironmentPolicy, accepted_logins: list[str]) -> bool:
    return len({login.lower() for login in accepted_logins}) >= policy.required_approvals


def no_team(login: str, team: str) -> bool:
    return False


def author_of(plan: Plan, github: ApprovalSource | None) -> str | None:
    if plan.author:
        return plan.author
    if github and plan.repo and plan.sha:
        return github.author(plan.repo, plan.sha)
    return None


@dataclass
class Review:
    accepted: list[str] = field(default_factory=list)
    new: list[ApprovalRecord] = field(default_factory=list)
    approved: bool = False


def review(plan: Plan, policy: EnvironmentPolicy, plans: Plans, github: ApprovalSource | None) -> Review:
    """Record what GitHub says about ``plan`` since the last look; judge all approvals under today's policy."""
    in_team = github.in_team if github else no_team
    author = author_of(plan, github)
    result = Review()
    if github and plan.repo and plan.sha:
        pulls = [plan.pr] if plan.pr is not None else github.pulls_for(plan.repo, plan.sha)
        candidates = github.candidates(plan.repo, plan.sha, plan.environment, pulls, plan.created_at)
        bare = any(c.plan_id is None and c.via != "review" for c in candidates)
        waiting = _waiting_alike(plan, plans) if bare else []
        sole = waiting == [plan.plan_id]
        for candidate in candidates:
            if plan.destroy and candidate.plan_id != plan.plan_id:
                # A review or a bare `/approve` of the commit approved what it builds, never its destroy.
                result.new += _refuse(
                    plans,
                    plan,
                    candidate,
                    (
                        f"destroy plan {plan.plan_id} is approved only by name: comment "
                        f"`/approve {plan.environment} {plan.plan_id}`, or `manager-pipeline approve {plan.plan_id}`"
                    ),
                )
            elif _meant_for(candidate, plan, sole):
                result.new += record(plans, plan, policy, author, candidate, in_team)
            elif candidate.plan_id is None and candidate.via != "review" and plan.plan_id in waiting:
                # A bare `/approve <env>` while other plans wait for the same commit: refused, saying how.
                result.new += _refuse(
                    plans,
                    plan,
                    candidate,
                    (
                        f"`/approve {plan.environment}` names no plan and {len(waiting)} plans wait for "
                        f"commit {(plan.sha or '?')[:12]}; comment `/approve {plan.environment} {plan.plan_id}`"
                    ),
                )
    for approval in plans.approvals(plan.plan_id):
        # Judged again: an approver taken off the policy since no longer counts.
        if (
            approval.accepted
            and judge(policy, author, Candidate(approval.login, approval.via, approval.origin), in_team) is None
        ):
            result.accepted.append(approval.login)
    result.approved = approved_by(policy, result.accepted)
    return result


def _waiting_alike(plan: Plan, plans: Plans) -> list[str]:
    """The ids of the plans waiting for ``plan``'s commit and environment (a monorepo's sources share
    commits); the bare `/approve <env>` approves ``plan`` only when it is the sole one."""
    return [
        other.plan_id
        for other in plans.list_plans(state=PlanState.AWAITING, environment=plan.environment)
        if (other.repo, other.sha) == (plan.repo, plan.sha)
    ]


def _refuse(plans: Plans, plan: Plan, candidate: Candidate, reason: str) -> list[ApprovalRecord]:
    approval = ApprovalRecord(
        plan_id=plan.plan_id,
        login=candidate.login,
        via=candidate.via,
        origin=candidate.origin,
        accepted=False,
        reason=reason,
        at=time.time(),
    )
    return [approval] if plans.record_approval(approval) else []


def _meant_for(candidate: Candidate, plan: Plan, sole_waiting: bool) -> bool:
    """A comment naming a plan approves that plan; the bare form only while it is the sole plan waiting."""
    if candidate.plan_id is not None:
        return candidate.plan_id == plan.plan_id
    return candidate.via == "review" or sole_waiting


def record(
    plans: Plans, plan: Plan, policy: EnvironmentPolicy, author: str | None, candidate: Candidate, in_team: TeamCheck
) -> list[ApprovalRecord]:
    """Judge one candidate and store the verdict; [the record] when it is new, [] when seen before."""
    refusal = judge(policy, author, candidate, in_team)
    approval = ApprovalRecord(
        plan_id=plan.plan_id,
        login=candidate.login,
        via=candidate.via,
        origin=candidate.origin,
        accepted=refusal is None,
        reason=refusal or candidate.reason,
        at=time.time(),
    )
    return [approval] if plans.record_approval(approval) else []
