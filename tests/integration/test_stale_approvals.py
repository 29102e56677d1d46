"""Issue 19 #1: an approval is given after the plan it approves existed, and a destroy is approved only
by an approval that names it (`/approve <env> <plan-id>`, or the console), never by a review."""

from __future__ import annotations

import os
import re
import time

import pytest
from github import Auth, Github

from manager_pipeline.events import DESTROY_TAG
from manager_pipeline.plans import PlanState
from tests.integration.test_approval_flow import (  # noqa: F401 - github_gated is a fixture
    github_gated,
    plan_production,
    records_of,
)
from tests.support import LIGHT_MODULE, approval_requests, github_time, run_partition

pytestmark = pytest.mark.integration


def approval_origins(manager, plan_id: str) -> list[tuple[str, str, bool]]:
    return [(a.login, a.origin, a.accepted) for a in records_of(manager).approvals(plan_id)]


def test_a_review_given_before_a_re_plan_approves_only_the_plan_it_saw(manager, github_standin, github_gated):
    """Issue 19 #1: a pull request review has no plan id; it approves the plans that existed when it was
    given, never a later re-plan of the same commit (after a terraform/ change, or any run)."""
    name, head = github_gated["name"], github_gated["head"]
    first = plan_production(manager, sha=head, branch="main", author=None)
    review = {"user": {"login": "carol"}, "state": "APPROVED", "body": "ok", "commit_id": head}
    github_standin.update(
        name, pulls=[{"number": 7, "head_sha": head}], reviews={"7": [review | {"id": 1, "submitted_at": github_time()}]}
    )
    assert [r.run_key for r in approval_requests(manager)] == [f"apply:{first}"]

    time.sleep(1)  # GitHub's whole seconds: the re-plan is a second after the review
    second = plan_production(manager, sha=head, branch="main", author=None)
    assert records_of(manager).find(first).state is PlanState.SUPERSEDED
    assert approval_requests(manager) == []
    assert approval_origins(manager, second) == []
    assert records_of(manager).find(second).state is PlanState.AWAITING

    # A review given after the re-plan approves it.
    github_standin.update(name, reviews={"7": [review | {"id": 1, "submitted_at": github_time(time.time() - 60)},
                                              review | {"id": 2, "submitted_at": github_time(time.time() + 1)}]})
    assert [r.run_key for r in approval_requests(manager)] == [f"apply:{second}"]
    assert approval_origins(manager, second) == [("carol", "review:2", True)]


def test_a_destroy_is_approved_only_by_an_approval_that_names_it(manager, github_standin, github_gated):
    """Issue 19 #1: the review that approved a deploy's commit must not approve the destroy planned from
    that commit, nor may any review or bare `/approve`: only `/approve <env> <plan-id>` or the console."""
    name, head = github_gated["name"], github_gated["head"]
    manager.write_config(
        f"sources:\n  - name: app\n    repo: {name}\n"
        "environments:\n"
        "  staging: {auto_apply: true, approvers: [acme/platform-team]}\n"
        "  production: {auto_apply: false, approvers: [acme/platform-team]}\n"
        f"terraform_dir: {LIGHT_MODULE}\n"
    )
    manager.env.update({key: os.environ[key] for key in ("GITHUB_API_URL", "GITHUB_TOKEN", "GITHUB_THROTTLE")})
    deployed = run_partition(manager, "app", "staging", sha=head, branch="main", author=None)
    assert deployed.success, [e.message for e in deployed.all_events if e.is_step_failure]
    # carol approves the commit on its pull request: what it builds, long before anyone destroys it.
    review = {"user": {"login": "carol"}, "state": "APPROVED", "body": "ship it", "commit_id": head}
    github_standin.update(
        name, pulls=[{"number": 7, "head_sha": head}], reviews={"7": [review | {"id": 1, "submitted_at": github_time()}]}
    )
    time.sleep(1)

    planned = manager.cli("destroy", "app", "staging")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    destroy_id = re.search(r"Destroy plan (\w+) removes", planned.stdout).group(1)
    # The review is older than the destroy plan: it counts for nothing.
    assert approval_requests(manager) == []
    assert approval_origins(manager, destroy_id) == []

    # Neither a review given after the destroy plan nor a bare `/approve staging` approves it.
    github_standin.update(name, reviews={"7": [review | {"id": 2, "submitted_at": github_time(time.time() + 1)}]})
    assert approval_requests(manager) == []
    assert approval_origins(manager, destroy_id) == [("carol", "review:2", False)]
    assert "approved only by name" in records_of(manager).approvals(destroy_id)[0].reason
    carol = Github(base_url=github_standin.url, auth=Auth.Token(github_gated["tokens"]["carol"]), lazy=True)
    commit = carol.get_repo(name).get_commit(head)
    commit.create_comment("/approve staging tear it down")
    assert approval_requests(manager) == []
    assert [(login, accepted) for login, _, accepted in approval_origins(manager, destroy_id)] == [("carol", False)] * 2

    commit.create_comment(f"/approve staging {destroy_id} decommission app")
    assert [(r.run_key, r.tags[".dagster/manager/destroy"]) for r in approval_requests(manager)] == [
        (f"apply:{destroy_id}", "true")
    ]
