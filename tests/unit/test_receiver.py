"""The receiver's answers, without a server: every delivery gets one, and says who must act."""

from __future__ import annotations

import json

import pytest

from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import signature_for
from tests.support import INTAKE_CONFIG, plan_comment_payload, pull_request_payload, push_payload, review_payload

SECRET = "unit-secret"


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "manager.yaml"
    path.write_text(INTAKE_CONFIG)
    return WebhookApp(SECRET, ConfigWatcher(path), Inbox(f"sqlite:///{tmp_path / 'inbox.db'}"))


def answer(app, body: bytes, event="push", delivery="d-1", signature=None):
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature or signature_for(SECRET.encode(), body),
    }
    return app.handle(headers, body)


def shaped(**changes) -> bytes:
    body = json.loads(push_payload())
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "event, body, reason",
    [
        ("pull_request", json.dumps({"action": "opened", "number": "abc", "repository": {"full_name": "acme/web"},
                                     "pull_request": {"head": {"sha": "a" * 40, "ref": "x"}}}).encode(),
         "pull request number must be a positive integer"),
        ("push", shaped(repository="x"), "no repository.full_name"),
        ("push", shaped(pusher="someone"), "not shaped as GitHub documents it"),
        ("push", shaped(after="--output=/tmp/owned"), "commit id must be 40 hexadecimal characters"),
        ("push", b"[" * 50_000 + b"]" * 50_000, "nests too deep"),
    ],
    ids=["number-text", "repository-text", "pusher-text", "sha-option", "deep-nesting"],
)
def test_a_signed_body_of_another_shape_gets_400_with_the_reason(app, event, body, reason):
    status, payload = answer(app, body, event)
    assert status == 400 and reason in payload["error"]


def test_a_non_ascii_signature_is_refused_not_dropped(app):
    assert answer(app, push_payload(), signature="sha256=\u00e9t\u00e9") == (401, {"error": "signature does not match"})


def test_an_organisation_hooks_ping_without_a_repository_is_answered(app):
    assert answer(app, json.dumps({"zen": "Keep it simple.", "hook_id": 1}).encode(), "ping") == (200, {"status": "pong"})


def test_a_broken_manager_yaml_keeps_the_last_good_one_serving(app):
    assert answer(app, push_payload(), delivery="d-1")[0] == 202
    app.config.path.write_text("sources: [ {name: \n")
    status, payload = answer(app, push_payload(sha="b" * 40), delivery="d-2")
    assert status == 202 and payload["status"] == "queued"
    assert app.config.problem and "manager.yaml" in app.config.problem


def test_with_no_readable_manager_yaml_deliveries_get_503_to_be_redelivered(tmp_path):
    path = tmp_path / "manager.yaml"
    path.write_text("sources: [ {name: \n")
    app = WebhookApp(SECRET, ConfigWatcher(path), Inbox(f"sqlite:///{tmp_path / 'inbox.db'}"))
    status, payload = answer(app, push_payload())
    assert status == 503 and "redeliver" in payload["error"]


class UnwritableInbox:
    """The inbox's database refusing writes (disk full, server gone)."""

    def add(self, delivery):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("database or disk is full"))


def test_an_inbox_that_cannot_be_written_gives_503(app):
    app.inbox = UnwritableInbox()
    status, payload = answer(app, push_payload())
    assert status == 503 and "redeliver later" in payload["error"]


# --- issue 10: a secret per source, replays, force-pushes, fork pull requests ----------------

OWN_SECRETS = {"WEB_HOOK_SECRET": "web-own-secret", "MONO_HOOK_SECRET": "mono-own-secret"}
PER_SOURCE_CONFIG = INTAKE_CONFIG.replace(
    "{name: web, repo: acme/web}", "{name: web, repo: acme/web, webhook_secret_env: WEB_HOOK_SECRET}"
).replace(
    "{name: api, repo: acme/mono, variables_file",
    "{name: api, repo: acme/mono, webhook_secret_env: MONO_HOOK_SECRET, variables_file",
)


@pytest.fixture
def own_secrets_app(tmp_path):
    path = tmp_path / "manager.yaml"
    path.write_text(PER_SOURCE_CONFIG)
    return WebhookApp(SECRET, ConfigWatcher(path), Inbox(f"sqlite:///{tmp_path / 'inbox.db'}"), environ=OWN_SECRETS)


def signed(body: bytes, secret: str) -> str:
    return signature_for(secret.encode(), body)


