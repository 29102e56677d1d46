"""Trigger repositories without a process or a network: manager.yaml's `triggers:`, their deliveries
read and checked, the runs they start, and what their application commit is told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, build_sensor_context

from manager_pipeline.config.file import parse_config
from manager_pipeline.defs.intake import dispatch_sensor
from manager_pipeline.defs.resources import GitHubResource, InboxResource, ManagerConfigResource
from manager_pipeline.errors import ConfigError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import Outcome, OutcomeStatus, trigger_status
from manager_pipeline.intake.announce import queued_statuses
from manager_pipeline.intake.dispatch import plan_dispatch
from manager_pipeline.intake.inbox import PENDING, Inbox, InboxEvent
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import Refused, read_delivery, signature_for
from tests.support import push_payload

ROOT = Path("/srv/manager/manager.yaml")
ORG_SECRET = "org-hook-secret"
APP_SECRET = "web-app-own-secret"
TRIGGERS_CONFIG = """
sources:
  - name: net
    repo: acme/infra
    webhook_secret_env: INFRA_HOOK_SECRET
    triggers:
      - {repo: acme/web-app, branches: [main, "release/*"], tags: ["v*"], webhook_secret_env: WEB_APP_HOOK_SECRET}
  - name: data
    repo: acme/data-infra
    default_branch: trunk
    environments: [staging]
    triggers:
      - {repo: acme/web-app, branches: [main]}
environments:
  staging: {auto_apply: true, apply_branches: [main, trunk]}
  production: {auto_apply: false, apply_branches: [main], approvers: [alice]}
"""
APP_SHA = "a" * 40


def config(text: str = TRIGGERS_CONFIG):
    return parse_config(text, ROOT)


def tag_push(tag: str, tag_object: str = "7" * 40, commit: str = APP_SHA) -> bytes:
    """A tag's push as GitHub sends it: an annotated tag names the tag object in `after`."""
    body = json.loads(push_payload("acme/web-app", sha=tag_object))
    body |= {"ref": f"refs/tags/{tag}", "created": True, "commits": [], "head_commit": {"id": commit}}
    return json.dumps(body).encode()


def release(tag: str, action: str = "published") -> bytes:
    return json.dumps(
        {
            "action": action,
            "release": {"tag_name": tag, "target_commitish": "main", "author": {"login": "rel-bot"}},
            "repository": {"full_name": "acme/web-app"},
            "sender": {"login": "rel-bot"},
        }
    ).encode()


# --- manager.yaml ----------------------------------------------------------------------------


def test_triggers_are_read_with_their_patterns_and_the_sources_they_trigger():
    parsed = config()
    [trigger] = parsed.sources["net"].triggers
    assert trigger.branches == ("main", "release/*") and trigger.tags == ("v*",)
    assert trigger.webhook_secret_env == "WEB_APP_HOOK_SECRET"
    assert [s.name for s in parsed.sources_by_trigger["acme/web-app"]] == ["net", "data"]
    assert trigger.matches("refs/heads/release/2026-11") and trigger.matches("refs/tags/v1.2.0")
    assert not trigger.matches("refs/heads/feature") and not trigger.matches("refs/tags/nightly")
    # A branch pattern never matches a tag of that name, nor a tag pattern a branch.
    assert not trigger.matches("refs/tags/main") and not trigger.matches("refs/heads/v2")


@pytest.mark.parametrize(
    "trigger, expected",
    [
        ("{repo: acme/infra, branches: [main]}", "manager.yaml:4:23: sources[0].triggers[0].repo: acme/infra is the "
                                                 "repository of source `net`"),
        ("{repo: acme/web-app}", "sources[0].triggers[0]: name the `branches` or `tags`"),
        ("{repo: acme/web-app, branch: [main]}", "unknown key `branch`; did you mean `branches`?"),
        ("{repo: web-app, branches: [main]}", "expected a GitHub `owner/name`"),
        ("{repo: acme/web-app, branches: [refs/heads/main]}", "expected a branch or tag name or glob"),
        ("{repo: acme/web-app, tags: [v*], webhook_secret_env: 'shh s3cret'}", "NAME of an environment variable"),
    ],
)
def test_each_bad_trigger_is_one_placed_line_that_says_what_to_change(trigger, expected):
    with pytest.raises(ConfigError) as caught:
        config(f"sources:\n  - name: net\n    repo: acme/infra\n    triggers: [{trigger}]\n")
    message = str(caught.value)
    assert expected in message and len(message.splitlines()) == 1 and "s3cret" not in message


