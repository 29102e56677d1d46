"""The receiver's answers to GitHub's own example payloads (``@octokit/webhooks-examples``, vendored whole
under tests/github_spec/webhooks/ by scripts/vendor_github_spec.py), signed as GitHub signs them.

Each published example of each event the receiver handles (push, pull_request, pull_request_review,
issue_comment, release, ping, check_run) gets the answer the README documents:
`202 queued`, `202 waiting`, `202 ignored`, `202 plan requested`, `202 approval noted`, `200 pong`,
`400` for an unhandled event, `403` for a repository that is no source, `401` for a forged signature.
(A check run's "Plan again", built from the published `requested_action` example: tests/unit/test_check_runs.py.)
The examples name `Codertocat/Hello-World` (and `Octocoders/Hello-World` for pings); the manager.yaml
here makes them sources, or a trigger repository. Where a scenario needs what no example shows (a
change under the variables folder, a `/plan` comment, an approving review, a fork), the example is
taken whole and only the fields that make the scenario are set, as GitHub would send them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import read_delivery, signature_for

SECRET = "example-secret"
WEBHOOKS = Path(__file__).resolve().parent.parent / "github_spec" / "webhooks"
HELLO = "Codertocat/Hello-World"

AS_SOURCE = """
sources:
  - {name: hello, repo: Codertocat/Hello-World}
  - {name: octo, repo: Octocoders/Hello-World}
environments:
  staging: {auto_apply: true, apply_branches: [master]}
"""
# The examples' repository as an application repository whose branch and tags start an infra source.
AS_TRIGGER = """
sources:
  - name: hello-infra
    repo: acme/hello-infra
    triggers:
      - {repo: Codertocat/Hello-World, branches: [master], tags: ["*"]}
environments:
  staging: {auto_apply: true, apply_branches: [main]}
