"""Dispatch intake: webhook deliveries -> inbox -> run requests, and polling."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, build_sensor_context

from manager_pipeline.config import parse_config
from manager_pipeline.defs.resources import GitHubResource, InboxResource
from manager_pipeline.defs.sensors import dispatch_sensor
from manager_pipeline.github import GitHubSettings, connect
from manager_pipeline.github.polling import GitHubPoller
from manager_pipeline.intake.dispatch import plan_dispatch
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.polling import PollState, poll
from manager_pipeline.intake.webhooks import Refused, read_delivery, signature_for
from manager_pipeline.local_aws import free_port

from .conftest import BIN, REPO, stop_process, wait_for_http

SECRET = "webhook-secret-for-tests-4f9a"
CONFIG_TEXT = """
sources:
  - {name: web, repo: acme/web}
  - {name: api, repo: acme/mono, variables_file: services/api/infra/variables.yml}
  - {name: batch, repo: acme/mono, variables_file: services/batch/infra/variables.yml, environments: [staging]}
environments:
  staging: {auto_apply: true, apply_branches: [main]}
  production: {auto_apply: false, apply_branches: [main, release]}
"""


def config():
    return parse_config(CONFIG_TEXT, Path("/srv/manager/manager.yaml"))


def push(repo="acme/web", files=("infra/variables.yml",), branch="main", sha=None, **extra) -> bytes:
    payload = {
        "ref": f"refs/heads/{branch}",
        "after": sha or hashlib.sha1(repr((repo, files, branch)).encode()).hexdigest(),
        "repository": {"full_name": repo},
        "pusher": {"name": "dev"},
        "commits": [{"id": "c1", "added": [], "removed": [], "modified": list(files)}],
        **extra,
    }
    return json.dumps(payload).encode()


def pull_request(repo="acme/web", number=12, action="opened", sha="a" * 40) -> bytes:
    return json.dumps(
        {
            "action": action,
            "number": number,
            "repository": {"full_name": repo},
            "pull_request": {"number": number, "head": {"sha": sha, "ref": "feature"}, "user": {"login": "dev"}},
        }
    ).encode()


# --- reading deliveries -------------------------------------------------------------------


def test_push_touching_infra_is_a_delivery_for_the_sources_it_touches():
    delivery = read_delivery(config(), "push", "d1", push("acme/mono", files=("services/api/infra/variables.yml",)))
    assert delivery.sources == ("api",) and delivery.branch == "main" and delivery.ref_key == "branch:main"
    both = read_delivery(
        config(),
        "push",
        "d2",
        push("acme/mono", files=("services/api/infra/x.tf", "services/batch/infra/variables.yml")),
    )
    assert both.sources == ("api", "batch")


@pytest.mark.parametrize(
    "body",
    [
        push(files=("src/app.py", "README.md")),
        push(ref="refs/tags/v1.0"),
        push(deleted=True),
        pull_request(action="closed"),
        pull_request(action="labeled"),
    ],
    ids=["outside-infra", "tag", "branch-deleted", "pr-closed", "pr-labeled"],
)
def test_deliveries_that_ask_for_nothing_start_nothing(body):
    event = "pull_request" if b'"action"' in body else "push"
    assert read_delivery(config(), event, "d", body) is None


def test_a_long_push_whose_files_are_not_listed_is_taken_to_touch_infra():
    body = json.loads(push(files=("src/app.py",)))
    body["commits"] = body["commits"] * 20
    assert read_delivery(config(), "push", "d", json.dumps(body).encode()).sources == ("web",)


@pytest.mark.parametrize(
    "event, body, status, reason",
    [
        ("issues", push(), 400, "event type 'issues' is not handled"),
        ("push", b"{not json", 400, "body is not JSON"),
        ("push", b"[1, 2]", 400, "not a JSON object"),
        ("push", push(repo="evil/repo"), 403, "repository evil/repo is not a source in manager.yaml"),
    ],
)
def test_bad_deliveries_are_refused_with_a_status(event, body, status, reason):
    with pytest.raises(Refused) as caught:
        read_delivery(config(), event, "d", body)
    assert caught.value.status == status and reason in caught.value.reason


# --- planning runs ------------------------------------------------------------------------


def events_from(deliveries, tmp_path):
    inbox = Inbox(f"sqlite:///{tmp_path / 'inbox.db'}")
    for delivery in deliveries:
        inbox.add(delivery)
    return inbox, inbox.after(0, 10_000)


def test_pull_requests_plan_every_environment_and_pushes_the_apply_branches(tmp_path):
    deliveries = [
        read_delivery(config(), "pull_request", "pr-1", pull_request()),
        read_delivery(config(), "push", "push-1", push(branch="release", sha="b" * 40)),
        read_delivery(config(), "push", "push-2", push(branch="feature", sha="c" * 40)),
    ]
    _, events = events_from(deliveries, tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: True)
    runs = {(r.delivery.delivery_id, r.environment): r for r in plan.runs}
    assert set(runs) == {("pr-1", "staging"), ("pr-1", "production"), ("push-1", "production")}
    assert runs[("pr-1", "staging")].tags()["manager/plan-only"] == "true"
    assert "manager/plan-only" not in runs[("push-1", "production")].tags()
    assert runs[("push-1", "production")].tags()["manager/delivery"] == "push-1"
    assert plan.notes[events[2].id] == ("ignored", "web: branch feature deploys to no environment")


def test_a_newer_delivery_supersedes_older_ones_of_the_same_branch(tmp_path):
    deliveries = [read_delivery(config(), "push", f"p{i}", push(sha=f"{i:040x}")) for i in range(3)]
    _, events = events_from(deliveries, tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: True)
    assert {r.delivery.delivery_id for r in plan.runs} == {"p2"}
    assert plan.notes[events[0].id][0] == "superseded" and "superseded by delivery p1" in plan.notes[events[0].id][1]


def test_a_pull_request_that_changes_no_variables_is_noted_not_run(tmp_path):
    _, events = events_from([read_delivery(config(), "pull_request", "pr-9", pull_request())], tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: False)
    assert plan.runs == [] and plan.notes[events[0].id][0] == "ignored"


# --- the dispatch sensor ------------------------------------------------------------------


def evaluate(sensor, instance, resources, cursor=None):
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        result = sensor(context)
    return result


@pytest.fixture
def dispatch_setup(tmp_path):
    manager_yaml = tmp_path / "manager.yaml"
    sources = "".join(f"  - {{name: s{i:02d}, repo: acme/s{i:02d}}}\n" for i in range(50))
    manager_yaml.write_text(
        "sources:\n" + sources + "environments:\n  staging: {auto_apply: true}\n  production: {auto_apply: false}\n"
    )
    (tmp_path / "dagster").mkdir()
    instance = DagsterInstance.from_config(str(tmp_path / "dagster"))
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    resources = {"inbox": InboxResource(database_url=url), "github": GitHubResource()}
    return parse_config(manager_yaml.read_text(), manager_yaml), manager_yaml, instance, resources, Inbox(url)


def test_the_same_delivery_twice_gives_one_run_per_environment(dispatch_setup):
    config_, path, instance, resources, inbox = dispatch_setup
    body = push(repo="acme/s01", sha="d" * 40)
    assert inbox.add(read_delivery(config_, "push", "same", body))[1] is True
    assert inbox.add(read_delivery(config_, "push", "same", body))[1] is False
    result = evaluate(dispatch_sensor(path), instance, resources)
    assert sorted(r.run_key for r in result.run_requests) == ["same:s01:production", "same:s01:staging"]
    again = evaluate(dispatch_sensor(path), instance, resources, cursor=result.cursor)
    assert again.skip_message == "no new deliveries"


def test_a_burst_of_1000_deliveries_across_50_sources_survives_a_restart_halfway(dispatch_setup):
    config_, path, instance, resources, inbox = dispatch_setup
    deliveries = []
    for index in range(1000):
        source = f"s{index % 50:02d}"
        # Each source gets pushes to main and pull requests; some pull requests are pushed again.
        if index % 4 == 3:
            body, event = (
                pull_request(repo=f"acme/{source}", number=100 + index % 8, sha=f"{index:040x}"),
                "pull_request",
            )
        else:
            body, event = push(repo=f"acme/{source}", sha=f"{index:040x}"), "push"
        deliveries.append(read_delivery(config_, event, f"burst-{index}", body))
    for delivery in deliveries:
        inbox.add(delivery)

    sensor = dispatch_sensor(path, batch=500)
    first = evaluate(sensor, instance, resources)
    # The sensor is stopped here and started again: only its cursor survives.
    second = evaluate(dispatch_sensor(path, batch=500), instance, resources, cursor=first.cursor)
    assert evaluate(dispatch_sensor(path, batch=500), instance, resources, cursor=second.cursor).skip_message
    requests = first.run_requests + second.run_requests
    keys = [r.run_key for r in requests]
    assert len(keys) == len(set(keys)), "a delivery started two runs"

    states = inbox.states()
    assert sum(states.values()) == 1000 and "received" not in states, states
    dispatched = {r.tags["manager/delivery"] for r in requests}
    # Every delivery is accounted for: dispatched, or superseded by a newer one of its branch or PR.
    for event in inbox.after(0, 2000):
        assert (event.delivery.delivery_id in dispatched) == (event.state == "dispatched"), event
    # The newest delivery of every source, branch and PR got its runs, one per environment.
    newest: dict[tuple, str] = {}
    for delivery in deliveries:
        newest[(delivery.sources[0], delivery.ref_key)] = delivery.delivery_id
    for (source, _), delivery_id in newest.items():
        envs = {r.tags["manager/environment"] for r in requests if r.tags["manager/delivery"] == delivery_id}
        assert envs == {"staging", "production"}, (source, delivery_id)
    assert all(r.tags["manager/plan-only"] == "true" for r in requests if "manager/pr" in r.tags)


# --- the receiver, over HTTP --------------------------------------------------------------


class Receiver:
    def __init__(self, url: str, inbox: Inbox, log: Path):
        self.url, self.inbox, self.log = url, inbox, log

    def post(self, body: bytes, event="push", delivery="d-1", signature: str | None = "sign", headers=None):
        sent = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
        if signature == "sign":
            sent["X-Hub-Signature-256"] = signature_for(SECRET.encode(), body)
        elif signature:
            sent["X-Hub-Signature-256"] = signature
        sent.update(headers or {})
        request = urllib.request.Request(f"{self.url}/webhooks/github", data=body, method="POST", headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


@pytest.fixture
def receiver(tmp_path):
    (tmp_path / "manager.yaml").write_text(CONFIG_TEXT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MANAGER_", "DAGSTER_", "GITHUB_"))} | {
        "MANAGER_CONFIG": str(tmp_path / "manager.yaml"),
        "MANAGER_HOME": str(tmp_path / ".manager"),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "PYTHONPATH": str(REPO),
    }
    port = free_port()
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", process, log)
    yield Receiver(url, Inbox(f"sqlite:///{tmp_path / '.manager' / 'dagster' / 'manager.db'}"), log)
    stop_process(process)


def test_receiver_refuses_forged_missing_oversized_and_unknown(receiver):
    body = push()
    assert receiver.post(body, signature=None)[0] == 401
    assert receiver.post(body, signature="sha256=" + "0" * 64)[0] == 401
    assert receiver.post(body + b" ", signature=signature_for(SECRET.encode(), body))[0] == 401
    assert receiver.post(b"x" * (1024 * 1024 + 1))[0] == 413
    assert receiver.post(b"{oops")[0] == 400
    assert receiver.post(push(), event="deployment")[0] == 400
    assert receiver.post(push(repo="evil/repo"))[0] == 403
    assert receiver.post(push(), delivery="")[0] == 400
    assert receiver.inbox.states() == {}
    log = receiver.log.read_text()
    assert "refused 401" in log and "refused 413" in log and "refused 403" in log
    assert SECRET not in log and signature_for(SECRET.encode(), body) not in log and "sha256=" not in log


def test_receiver_queues_once_per_delivery_and_answers_fast(receiver):
    status, answer = receiver.post(push(), delivery="abc-1")
    assert status == 202 and answer["status"] == "queued" and answer["sources"] == ["web"]
    assert receiver.post(push(), delivery="abc-1") == (200, {"status": "duplicate"})
    assert receiver.post(push(files=("docs/x.md",)), delivery="abc-2")[1]["status"] == "ignored"
    assert (
        receiver.post(
            json.dumps({"zen": "hi", "repository": {"full_name": "acme/web"}}).encode(), event="ping", delivery="p"
        )[0]
        == 200
    )
    assert receiver.inbox.states() == {"received": 1}
    timings = []
    for index in range(50):
        started = time.perf_counter()
        assert receiver.post(push(sha=f"{index:040x}"), delivery=f"t-{index}")[0] == 202
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.1
    assert receiver.inbox.states() == {"received": 51}


def test_receiver_refuses_to_start_without_a_secret(tmp_path):
    (tmp_path / "manager.yaml").write_text(CONFIG_TEXT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MANAGER_", "GITHUB_"))} | {
        "MANAGER_CONFIG": str(tmp_path / "manager.yaml"),
        "MANAGER_HOME": str(tmp_path / ".m"),
    }
    done = subprocess.run(
        [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "GITHUB_WEBHOOK_SECRET is not set" in done.stderr


def test_the_source_side_workflow_posts_a_signed_event_the_receiver_takes(receiver, tmp_path):
    workflow = yaml.safe_load((REPO / "examples/source_monorepo/.github/workflows/infra-dispatch.yml").read_text())
    assert set(workflow[True]) == {"push", "pull_request"} and workflow[True]["push"]["paths"] == ["infra/**"]
    script = workflow["jobs"]["dispatch"]["steps"][0]["run"]
    event = tmp_path / "event.json"
    event.write_bytes(push())
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_RUN_ID": "4711",
        "GITHUB_RUN_ATTEMPT": "1",
        "MANAGER_WEBHOOK_SECRET": SECRET,
        "MANAGER_WEBHOOK_URL": f"{receiver.url}/webhooks/github",
    }
    done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "manager answered 202" in done.stdout
    assert receiver.inbox.after(0, 10)[0].delivery.delivery_id == "actions-4711-1"
    env["MANAGER_WEBHOOK_SECRET"] = "wrong"
    env["GITHUB_RUN_ID"] = "4712"
    refused = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "refused the event (401)" in refused.stderr


# --- polling ------------------------------------------------------------------------------


def test_polling_picks_up_a_new_commit_once_and_unchanged_repos_cost_304s(github_standin):
    name = f"acme/poll-{os.getpid()}-{time.time_ns() % 10**6}"
    token = f"ghp_poll{time.time_ns()}"
    first, second, third = (hashlib.sha1(f"{name}{i}".encode()).hexdigest() for i in range(3))
    github_standin.token(token)
    github_standin.repo(
        name, commits={first: {"infra/variables.yml": "a: 1\n", "src/x.py": "1"}}, branches={"main": first}
    )
    config_ = parse_config(
        f"sources:\n  - {{name: polled, repo: {name}}}\nenvironments:\n  staging: {{auto_apply: true}}\n",
        Path("/srv/m/manager.yaml"),
    )
    poller = GitHubPoller(connect(GitHubSettings(api_url=github_standin.url, token=token, throttle=False)))
    state = PollState()
    assert poll(config_, poller, state) == []  # the first look records what is there
    github_standin.update(
        name, commits={second: {"infra/variables.yml": "a: 1\n", "src/x.py": "2"}}, branches={"main": second}
    )
    assert poll(config_, poller, state) == []  # a change outside infra/
    github_standin.update(
        name, commits={third: {"infra/variables.yml": "a: 2\n", "src/x.py": "2"}}, branches={"main": third}
    )
    state = PollState.from_json(state.to_json())
    found = poll(config_, poller, state)
    assert [(d.delivery_id, d.sources, d.sha) for d in found] == [(f"poll:{name}:main:{third}", ("polled",), third)]
    before = len(github_standin.requests())
    assert poll(config_, poller, state) == []
    unchanged = github_standin.requests()[before:]
    assert unchanged and all(r.get("status") == 304 for r in unchanged)
    github_standin.update(name, pulls=[{"number": 5, "head_sha": third, "head_ref": "feature"}])
    pulls = poll(config_, poller, state)
    assert [(d.event, d.pr, d.sha) for d in pulls] == [("pull_request", 5, third)]