def test_a_trigger_named_twice_or_on_a_local_source_is_refused():
    with pytest.raises(ConfigError, match=r"triggers\[1\]\.repo: acme/web-app is named twice"):
        config("sources:\n  - name: net\n    repo: acme/infra\n    triggers:\n"
               "      - {repo: acme/web-app, branches: [main]}\n      - {repo: acme/web-app, tags: [v*]}\n")
    with pytest.raises(ConfigError, match="`triggers` need a GitHub source"):
        config("sources:\n  - name: net\n    path: ../infra\n    triggers: [{repo: acme/web-app, branches: [main]}]\n")


# --- deliveries ------------------------------------------------------------------------------


def test_a_push_to_a_trigger_branch_is_a_delivery_for_the_infra_sources_whose_patterns_match():
    main = read_delivery(config(), "push", "p-main", push_payload("acme/web-app", files=("src/app.py",), sha=APP_SHA))
    assert (main.repo, main.sources, main.sha, main.trigger_ref) == ("acme/web-app", ("net", "data"), APP_SHA,
                                                                     "refs/heads/main")
    assert main.ref_key == "trigger:acme/web-app:refs/heads/main" and main.author == "dev"
    hotfix = read_delivery(config(), "push", "p-rel", push_payload("acme/web-app", branch="release/7", sha="b" * 40))
    assert hotfix.sources == ("net",)
    # A branch no pattern names, a deleted branch, pull requests of the application: nothing to run.
    assert read_delivery(config(), "push", "p-f", push_payload("acme/web-app", branch="feature")) is None
    gone = push_payload("acme/web-app", deleted=True, after="0" * 40)
    assert read_delivery(config(), "push", "p-del", gone) is None
    pull = json.dumps({"action": "opened", "number": 3, "repository": {"full_name": "acme/web-app"},
                       "pull_request": {"number": 3, "head": {"sha": APP_SHA, "ref": "f"}}}).encode()
    assert read_delivery(config(), "pull_request", "pr", pull) is None


def test_a_tag_starts_its_runs_once_whether_its_push_or_its_release_comes_first():
    pushed = read_delivery(config(), "push", "t-push", tag_push("v1.2.0"))
    # The tagged commit, not the annotated tag's object.
    assert pushed.sources == ("net",) and pushed.sha == APP_SHA and pushed.trigger_ref == "refs/tags/v1.2.0"
    published = read_delivery(config(), "release", "t-rel", release("v1.2.0"))
    assert published.sha is None and published.author == "rel-bot" and published.trigger_ref == "refs/tags/v1.2.0"
    assert published.dedupe_key == pushed.dedupe_key
    assert read_delivery(config(), "release", "t-draft", release("v1.2.0", action="created")) is None
    assert read_delivery(config(), "release", "t-other", release("nightly-5")) is None
    # A source repository's release asks for nothing; an unknown repository is still refused.
    infra = release("v1").replace(b"acme/web-app", b"acme/infra")
    assert read_delivery(config(), "release", "i-rel", infra) is None
    with pytest.raises(Refused, match="evil/app is not a source in manager.yaml") as refused:
        read_delivery(config(), "release", "e-rel", release("v1").replace(b"acme/web-app", b"evil/app"))
    assert refused.value.status == 403