def test_a_repository_secret_signs_only_for_its_own_repository(own_secrets_app):
    web_push = push_payload("acme/web", sha="1" * 40)
    # A writer of acme/mono holds its secret; a push for acme/web signed with it is forged.
    assert answer(own_secrets_app, web_push, signature=signed(web_push, "mono-own-secret"))[0] == 401
    assert own_secrets_app.inbox.states() == {}
    status, payload = answer(own_secrets_app, web_push, delivery="own", signature=signed(web_push, "web-own-secret"))
    assert status == 202 and payload["sources"] == ["web"]
    # The organisation's (or App's) hook secret, which GitHub signs with, holds for every source ...
    mono_push = push_payload("acme/mono", files=("services/api/infra/variables.yml",), sha="2" * 40)
    assert answer(own_secrets_app, mono_push, delivery="org", signature=signed(mono_push, SECRET))[0] == 202
    # ... but the repository it names must still be a source.
    evil = push_payload("evil/repo", sha="3" * 40)
    assert answer(own_secrets_app, evil, delivery="evil", signature=signed(evil, SECRET))[0] == 403
    assert answer(own_secrets_app, evil, delivery="evil2", signature=signed(evil, "web-own-secret"))[0] == 401


def test_manager_yaml_names_the_variable_never_the_secret(tmp_path):
    from manager_pipeline.config.file import parse_config
    from manager_pipeline.errors import ManagerError

    with pytest.raises(ManagerError) as caught:
        parse_config("sources:\n  - {name: web, repo: acme/web, webhook_secret_env: 'hunter2 s3cret'}\n",
                     tmp_path / "manager.yaml")
    assert "NAME of an environment variable" in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_captured_delivery_replayed_under_a_new_id_is_a_duplicate(app):
    body = push_payload(sha="4" * 40)
    assert answer(app, body, delivery="original")[1]["status"] == "queued"
    # The signature covers the body, not X-GitHub-Delivery: the replay is signed too.
    assert answer(app, body, delivery="replayed-under-a-new-id") == (200, {"status": "duplicate"})
    assert app.inbox.states() == {"received": 1}


def test_a_force_push_back_to_an_older_commit_dispatches(app):
    """main: A -> B, then force-pushed back to A: GitHub lists no commits (and may say forced)."""
    a, b = "a1" * 20, "b2" * 20
    assert answer(app, push_payload(sha=a, before="c3" * 20), delivery="to-a")[1]["status"] == "queued"
    assert answer(app, push_payload(sha=b, before=a), delivery="to-b")[1]["status"] == "queued"
    back = push_payload(sha=a, before=b, forced=True, commits=[],
                        head_commit={"id": a, "message": "older", "added": [], "removed": [], "modified": []})
    status, payload = answer(app, back, delivery="back-to-a")
    assert status == 202 and payload["status"] == "queued" and payload["sources"] == ["web"]
    # Forward to B again, later (a new `repository.pushed_at`), not forced, still no commit list (a
    # branch moved by the API): files unknown, dispatched too, and no duplicate of the first A -> B.
    again = push_payload(sha=b, before=a, forced=False, commits=[], head_commit=None,
                         repository={"full_name": "acme/web", "pushed_at": 1700000100})
    assert answer(app, again, delivery="forward-again")[1]["status"] == "queued"
    # A deleted branch (all-zero `after`) deploys nothing.
    gone = push_payload(sha="0" * 40, before=b, commits=[], head_commit=None, deleted=False)
    assert answer(app, gone, delivery="deleted")[1]["status"] == "ignored"


@pytest.mark.parametrize(
    "payload, why",
    [
        (pull_request_payload(head_repo="mallory/web", association="CONTRIBUTOR"), "from a fork (mallory/web)"),
        (pull_request_payload(head_repo="mallory/web", association="MEMBER"), "from a fork (mallory/web)"),
        (pull_request_payload(association="CONTRIBUTOR"), "(CONTRIBUTOR) has no write access"),
        (pull_request_payload(association="FIRST_TIME_CONTRIBUTOR"), "has no write access"),
    ],
    ids=["fork-contributor", "fork-member", "contributor", "first-timer"],
)
def test_pull_requests_from_forks_or_outsiders_wait_for_a_maintainers_plan(app, payload, why):
    status, answered = answer(app, payload, "pull_request", delivery="pr")
    assert status == 202 and answered["status"] == "waiting" and why in answered["reason"]
    [row] = app.inbox.after(0, 10)
    assert row.state == "waiting" and "/plan" in row.note


