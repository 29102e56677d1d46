"""Dispatch intake without a process or a network: deliveries read, runs planned, the dispatch sensor over an inbox."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, Definitions, ResourceDefinition, RunsFilter, build_sensor_context
from sqlalchemy import delete, insert, select

from manager_pipeline.config.file import parse_config
from manager_pipeline.defs.jobs import deploy_job
from manager_pipeline.defs.resources import GitHubResource, InboxResource, ManagerConfigResource
from manager_pipeline.defs.intake import dispatch_sensor
from manager_pipeline.intake.announce import Announcer, queued_statuses
from manager_pipeline.intake.dispatch import plan_dispatch, pr_checker
from manager_pipeline.intake.inbox import Inbox, inbox_table
from manager_pipeline.intake.webhooks import Refused, read_delivery
from tests.support import INTAKE_CONFIG, plan_comment_payload, pull_request_payload, push_payload


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
    assert runs[("pr-1", "staging")].tags()[".dagster/manager/plan-only"] == "true"
    assert ".dagster/manager/plan-only" not in runs[("push-1", "production")].tags()
    assert runs[("push-1", "production")].tags()[".dagster/manager/delivery"] == "push-1"
    assert plan.notes[events[2].id] == ("ignored", "web: branch feature deploys to no environment")


def test_a_newer_delivery_supersedes_older_ones_of_the_same_branch(tmp_path):
    deliveries = [read_delivery(config(), "push", f"p{i}", push_payload(sha=f"{i + 1:040x}")) for i in range(3)]
    _, events = events_from(deliveries, tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: True)
    assert {r.delivery.delivery_id for r in plan.runs} == {"p2"}
    assert plan.notes[events[0].id][0] == "superseded" and "superseded by delivery p1" in plan.notes[events[0].id][1]


def test_a_pull_request_that_changes_no_variables_is_noted_not_run(tmp_path):
    _, events = events_from([read_delivery(config(), "pull_request", "pr-9", pull_request_payload())], tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: False)
    assert plan.runs == [] and plan.notes[events[0].id][0] == "ignored"


# --- the receiver's `queued` statuses --------------------------------------------------------


def test_a_stored_delivery_is_announced_as_queued_for_exactly_the_runs_dispatch_will_start():
    release = read_delivery(config(), "push", "push-1", push_payload(branch="release", sha="b" * 40))
    [status] = queued_statuses(1, release, config(), lambda d, s: True, "http://ui/runs")
    assert status.repo == "acme/web" and status.kind == "status"
    assert status.payload["sha"] == "b" * 40 and status.payload["context"] == "manager-pipeline/production"
    assert status.payload["state"] == "pending" and "Queued" in status.payload["description"]
    pr = read_delivery(config(), "pull_request", "pr-1", pull_request_payload())
    contexts = {s.payload["context"] for s in queued_statuses(2, pr, config(), lambda d, s: True, "u")}
    assert contexts == {"manager-pipeline/staging", "manager-pipeline/production"}
    feature = read_delivery(config(), "push", "push-2", push_payload(branch="feature", sha="c" * 40))
    assert queued_statuses(3, feature, config(), lambda d, s: True, "u") == []


def test_a_pull_request_that_changes_no_variables_is_not_announced():
    pr = read_delivery(config(), "pull_request", "pr-2", pull_request_payload())
    asked = []

    def pull_files(repo, number):
        asked.append((repo, number))
        return ("src/app.py",)

    touches = pr_checker(pull_files)
    assert queued_statuses(1, pr, config(), touches, "u") == []
    assert queued_statuses(1, pr, config(), touches, "u") == []
    assert asked == [("acme/web", pr.pr)]  # once per pull request head


def test_the_announcer_sends_in_the_order_stored_and_survives_a_failing_github():
    enqueued, sent = [], []

    def send():
        sent.append(len(enqueued))
        if len(sent) == 1:
            raise ConnectionError("GitHub is down")

    announcer = Announcer(config, lambda d, s: True, enqueued.append, send, "u")
    shas = ["d" * 40, "e" * 40]
    for index, sha in enumerate(shas):
        announcer.announce(index, read_delivery(config(), "push", f"p{index}", push_payload(branch="release", sha=sha)))
    announcer.close()
    assert [items[0].payload["sha"] for items in enqueued] == shas
    assert sent == [1, 2]  # the first send failed; the second delivery was still announced


# --- the dispatch sensor ------------------------------------------------------------------


def evaluate(sensor, instance, resources, cursor=None, definitions=None):
    with build_sensor_context(
        instance=instance, resources=resources, cursor=cursor, definitions=definitions
    ) as context:
        result = sensor(context)
    return result


def launch(instance, result, lose=()):
    """What the daemon does with a tick's run requests: a run per run key not used yet (``lose``:
    run keys whose request is lost, as when the daemon dies before it creates the run)."""
    used = {run.tags.get("dagster/run_key") for run in instance.get_runs()}
    for request in getattr(result, "run_requests", None) or []:
        if request.run_key in lose or request.run_key in used:
            continue
        used.add(request.run_key)
        tags = {**request.tags, "dagster/run_key": request.run_key}
        instance.add_run(DagsterRun(job_name="deploy", run_id=str(uuid.uuid4()), tags=tags))


@pytest.fixture
def dispatch_setup(tmp_path):
    manager_yaml = tmp_path / "manager.yaml"
    sources = "".join(f"  - {{name: s{i:02d}, repo: acme/s{i:02d}}}\n" for i in range(50))
    manager_yaml.write_text(
        "sources:\n" + sources + "environments:\n  staging: {auto_apply: true}\n  production: {auto_apply: false}\n"
    )
    instance = DagsterInstance.ephemeral()  # in memory: the runs a test adds cost no disk writes
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    resources = {
        "manager": ManagerConfigResource(config_path=str(manager_yaml)),
        "inbox": InboxResource(database_url=url),
        "github": GitHubResource(),
    }
    return parse_config(manager_yaml.read_text(), manager_yaml), manager_yaml, instance, resources, Inbox(url)


def test_the_same_delivery_twice_gives_one_run_per_environment(dispatch_setup):
    config_, path, instance, resources, inbox = dispatch_setup
    body = push_payload(repo="acme/s01", sha="d" * 40)
    assert inbox.add(read_delivery(config_, "push", "same", body))[1] is True
    assert inbox.add(read_delivery(config_, "push", "same", body))[1] is False
    result = evaluate(dispatch_sensor(), instance, resources)
    assert sorted(r.run_key for r in result.run_requests) == ["same:s01:production", "same:s01:staging"]
    launch(instance, result)
    confirmed = evaluate(dispatch_sensor(), instance, resources)
    assert confirmed.skip_message == "no new deliveries" and inbox.states() == {"dispatched": 1}


def test_a_burst_of_1000_deliveries_across_50_sources_survives_a_restart_halfway(dispatch_setup):
    config_, path, instance, resources, inbox = dispatch_setup
    deliveries = []
    for index in range(1000):
        source = f"s{index % 50:02d}"
        # Each source gets pushes to main and pull requests; some pull requests are pushed again.
        if index % 4 == 3:
            body, event = (
                pull_request_payload(repo=f"acme/{source}", number=100 + index % 8, sha=f"{index + 1:040x}"),
                "pull_request",
            )
        else:
            body, event = push_payload(repo=f"acme/{source}", sha=f"{index + 1:040x}"), "push"
        deliveries.append(read_delivery(config_, event, f"burst-{index}", body))
    for delivery in deliveries:
        inbox.add(delivery)

    sensor = dispatch_sensor(batch=500)
    first = evaluate(sensor, instance, resources)
    launch(instance, first)
    # The sensor is stopped here and started again: only the inbox's row states survive.
    second = evaluate(dispatch_sensor(batch=500), instance, resources)
    launch(instance, second)
    assert evaluate(dispatch_sensor(batch=500), instance, resources).skip_message
    requests = first.run_requests + second.run_requests
    keys = [r.run_key for r in requests]
    assert len(keys) == len(set(keys)), "a delivery started two runs"

    states = inbox.states()
    assert sum(states.values()) == 1000 and "received" not in states, states
    dispatched = {r.tags[".dagster/manager/delivery"] for r in requests}
    # Every delivery is accounted for: dispatched, or superseded by a newer one of its branch or PR.
    for event in inbox.after(0, 2000):
        assert (event.delivery.delivery_id in dispatched) == (event.state == "dispatched"), event
    # The newest delivery of every source, branch and PR got its runs, one per environment.
    newest: dict[tuple, str] = {}
    for delivery in deliveries:
        newest[(delivery.sources[0], delivery.ref_key)] = delivery.delivery_id
    for (source, _), delivery_id in newest.items():
        envs = {r.tags["manager/environment"] for r in requests if r.tags[".dagster/manager/delivery"] == delivery_id}
        assert envs == {"staging", "production"}, (source, delivery_id)
    assert all(r.tags[".dagster/manager/plan-only"] == "true" for r in requests if ".dagster/manager/pr" in r.tags)


# --- issue 10: row states, not an id cursor; marking after the runs exist; unloaded partitions --


def test_a_lower_id_that_commits_after_a_higher_one_is_still_dispatched(dispatch_setup):
    """On PostgreSQL ids come from a sequence when a row is inserted, not when it commits: row 1 can
    become visible after row 2 has been dispatched."""
    config_, path, instance, resources, inbox = dispatch_setup
    early, _ = inbox.add(read_delivery(config_, "push", "slow-commit", push_payload(repo="acme/s01", sha="1" * 40)))
    inbox.add(read_delivery(config_, "push", "fast-commit", push_payload(repo="acme/s02", sha="2" * 40)))
    with inbox.engine.begin() as connection:  # row 1 not committed yet: invisible
        [hidden] = connection.execute(select(inbox_table).where(inbox_table.c.id == early)).mappings().all()
        connection.execute(delete(inbox_table).where(inbox_table.c.id == early))
    first = evaluate(dispatch_sensor(), instance, resources)
    assert {r.tags[".dagster/manager/delivery"] for r in first.run_requests} == {"fast-commit"}
    launch(instance, first)
    with inbox.engine.begin() as connection:  # ... and now it commits, under its lower id
        connection.execute(insert(inbox_table).values(**hidden))
    second = evaluate(dispatch_sensor(), instance, resources, cursor=getattr(first, "cursor", None))
    assert {r.tags[".dagster/manager/delivery"] for r in second.run_requests} == {"slow-commit"}


def test_rows_are_dispatched_only_once_their_runs_exist_and_lost_requests_are_asked_again(dispatch_setup):
    config_, path, instance, resources, inbox = dispatch_setup
    inbox.add(read_delivery(config_, "push", "lost", push_payload(repo="acme/s03", sha="3" * 40)))
    first = evaluate(dispatch_sensor(), instance, resources)
    assert inbox.states() == {"dispatching": 1}
    # The daemon dies after the tick: the staging run was created, the production one never was.
    launch(instance, first, lose={"lost:s03:production"})
    second = evaluate(dispatch_sensor(), instance, resources)
    assert [r.run_key for r in second.run_requests] == ["lost:s03:production"]
    assert second.run_requests[0].tags[".dagster/manager/delivery"] == "lost" and inbox.states() == {"dispatching": 1}
    launch(instance, second)
    assert evaluate(dispatch_sensor(), instance, resources).skip_message == "no new deliveries"
    assert inbox.states() == {"dispatched": 1}
    assert len(instance.get_runs(RunsFilter(tags={".dagster/manager/delivery": "lost"}))) == 2


def test_an_environment_the_loaded_job_lacks_is_noted_and_the_tick_goes_on(dispatch_setup):
    """manager.yaml gained `production` before the code location reloaded: its job knows staging only."""
    config_, path, instance, resources, inbox = dispatch_setup
    row, _ = inbox.add(read_delivery(config_, "push", "new-env", push_payload(repo="acme/s04", sha="4" * 40)))
    inbox.add(read_delivery(config_, "pull_request", "pr", pull_request_payload(repo="acme/s05")))
    job = deploy_job(["staging"])
    stubs = {key: ResourceDefinition.none_resource() for key in job.required_resource_keys - {"io_manager"}}
    loaded = Definitions(jobs=[job], resources={**stubs, **resources})
    result = evaluate(dispatch_sensor(), instance, resources, definitions=loaded)
    partitions = {str(r.partition_key) for r in result.run_requests}
    assert partitions == {"staging|s04", "staging|s05"}
    notes = {event.delivery.delivery_id: event for event in inbox.after(0, 10)}
    assert notes["new-env"].state == "received"
    assert "no environment production yet (reload the code location)" in notes["new-env"].note
    launch(instance, result)
    # Reloaded: the production runs are requested; the staging ones again, under the same run keys.
    reloaded = evaluate(dispatch_sensor(), instance, resources)
    assert {str(r.partition_key) for r in reloaded.run_requests} >= {"production|s04", "production|s05"}
    launch(instance, reloaded)
    evaluate(dispatch_sensor(), instance, resources)
    assert inbox.states() == {"dispatched": 2}
    assert len(instance.get_runs(RunsFilter(tags={".dagster/manager/delivery": "new-env"}))) == 2


def test_a_waiting_fork_pull_request_gets_a_run_only_after_a_maintainers_plan(dispatch_setup):
    config_, path, instance, resources, inbox = dispatch_setup
    fork = pull_request_payload(repo="acme/s06", head_repo="mallory/s06", association="NONE")
    inbox.add(read_delivery(config_, "pull_request", "fork-pr", fork))
    assert evaluate(dispatch_sensor(), instance, resources).skip_message == "no new deliveries"
    assert inbox.states() == {"waiting": 1}
    inbox.add(read_delivery(config_, "issue_comment", "plan", plan_comment_payload(repo="acme/s06")))
    result = evaluate(dispatch_sensor(), instance, resources)
    assert {(r.tags[".dagster/manager/delivery"], r.tags[".dagster/manager/plan-only"]) for r in result.run_requests} == {
        ("fork-pr", "true")
    }


# --- issue 10, hole 7: webhook runs carry the change's author -----------------------------------


def test_webhook_runs_carry_the_pull_request_author_and_the_pusher(tmp_path):
    pr = read_delivery(config(), "pull_request", "pr-7", pull_request_payload(author="carol", sha="7" * 40))
    assert pr.author == "carol"  # pull_request.user.login
    # A push names the pusher twice: `pusher.name` (a Git name/email pair that GitHub fills with the
    # pushing account's login) and `sender.login` (the account that triggered the delivery, the same
    # account for a push). The code reads `pusher.name`: it is GitHub's own record of who pushed (the
    # issue asks for "the pusher"), and it is set by GitHub from the authenticated push, unlike the
    # commits' author fields. The two differ here only to pin which field is read.
    body = json.loads(push_payload(branch="release", sha="8" * 40))
    body["pusher"] = {"name": "pat", "email": "pat@example.com"}
    body["sender"] = {"login": "someone-else", "type": "User"}
    push = read_delivery(config(), "push", "push-7", json.dumps(body).encode())
    assert push.author == "pat"
    # ... and the runs dispatched for them carry it as manager/author (what the plan records and the
    # rule against self-approval is checked against).
    _, events = events_from([pr, push], tmp_path)
    plan = plan_dispatch(events, config(), lambda delivery, spec: True)
    authors = {(r.delivery.delivery_id, r.environment): r.tags().get(".dagster/manager/author") for r in plan.runs}
    assert authors == {("pr-7", "staging"): "carol", ("pr-7", "production"): "carol", ("push-7", "production"): "pat"}
