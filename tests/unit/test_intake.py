"""Dispatch intake without a process or a network: deliveries read, runs planned, the dispatch sensor over an inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context

from manager_pipeline.config import parse_config
from manager_pipeline.defs.resources import GitHubResource, InboxResource
from manager_pipeline.defs.sensors import dispatch_sensor
from manager_pipeline.intake.dispatch import plan_dispatch
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.webhooks import Refused, read_delivery
from tests.support import INTAKE_CONFIG, pull_request_payload, push_payload


def config():
    return parse_config(INTAKE_CONFIG, Path("/srv/manager/manager.yaml"))


# --- reading deliveries -------------------------------------------------------------------


def test_push_touching_infra_is_a_delivery_for_the_sources_it_touches():
    body = push_payload("acme/mono", files=("services/api/infra/variables.yml",))
    delivery = read_delivery(config(), "push", "d1", body)
    assert delivery.sources == ("api",) and delivery.branch == "main" and delivery.ref_key == "branch:main"
    both = read_delivery(
        config(),
        "push",
        "d2",
        push_payload("acme/mono", files=("services/api/infra/x.tf", "services/batch/infra/variables.yml")),
    )
    assert both.sources == ("api", "batch")


@pytest.mark.parametrize(
    "body",
    [
        push_payload(files=("src/app.py", "README.md")),
        push_payload(ref="refs/tags/v1.0"),
        push_payload(deleted=True),
        pull_request_payload(action="closed"),
        pull_request_payload(action="labeled"),
    ],
    ids=["outside-infra", "tag", "branch-deleted", "pr-closed", "pr-labeled"],
)
def test_deliveries_that_ask_for_nothing_start_nothing(body):
    event = "pull_request" if b'"action"' in body else "push"
    assert read_delivery(config(), event, "d", body) is None


def test_a_long_push_whose_files_are_not_listed_is_taken_to_touch_infra():
    body = json.loads(push_payload(files=("src/app.py",)))
    body["commits"] = body["commits"] * 20
    assert read_delivery(config(), "push", "d", json.dumps(body).encode()).sources == ("web",)


@pytest.mark.parametrize(
    "event, body, status, reason",
    [
        ("issues", push_payload(), 400, "event type 'issues' is not handled"),
        ("push", b"{not json", 400, "body is not JSON"),
        ("push", b"[1, 2]", 400, "not a JSON object"),
        ("push", push_payload(repo="evil/repo"), 403, "repository evil/repo is not a source in manager.yaml"),
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
        read_delivery(config(), "pull_request", "pr-1", pull_request_payload()),
        read_delivery(config(), "push", "push-1", push_payload(branch="release", sha="b" * 40)),
        read_delivery(config(), "push", "push-2", push_payload(branch="feature", sha="c" * 40)),
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
    deliveries = [read_delivery(config(), "push", f"p{i}", push_payload(sha=f"{i:040x}")) for i in range(3)]
    _, events = events_from(deliveries, tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: True)
    assert {r.delivery.delivery_id for r in plan.runs} == {"p2"}
    assert plan.notes[events[0].id][0] == "superseded" and "superseded by delivery p1" in plan.notes[events[0].id][1]


def test_a_pull_request_that_changes_no_variables_is_noted_not_run(tmp_path):
    _, events = events_from([read_delivery(config(), "pull_request", "pr-9", pull_request_payload())], tmp_path)
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
    body = push_payload(repo="acme/s01", sha="d" * 40)
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
                pull_request_payload(repo=f"acme/{source}", number=100 + index % 8, sha=f"{index:040x}"),
                "pull_request",
            )
        else:
            body, event = push_payload(repo=f"acme/{source}", sha=f"{index:040x}"), "push"
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