def test_the_inbox_keeps_a_trigger_delivery_as_it_was_read(tmp_path):
    inbox = Inbox(f"sqlite:///{tmp_path / 'inbox.db'}")
    delivery = read_delivery(config(), "release", "r-1", release("v3.0.0"))
    assert inbox.add(delivery) == (1, True)
    assert inbox.add(read_delivery(config(), "push", "r-2", tag_push("v3.0.0")))[1] is False  # the same tag
    [stored] = inbox.after(0, 10)
    assert stored.delivery.trigger_ref == "refs/tags/v3.0.0" and stored.delivery.ref_key == delivery.ref_key


# --- the receiver: who may sign --------------------------------------------------------------


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "manager.yaml"
    path.write_text(TRIGGERS_CONFIG)
    environ = {"WEB_APP_HOOK_SECRET": APP_SECRET, "INFRA_HOOK_SECRET": "infra-own-secret"}
    return WebhookApp(ORG_SECRET, ConfigWatcher(path), Inbox(f"sqlite:///{tmp_path / 'inbox.db'}"), environ=environ)


def post(app, body: bytes, secret: str | None, delivery: str, event: str = "push"):
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature_for(secret.encode(), body)
    return app.handle(headers, body)


def test_a_trigger_repository_signs_with_its_own_secret_or_the_organisations_and_nothing_else(app):
    body = push_payload("acme/web-app", sha=APP_SHA)
    assert post(app, body, None, "unsigned")[0] == 401
    assert post(app, body, "infra-own-secret", "infra-signed")[0] == 401  # another repository's secret
    assert post(app, body, "guessed", "forged")[0] == 401
    assert app.inbox.states() == {}
    status, answer = post(app, body, APP_SECRET, "own")
    assert (status, answer["status"], answer["sources"]) == (202, "queued", ["net", "data"])
    assert post(app, body, ORG_SECRET, "replayed")[:2] == (200, {"status": "duplicate"})
    # Its secret never signs for the infra repository.
    infra = push_payload("acme/infra", sha="c" * 40)
    assert post(app, infra, APP_SECRET, "infra-by-app")[0] == 401
    assert post(app, release("v9"), APP_SECRET, "rel", event="release")[0] == 202


# --- dispatch --------------------------------------------------------------------------------


def test_a_trigger_delivery_runs_its_sources_as_a_push_to_their_default_branch():
    delivery = read_delivery(config(), "push", "p-1", push_payload("acme/web-app", sha=APP_SHA))
    plan = plan_dispatch([InboxEvent(1, delivery, PENDING)], config(), lambda d, s: True)
    runs = {(run.source, run.environment): run.tags() for run in plan.runs}
    # net deploys from main (staging and production); data from trunk, staging only.
    assert sorted(runs) == [("data", "staging"), ("net", "production"), ("net", "staging")]
    tags = runs[("net", "production")]
    assert tags[".dagster/manager/trigger-repo"] == "acme/web-app" and tags[".dagster/manager/trigger-sha"] == APP_SHA
    assert tags[".dagster/manager/trigger-ref"] == "refs/heads/main" and tags[".dagster/manager/trigger"] == "webhook"
    # The infra repository is read at its branch head (the run resolves it), never at the app's commit.
    assert ".dagster/manager/sha" not in tags and ".dagster/manager/branch" not in tags and ".dagster/manager/plan-only" not in tags
    event = DispatchEvent.from_tags("net", "production", tags)
    assert (event.trigger_repo, event.trigger_sha, event.sha) == ("acme/web-app", APP_SHA, None)
    # Issue 19 #4: the application's pusher did not write the infra head being planned: the run carries
    # no author, and the approval takes the author of the planned infra commit from GitHub.
    assert delivery.author == "dev" and event.author is None
    assert not any(key.endswith("/author") for key in tags)


