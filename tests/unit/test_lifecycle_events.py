"""GitHub's lifecycle events (a repository renamed or transferred, the App removed, the webhook deleted),
driven by the published example payloads (tests/github_spec/webhooks/), signed as GitHub signs them.

Each is answered 2xx and recorded for the sources it concerns; a push under a repository's new name is
taken for the source whose repository id the manager recorded, with a warning, not refused."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from manager_pipeline.intake.lifecycle import LIFECYCLE_EVENTS, Repositories
from manager_pipeline.intake.webhooks import signature_for
from tests.support import push_payload
from tests.unit.test_webhook_examples import AS_SOURCE, SECRET, deliver, examples, make_app

LIFECYCLE_CASES = [
    pytest.param(event, index, example, id=f"{event}-{index}-{example.get('action')}")
    for event in LIFECYCLE_EVENTS
    for index, example in enumerate(examples(event))
]


@pytest.mark.parametrize("event, index, example", LIFECYCLE_CASES)
def test_each_published_lifecycle_example_is_answered_2xx_and_recorded(tmp_path, event, index, example):
    status, answer = deliver(make_app(tmp_path, AS_SOURCE), event, example)
    assert status == 202 and answer["status"] == "recorded", answer
    assert "\n" not in answer["note"]


def _renamed(old: str, new: str, repo_id: int) -> dict:
    example = copy.deepcopy(next(e for e in examples("repository") if e["action"] == "renamed"))
    example["repository"].update(id=repo_id, full_name=new, name=new.split("/")[1])
    example["changes"] = {"repository": {"name": {"from": old.split("/")[1]}}}
    return example


def _push(repo: str, repo_id: int, sha_seed: str) -> dict:
    payload = json.loads(push_payload(repo=repo, sha=hashlib.sha1(sha_seed.encode()).hexdigest()))
    payload["repository"]["id"] = repo_id
    return payload


CONFIG = """
sources:
  - {name: web, repo: acme/web, webhook_secret_env: WEB_SECRET}
environments:
  staging: {auto_apply: true, apply_branches: [main]}
"""


def test_a_renamed_repository_is_followed_by_its_id_and_its_pushes_are_taken_with_a_warning(tmp_path, caplog):
    app = make_app(tmp_path, CONFIG)
    app._environ = {"WEB_SECRET": "web-own-secret"}
    # The first delivery records the repository's id.
    assert deliver(app, "push", _push("acme/web", 4242, "one"), "d-1")[1]["status"] == "queued"
    status, answer = deliver(app, "repository", _renamed("acme/web", "acme/shop", 4242), "d-2")
    assert status == 202 and answer["sources"] == ["web"] and "`repo: acme/shop`" in answer["note"]
    assert Repositories(engine=app.inbox.engine).states()["web"]["renamed_to"] == "acme/shop"
    # A push under the new name: taken for `web`, signed with web's own secret (found by the id), warned of.
    status, answer = deliver(app, "push", _push("acme/shop", 4242, "two"), "d-3", secret="web-own-secret")
    assert (status, answer["status"], answer["sources"]) == (202, "queued", ["web"])
    assert "set `repo: acme/shop`" in caplog.text
    # Another repository, or another id under a known name's new name, is still no source: one line.
    status, answer = deliver(app, "push", _push("acme/shop", 9999, "three"), "d-4")
    assert status == 403 and "not a source" in answer["error"] and "\n" not in answer["error"]


def test_the_app_removed_from_a_repository_makes_its_source_unreachable_and_added_again_reachable(tmp_path):
    app = make_app(tmp_path, CONFIG)
    example = copy.deepcopy(next(e for e in examples("installation_repositories") if e["action"] == "removed"))
    example["repositories_removed"] = [{"id": 4242, "name": "web", "full_name": "acme/web", "private": True}]
    status, answer = deliver(app, "installation_repositories", example, "d-1")
    assert status == 202 and answer["sources"] == ["web"]
    state = Repositories(engine=app.inbox.engine).states()["web"]
    assert "the GitHub App was removed from its repository" in state["unreachable"] and "d-1" in state["said_by"]
    added = copy.deepcopy(next(e for e in examples("installation_repositories") if e["action"] == "added"))
    added["repositories_added"] = [{"id": 4242, "name": "web", "full_name": "acme/web", "private": True}]
    assert deliver(app, "installation_repositories", added, "d-2")[0] == 202
    assert Repositories(engine=app.inbox.engine).states()["web"]["unreachable"] is None


def test_a_deleted_webhook_makes_its_source_unreachable_with_what_to_do(tmp_path):
    app = make_app(tmp_path, CONFIG)
    example = copy.deepcopy(examples("meta")[0])
    example["repository"].update(id=4242, full_name="acme/web", name="web")
    body = json.dumps(example).encode()
    headers = {"X-GitHub-Event": "meta", "X-GitHub-Delivery": "d-1",
               "X-Hub-Signature-256": signature_for(SECRET.encode(), body)}
    assert app.handle(headers, body)[0] == 202
    why = Repositories(engine=app.inbox.engine).states()["web"]["unreachable"]
    assert f"its webhook ({example['hook_id']}) was deleted" in why and "add-source" in why


def test_sources_says_which_source_is_unreachable_and_why(tmp_path, monkeypatch, capsys):
    from manager_pipeline.cli.main import main

    app = make_app(tmp_path, CONFIG)
    example = copy.deepcopy(next(e for e in examples("installation_repositories") if e["action"] == "removed"))
    example["repositories_removed"] = [{"id": 4242, "name": "web", "full_name": "acme/web", "private": True}]
    assert deliver(app, "installation_repositories", example, "d-7")[0] == 202
    assert deliver(app, "repository", _renamed("acme/web", "acme/shop", 4242), "d-8")[0] == 202
    monkeypatch.setenv("MANAGER_CONFIG", str(tmp_path / "manager.yaml"))
    monkeypatch.setenv("MANAGER_DATABASE_URL", f"sqlite:///{tmp_path / 'inbox.db'}")
    assert main(["sources"]) == 0
    out = capsys.readouterr().out
    assert "UNREACHABLE: the GitHub App was removed from its repository" in out and "d-7" in out
    assert "renamed on GitHub to acme/shop: set `repo: acme/shop` in manager.yaml" in out


def test_an_id_is_recorded_only_when_github_vouches_for_it(tmp_path):
    # A repository's own secret may be held by its workflow's writers: the id its body names is their word.
    app = make_app(tmp_path, CONFIG)
    app._environ = {"WEB_SECRET": "web-own-secret"}
    assert deliver(app, "push", _push("acme/web", 7777, "one"), "d-1", secret="web-own-secret")[0] == 202
    assert Repositories(engine=app.inbox.engine).sources_of(7777) == []
    status, answer = deliver(app, "push", _push("acme/other", 7777, "two"), "d-2", secret="web-own-secret")
    assert status == 401
    # Signed with the organisation's or App's hook secret, it is GitHub's word.
    assert deliver(app, "push", _push("acme/web", 4242, "three"), "d-3")[0] == 202
    assert Repositories(engine=app.inbox.engine).sources_of(4242) == ["web"]


def test_a_lifecycle_payload_of_another_shape_is_one_line_400(tmp_path):
    app = make_app(tmp_path, CONFIG)
    status, answer = deliver(app, "repository", {"action": "renamed", "repository": {"full_name": "a/b"}, "changes": 7})
    assert status == 400 and answer["error"] == "the repository payload is not shaped as GitHub documents it"