def test_only_a_new_plan_comment_of_a_maintainer_releases_a_waiting_pull_request(app):
    assert answer(app, pull_request_payload(head_repo="mallory/web", association="NONE"), "pull_request",
                  delivery="fork-pr")[1]["status"] == "waiting"
    for delivery, body in [
        ("by-outsider", plan_comment_payload(association="CONTRIBUTOR", login="mallory", comment_id=1)),
        ("edited", plan_comment_payload(action="edited", comment_id=2)),
        ("other-text", plan_comment_payload(body="looks good, /plan later", comment_id=3)),
        ("other-pr", plan_comment_payload(number=99, comment_id=4)),
    ]:
        assert answer(app, body, "issue_comment", delivery=delivery)[0] == 202
    assert [e.state for e in app.inbox.after(0, 10) if e.delivery.delivery_id == "fork-pr"] == ["waiting"]
    status, answered = answer(app, plan_comment_payload(comment_id=5), "issue_comment", delivery="plan")
    assert status == 202 and answered["status"] == "plan requested" and "released 1" in answered["note"]
    released = {e.delivery.delivery_id: e for e in app.inbox.after(0, 10)}["fork-pr"]
    assert released.state == "received" and "released by `/plan` of maintainer" in released.note
    # The same comment replayed releases nothing more.
    assert answer(app, plan_comment_payload(comment_id=5), "issue_comment", delivery="plan-again")[1] == {
        "status": "duplicate"
    }


def test_a_pull_request_of_a_member_from_the_repository_itself_is_queued(app):
    assert answer(app, pull_request_payload(), "pull_request")[1]["status"] == "queued"


# --- approvals at webhook speed: reviews and `/approve` comments are notes to look, never approvals --


def test_a_signed_approving_review_is_noted_once(app):
    body = review_payload(repo="acme/mono", number=3, commit="c" * 40)
    assert answer(app, body, "pull_request_review", delivery="review-1") == (202, {"status": "approval noted"})
    # GitHub redelivering it, and the same review replayed under a new id: noted once.
    assert answer(app, body, "pull_request_review", delivery="review-1") == (200, {"status": "duplicate"})
    assert answer(app, body, "pull_request_review", delivery="review-replayed") == (200, {"status": "duplicate"})
    [note] = app.inbox.noted_approvals()
    assert (note.repo, note.pr, note.sha) == ("acme/mono", 3, "c" * 40)
    # A note is not a delivery to dispatch: the inbox of deliveries holds nothing.
    assert app.inbox.states() == {}


def test_an_unsigned_or_forged_review_is_refused_and_not_noted(app):
    body = review_payload()
    headers = {"X-GitHub-Event": "pull_request_review", "X-GitHub-Delivery": "unsigned"}
    assert app.handle(headers, body) == (401, {"error": "missing X-Hub-Signature-256"})
    assert answer(app, body, "pull_request_review", signature=signature_for(b"not-the-secret", body))[0] == 401
    unknown = review_payload(repo="evil/repo")
    assert answer(app, unknown, "pull_request_review", delivery="evil")[0] == 403
    assert app.inbox.noted_approvals() == []


@pytest.mark.parametrize(
    "event, body",
    [
        ("issue_comment", plan_comment_payload(body="looks good to me", comment_id=11)),
        ("issue_comment", plan_comment_payload(body="please /approve production", comment_id=12)),
        ("issue_comment", plan_comment_payload(body="/approved production", comment_id=13)),
        ("issue_comment", plan_comment_payload(body="/approve production", action="edited", comment_id=14)),
        ("pull_request_review", review_payload(state="commented")),
        ("pull_request_review", review_payload(state="changes_requested")),
        ("pull_request_review", review_payload(action="dismissed")),
    ],
    ids=["other-text", "not-first", "approved-word", "edited", "review-comment", "changes-requested", "dismissed"],
)
def test_what_cannot_approve_is_ignored_not_noted(app, event, body):
    status, answered = answer(app, body, event, delivery="other")
    assert status == 202 and answered["status"] == "ignored"
    assert app.inbox.noted_approvals() == [] and app.inbox.states() == {}


def test_an_approve_comment_is_noted_and_plan_comments_still_release(app):
    comment = plan_comment_payload(body="/approve production 0123456789ab reviewed", login="alice", comment_id=21)
    assert answer(app, comment, "issue_comment", delivery="approve") == (202, {"status": "approval noted"})
    [note] = app.inbox.noted_approvals()
    assert (note.repo, note.pr, note.sha) == ("acme/web", 12, None)
    app.inbox.approvals_looked_at([note.id])
    assert app.inbox.noted_approvals() == [] and app.inbox.note_states() == {"done": 1}
    assert answer(app, pull_request_payload(head_repo="mallory/web", association="NONE"), "pull_request",
                  delivery="fork-pr")[1]["status"] == "waiting"
    status, answered = answer(app, plan_comment_payload(comment_id=22), "issue_comment", delivery="plan")
    assert status == 202 and answered["status"] == "plan requested" and "released 1" in answered["note"]