"""


def examples(event: str) -> list[dict]:
    data = json.loads((WEBHOOKS / f"{event}.json").read_text())
    assert data["package"] == "@octokit/webhooks-examples" and data["event"] == event
    return data["examples"]


def cases(event: str) -> list:
    return [
        pytest.param(event, index, example, id=f"{event}-{index}-{example.get('action') or example.get('ref', '-')}")
        for index, example in enumerate(examples(event))
    ]


def make_app(tmp_path: Path, config: str) -> WebhookApp:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "manager.yaml"
    path.write_text(config)
    return WebhookApp(SECRET, ConfigWatcher(path), Inbox(f"sqlite:///{tmp_path / 'inbox.db'}"), environ={})


def deliver(app: WebhookApp, event: str, payload: dict, delivery: str = "ex-1", secret: str = SECRET):
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature_for(secret.encode(), body),
    }
    return app.handle(headers, body)


def answer(status: int, payload: dict) -> tuple[int, str]:
    return status, payload.get("status") or payload.get("error", "")


# --- what the README says of each published example ----------------------------------------------

PR_DEPLOYING = ("opened", "synchronize", "reopened")


def expected_as_source(event: str, example: dict) -> tuple[int, str]:
    action = example.get("action")
    if event == "check_run":
        # GitHub telling the App of check runs (created, completed, rerequested), or a button of another
        # App's; the repositories of the last examples are no sources.
        if example["repository"]["full_name"] != HELLO:
            return 403, "is not a source in manager.yaml"
        return 202, "ignored"
    if event == "ping":
        return 200, "pong"
    if event == "pull_request" and action in PR_DEPLOYING:
        return 202, "queued"  # the examples' author is the repository's OWNER, on a branch of its own
    # A push of a tag, a deleted ref or a change outside infra/; a pull request's other actions; a
    # comment on an issue; a review that comments; a release of a source repository: nothing to deploy.
    return 202, "ignored"


def expected_as_trigger(event: str, example: dict) -> tuple[int, str]:
    if event == "push" and not example["deleted"]:
        return 202, "queued"  # master, or a tag: both match the trigger
    if event == "release" and example["action"] == "published":
        return 202, "queued"
    return 202, "ignored"


@pytest.mark.parametrize(
    "event, index, example",
    [*cases("push"), *cases("pull_request"), *cases("pull_request_review"), *cases("issue_comment"),
     *cases("release"), *cases("ping"), *cases("check_run")],
)
def test_each_published_example_gets_the_documented_answer(tmp_path, event, index, example):
    status, payload = deliver(make_app(tmp_path, AS_SOURCE), event, example)
    expected_status, expected = expected_as_source(event, example)
    assert status == expected_status and expected in answer(status, payload)[1], payload
    if expected == "queued":
        assert payload["sources"] == ["hello"]


@pytest.mark.parametrize(
    "event, index, example",
    [*cases("push"), *cases("release"), *cases("pull_request"), *cases("issue_comment")],
)
def test_each_published_example_from_a_trigger_repository_gets_the_documented_answer(tmp_path, event, index, example):
    status, payload = deliver(make_app(tmp_path, AS_TRIGGER), event, example)
    assert answer(status, payload) == expected_as_trigger(event, example), payload
    if status == 202 and payload["status"] == "queued":
        assert payload["sources"] == ["hello-infra"]


# --- scenarios built from a published example ----------------------------------------------------


def example(event: str, action: str | None = None, **where) -> dict:
    """A deep copy of the first published example of ``event`` (with ``action``, and the given ref)."""
    for found in examples(event):
        if found.get("action") == action and all(found.get(k) == v for k, v in where.items()):
            return copy.deepcopy(found)
    raise LookupError(f"no {event} example with action {action!r} and {where}")


def test_a_push_changing_the_variables_file_is_queued(tmp_path):
    push = example("push", ref="refs/heads/master")
    push["commits"][0]["modified"] = ["infra/variables.yml"]
    push["head_commit"]["modified"] = ["infra/variables.yml"]
    assert answer(*deliver(make_app(tmp_path, AS_SOURCE), "push", push)) == (202, "queued")


def test_the_same_published_delivery_twice_is_one_delivery(tmp_path):
    app = make_app(tmp_path, AS_SOURCE)
    opened = example("pull_request", "opened")
    assert answer(*deliver(app, "pull_request", opened, "ex-1")) == (202, "queued")
    assert answer(*deliver(app, "pull_request", opened, "ex-2")) == (200, "duplicate")


@pytest.mark.parametrize(
    "change",
    [
        {"author_association": "CONTRIBUTOR"},
        {"head_repo": "octocat-fork/Hello-World"},
        {"head_repo": None},  # the fork was deleted: GitHub sends `head.repo: null`
    ],
    ids=["contributor", "fork", "deleted-fork"],
)
def test_a_pull_request_its_author_may_not_plan_waits(tmp_path, change):
    opened = example("pull_request", "opened")
    pull = opened["pull_request"]
    if "author_association" in change:
        pull["author_association"] = change["author_association"]
    if "head_repo" in change:
        if change["head_repo"] is None:
            pull["head"]["repo"] = None
        else:
            pull["head"]["repo"]["full_name"] = change["head_repo"]
    status, payload = deliver(make_app(tmp_path, AS_SOURCE), "pull_request", opened)
    assert (status, payload["status"]) == (202, "waiting") and "waits for a maintainer" in payload["reason"]


def pull_request_comment(body: str, action: str = "created") -> dict:
    """The published comment example, on a pull request (GitHub adds `issue.pull_request` then)."""
    comment = example("issue_comment", action)
    number = comment["issue"]["number"]
    comment["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{HELLO}/pulls/{number}",
        "html_url": f"https://github.com/{HELLO}/pull/{number}",
        "diff_url": f"https://github.com/{HELLO}/pull/{number}.diff",
        "patch_url": f"https://github.com/{HELLO}/pull/{number}.patch",
        "merged_at": None,
    }
    comment["comment"]["body"] = body
    return comment


def test_a_maintainers_plan_comment_on_a_pull_request_requests_a_plan(tmp_path):
    status, payload = deliver(make_app(tmp_path, AS_SOURCE), "issue_comment", pull_request_comment("/plan"))
    assert (status, payload["status"]) == (202, "plan requested")


@pytest.mark.parametrize("action", ["edited", "deleted"])
def test_an_edited_or_deleted_plan_comment_asks_for_nothing(tmp_path, action):
    status, payload = deliver(make_app(tmp_path, AS_SOURCE), "issue_comment", pull_request_comment("/plan", action))
    assert answer(status, payload) == (202, "ignored")


def test_an_approve_comment_and_an_approving_review_are_noted_for_the_approval_sensor(tmp_path):
    app = make_app(tmp_path, AS_SOURCE)
    assert answer(*deliver(app, "issue_comment", pull_request_comment("/approve"), "ex-1")) == (202, "approval noted")
    review = example("pull_request_review", "submitted")
    review["review"]["state"] = "approved"  # webhook payloads spell review states in lower case
    assert answer(*deliver(app, "pull_request_review", review, "ex-2")) == (202, "approval noted")


def test_a_published_example_signed_with_another_secret_is_refused(tmp_path):
    status, payload = deliver(make_app(tmp_path, AS_SOURCE), "pull_request", example("pull_request", "opened"),
                              secret="not-the-secret")
    assert (status, payload["error"]) == (401, "signature does not match")


def test_a_published_example_of_a_repository_that_is_no_source_is_refused(tmp_path):
    status, payload = deliver(make_app(tmp_path, AS_TRIGGER.replace("Codertocat/Hello-World", "acme/other")),
                              "pull_request", example("pull_request", "opened"))
    assert status == 403 and "is not a source in manager.yaml" in payload["error"]


def test_what_dispatch_needs_is_read_from_the_published_payloads(tmp_path):
    """Not only the answer: the commit, branch, pull request and author come from where GitHub puts them."""
    source = make_app(tmp_path / "source", AS_SOURCE).config.current()
    opened = example("pull_request", "opened")
    delivery = read_delivery(source, "pull_request", "ex-1", json.dumps(opened).encode())
    pull = opened["pull_request"]
    assert (delivery.sha, delivery.branch, delivery.pr, delivery.author, delivery.hold) == (
        pull["head"]["sha"], pull["head"]["ref"], opened["number"], pull["user"]["login"], None)
    trigger = make_app(tmp_path / "trigger", AS_TRIGGER).config.current()
    tag = example("push", ref="refs/tags/simple-tag", deleted=False)
    delivery = read_delivery(trigger, "push", "ex-2", json.dumps(tag).encode())
    assert (delivery.trigger_ref, delivery.sha, delivery.author) == (
        "refs/tags/simple-tag", tag["head_commit"]["id"], tag["pusher"]["name"])
    release = example("release", "published")
    delivery = read_delivery(trigger, "release", "ex-3", json.dumps(release).encode())
    assert (delivery.trigger_ref, delivery.sha, delivery.author) == (
        f"refs/tags/{release['release']['tag_name']}", None, release["release"]["author"]["login"])