def test_a_trigger_removed_from_manager_yaml_since_the_delivery_starts_nothing():
    delivery = read_delivery(config(), "push", "p-2", push_payload("acme/web-app", sha=APP_SHA))
    narrowed = config(TRIGGERS_CONFIG.replace('branches: [main, "release/*"]', 'branches: ["release/*"]').replace(
        "    triggers:\n      - {repo: acme/web-app, branches: [main]}\n", ""))
    plan = plan_dispatch([InboxEvent(1, delivery, PENDING)], narrowed, lambda d, s: True)
    assert plan.runs == []
    state, note = plan.notes[1]
    assert state == "ignored"
    assert "net: refs/heads/main no longer matches its trigger acme/web-app" in note
    assert "data: acme/web-app no longer triggers it" in note


def test_the_dispatch_sensor_asks_again_for_a_lost_trigger_run_with_the_same_tags(tmp_path):
    path = tmp_path / "manager.yaml"
    path.write_text(TRIGGERS_CONFIG)
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    Inbox(url).add(read_delivery(config(), "push", "lost", push_payload("acme/web-app", sha=APP_SHA)))
    instance = DagsterInstance.ephemeral()
    resources = {
        "manager": ManagerConfigResource(config_path=str(path)),
        "inbox": InboxResource(database_url=url),
        "github": GitHubResource(),
    }

    def tick():
        with build_sensor_context(instance=instance, resources=resources) as context:
            return dispatch_sensor()(context)

    first = {r.run_key: r.tags for r in tick().run_requests}
    assert sorted(first) == ["lost:data:staging", "lost:net:production", "lost:net:staging"]
    # The daemon created only the staging run of net before it died.
    kept = first["lost:net:staging"] | {"dagster/run_key": "lost:net:staging"}
    instance.add_run(DagsterRun(job_name="deploy", run_id="r-1", tags=kept))
    again = {r.run_key: r.tags for r in tick().run_requests}
    assert again == {key: first[key] for key in ("lost:data:staging", "lost:net:production")}


# --- what the application commit is told -------------------------------------------------------


def test_the_receiver_announces_queued_runs_on_the_application_commit_per_source_and_environment():
    delivery = read_delivery(config(), "push", "p-3", push_payload("acme/web-app", sha=APP_SHA))
    statuses = queued_statuses(1, delivery, config(), lambda d, s: True, "http://ui/runs")
    assert {(s.repo, s.payload["sha"]) for s in statuses} == {("acme/web-app", APP_SHA)}
    assert sorted(s.payload["context"] for s in statuses) == [
        "manager-pipeline/data/staging",
        "manager-pipeline/net/production",
        "manager-pipeline/net/staging",
    ]
    # A release names no commit yet: the run's own status is the first one.
    assert queued_statuses(2, read_delivery(config(), "release", "r", release("v1")), config(), None, "u") == []


def test_a_finished_run_tells_the_application_commit_with_a_link_and_only_a_triggered_run_does():
    event = DispatchEvent("net", "production", trigger_repo="acme/web-app", trigger_ref="refs/tags/v1",
                          trigger_sha=APP_SHA)
    outcome = Outcome(event=event, status=OutcomeStatus.FAILED, headline="failed", failed_stage="plan",
                      error="Error: no such region")
    [status] = trigger_status.items_for(outcome, "http://ui/runs/r-9")
    assert status.repo == "acme/web-app" and status.payload["sha"] == APP_SHA
    assert status.payload["context"] == "manager-pipeline/net/production" and status.payload["state"] == "failure"
    assert status.payload["target_url"] == "http://ui/runs/r-9"
    assert status.payload["description"] == "Failed at plan: Error: no such region"
    assert trigger_status.items_for(Outcome(DispatchEvent("net", "staging"), OutcomeStatus.APPLIED, "ok"), "u") == []
    # A release's commit is learnt during the run: the tags as they are at the end decide.
    unresolved = DispatchEvent("net", "staging", trigger_repo="acme/web-app", trigger_ref="refs/tags/v1")
    assert trigger_status.started(unresolved, "u") == []
    resolved = trigger_status.with_trigger(unresolved, unresolved.to_tags() | {".dagster/manager/trigger-sha": APP_SHA})
    [started] = trigger_status.started(resolved, "u")
    assert started.payload["sha"] == APP_SHA and started.payload["description"] == "Planning staging…"
