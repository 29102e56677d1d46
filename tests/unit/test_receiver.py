"""The receiver's answers, without a server: every delivery gets one, and says who must act."""

from __future__ import annotations

import json

import pytest

from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import signature_for
from tests.support import INTAKE_CONFIG, push_payload

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
