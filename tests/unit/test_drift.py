"""Drift (issue 12 #1): what a refresh-only plan found, named without values; the drift issue, found again
by its marker and sent through the outbox; the schedules manager.yaml asks for."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from dagster import build_schedule_context, instance_for_test

from manager_pipeline.config.file import parse_config
from manager_pipeline.config.cron import cron_problem
from manager_pipeline.defs.drift import DRIFT_JOB, drift_schedules
from manager_pipeline.events import KIND_TAG, TRIGGER_TAG
from manager_pipeline.defs.partitions import SOURCE
from manager_pipeline.defs.resources import AwsResource, ManagerConfigResource, PlanStoreResource
from manager_pipeline.drift.report import DriftCheck, DriftStatus, drift_report, issue_body, issue_marker, report_markdown
from manager_pipeline.errors import ConfigError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.drift import issue as drift_issue
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.feedback.delivery import deliver
from manager_pipeline.feedback.github_items import items_for
from manager_pipeline.feedback.outbox import Outbox
from manager_pipeline.redact import forget_registered_secrets, register_secret
from manager_pipeline.github.client import GitHubError, Issue
from manager_pipeline.plans import PlanFacts, Plans, PlanState
from manager_pipeline.terraform.plan import PlanSummary

TAGS = {"Name": "demo-vpc", "Team": "platform"}


def drift(address, before, after, kind=None, name=None, module=None, mode="managed", actions=("update",), **extra):
    kind, name = kind or address.split(".")[-2].split("]")[-1], name or address.split(".")[-1].split("[")[0]
    entry = {"address": address, "mode": mode, "type": kind, "name": name, "change": {"actions": list(actions),
             "before": before, "after": after, **extra}}
    return entry | ({"module_address": module} if module else {})


# Shaped like `terraform show -json` of a refresh-only plan of the example after hand changes (aws 3.39.0).
PLAN = {
    "configuration": {
        "root_module": {
            "resources": [
                {"address": "aws_vpc.main", "mode": "managed", "expressions": {"cidr_block": {}, "tags": {},
                                                                              "enable_dns_hostnames": {}}},
                {"address": "aws_route_table.public", "mode": "managed", "expressions": {"vpc_id": {}, "tags": {}}},
                {"address": "aws_subnet.public", "mode": "managed", "expressions": {"cidr_block": {}}},
                {"address": "data.aws_availability_zones.available", "mode": "data", "expressions": {}},
            ],
            "module_calls": {
                "db": {"module": {"resources": [
                    {"address": "aws_db_instance.main", "mode": "managed", "expressions": {"password": {}}},
                ]}},
            },
        }
    },
    "resource_drift": [
        drift("aws_vpc.main",
              {"cidr_block": "10.20.0.0/16", "enable_dns_hostnames": True, "tags": TAGS, "tags_all": TAGS},
              {"cidr_block": "10.20.0.0/16", "enable_dns_hostnames": False,
               "tags": TAGS | {"Owner": "mallory-value"}, "tags_all": TAGS | {"Owner": "mallory-value"}}),
        # The inline route list the module leaves to AWS (its routes are aws_route resources): not drift.
        drift("aws_route_table.public", {"route": [], "tags": {"Name": "rt"}},
              {"route": [{"cidr_block": "0.0.0.0/0"}], "tags": {"Name": "rt"}}),
        drift("aws_subnet.public[1]", {"cidr_block": "10.20.16.0/20"}, None, actions=("delete",)),
        drift("module.db[0].aws_db_instance.main", {"password": "old-pass-123"}, {"password": "new-pass-456"},
              kind="aws_db_instance", name="main", module="module.db[0]",
              before_sensitive={"password": True}, after_sensitive={"password": True}),
        drift("data.aws_availability_zones.available", {"names": ["a"]}, {"names": ["a", "b"]}, mode="data"),
    ],
}


def test_drift_names_declared_resources_and_attributes_never_values():
    report = drift_report(PLAN)
    found = {r.address: (r.attributes, r.deleted) for r in report.resources}
    assert found == {
        "aws_vpc.main": (("enable_dns_hostnames", "tags.Owner", "tags_all.Owner"), False),
        "aws_subnet.public[1]": ((), True),
        "module.db[0].aws_db_instance.main": (("password",), False),
    }
    assert [(r.address, r.attributes) for r in report.undeclared] == [("aws_route_table.public", ("route",))]
    check = DriftCheck("app", "staging", DriftStatus.DRIFT, report, plan_id="p1")
    shown = [check.line(), issue_body(check, "http://ui/runs/r1"), report_markdown(check, "http://ui/runs/r1")]
    for value in ("mallory-value", "old-pass-123", "new-pass-456", "10.20.16.0/20"):
        assert not any(value in text for text in shown), value
    assert check.line().startswith("staging|app: drift: 3 resources changed outside the manager: aws_vpc.main:")
    assert "(deleted outside Terraform)" in shown[1] and "`aws_route_table.public`" not in shown[1]
    assert "`aws_route_table.public`" in shown[2]  # in the run's report, as not drift


def test_a_refresh_that_only_moves_what_the_module_leaves_to_aws_is_no_drift():
    plan = dict(PLAN, resource_drift=[PLAN["resource_drift"][1]])
    report = drift_report(plan)
    assert not report.drifted and report.summary() == "no drift" and report.undeclared


def test_the_issue_body_escapes_what_an_aws_user_wrote_and_masks_secrets():
    register_secret("ghp_issue_secret_0123")
    try:
        key = "x` @acme/admins [link](http://evil) | ghp_issue_secret_0123"
        plan = {"resource_drift": [drift("aws_vpc.main", {"tags": {}}, {"tags": {key: "v"}})]}
        check = DriftCheck("app", "staging", DriftStatus.DRIFT, drift_report(plan))
        body = issue_body(check, "http://ui/runs/r1")
    finally:
        forget_registered_secrets()
    assert body.splitlines()[0] == issue_marker("app", "staging") == "<!-- manager-pipeline drift app/staging -->"
    assert "ghp_issue_secret_0123" not in body
    row = next(line for line in body.splitlines() if line.startswith("| `aws_vpc.main`"))
    assert row.count(" | ") == 1  # the key's `|` cannot add a column; it sits inside a code span
    assert "``tags.x` @acme/admins [link](http://evil) \\| ***``" in row


# --- the issue on GitHub, through the outbox ------------------------------------------------------


class FakeIssues:
    """GitHub's issues as GitHubClient answers them; ``refuse``: the status of every answer."""

    def __init__(self, refuse: int | None = None):
        self.issues: dict[int, dict] = {1: {"title": "bug", "body": "unrelated", "state": "open"}}
        self.comments: list[tuple[int, str]] = []
        self.writes = 0
        self.refuse = refuse

    def open_issues(self, repo):
        if self.refuse:
            raise GitHubError(f"open issues of {repo}", self.refuse, "Issues are disabled for this repo")
        return [Issue(n, i["title"], i["body"], "manager") for n, i in self.issues.items() if i["state"] == "open"]

    def own_login(self):
        return "manager"

    def create_issue(self, repo, title, body):
        self.writes += 1
        number = max(self.issues) + 1
        self.issues[number] = {"title": title, "body": body, "state": "open"}
        return number

    def edit_issue(self, repo, number, body=None, state=None):
        self.writes += 1
        self.issues[number].update({k: v for k, v in (("body", body), ("state", state)) if v is not None})

    def create_issue_comment(self, repo, number, body):
        self.writes += 1
        self.comments.append((number, body))


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    return Outbox(f"sqlite:///{tmp_path / 'outbox.db'}")


def found(source="app", resources=1) -> DriftCheck:
    changed = [drift(f"aws_vpc.v{n}", {"tags": {}}, {"tags": {"Owner": "x"}}) for n in range(resources)]
    return DriftCheck(source, "staging", DriftStatus.DRIFT, drift_report({"resource_drift": changed}))


def test_drift_opens_one_issue_updates_it_and_a_later_check_closes_it(outbox):
    github = FakeIssues()
    outbox.add([drift_issue.opened("acme/web", found(), "http://ui/runs/r1")])
    outbox.add([drift_issue.opened("acme/web", found(resources=2), "http://ui/runs/r2")])
    outbox.add([drift_issue.opened("acme/web", found(resources=2), "http://ui/runs/r2")])  # redelivered: no write
    outbox.add([drift_issue.opened("acme/web", found(source="api"), "http://ui/runs/r3")])  # its own issue
    assert len(deliver(outbox, github).delivered) == 4
    opened = {n: i for n, i in github.issues.items() if "manager-pipeline drift" in i["body"]}
    assert len(opened) == 2 and github.writes == 3
    app = next(n for n, i in opened.items() if issue_marker("app", "staging") in i["body"])
    assert "2 resources changed" in github.issues[app]["body"] and "/runs/r2" in github.issues[app]["body"]
    assert github.issues[app]["title"] == "Infrastructure drift: app / staging"

    outbox.add([drift_issue.resolved("acme/web", "app", "staging", "a drift check found none", "http://ui/runs/r4")])
    outbox.add([drift_issue.resolved("acme/web", "app", "staging", "a drift check found none", "http://ui/runs/r4")])
    assert len(deliver(outbox, github).delivered) == 2
    assert github.issues[app]["state"] == "closed" and github.issues[1]["state"] == "open"
    assert [(n, "found none" in body) for n, body in github.comments] == [(app, True)]  # closed once


def test_a_repository_with_issues_off_takes_nothing_and_holds_nothing_back(outbox):
    outbox.add([drift_issue.opened("acme/web", found(), "http://ui/runs/r1")])
    assert deliver(outbox, FakeIssues(refuse=410)).delivered and not outbox.undelivered()
    outbox.add([drift_issue.opened("acme/web", found(), "http://ui/runs/r1")])
    assert deliver(outbox, FakeIssues(refuse=502)).failed  # an outage is tried again


def test_an_apply_closes_the_partitions_drift_issue():
    event = DispatchEvent("app", "staging", sha="a" * 40)
    applied = items_for(Outcome(event, OutcomeStatus.APPLIED, "Applied."), "acme/web", "a" * 40, None, "r", "http://u")
    assert applied[-1].kind == drift_issue.RESOLVED
    assert applied[-1].payload["marker"] == issue_marker("app", "staging")
    planned = items_for(Outcome(event, OutcomeStatus.PLAN_ONLY, "Plan."), "acme/web", "a" * 40, 3, "r", "http://u")
    assert drift_issue.RESOLVED not in [item.kind for item in planned]


# --- manager.yaml: when the checks run ---------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("0 6 * * *", None),
        ("*/15 2-4 1,15 JAN-MAR mon-fri", None),
        ("@daily", None),
        ("0 6 * *", "expected a cron expression of 5 fields"),
        ("60 6 * * *", "minute `60`"),
        ("0 6 * * 8", "day of week `8`"),
        ("0 6-2 * * *", "runs backwards"),
        ("0 */0 * * *", "hour `*/0`"),
    ],
)
def test_cron_expressions_are_checked_when_manager_yaml_is_read(cron, problem):
    said = cron_problem(cron)
    assert (said is None) if problem is None else (problem in said)


MANAGER_YAML = """
sources:
  - {name: web, repo: acme/web}
  - {name: api, repo: acme/api}
  - {name: batch, repo: acme/batch, environments: [staging]}
environments:
  staging: {auto_apply: true, drift_schedule: "30 5 * * *"}
  production: {approvers: [alice], drift_schedule: off}
  eu-west: {auto_apply: true}
"""


def test_each_environment_gets_its_schedule_daily_by_default_off_when_asked(tmp_path):
    config = parse_config(MANAGER_YAML, tmp_path / "manager.yaml")
    schedules = sorted((s.name, s.cron_schedule) for s in drift_schedules(config))
    assert [cron for _, cron in schedules] == ["0 6 * * *", "30 5 * * *"]
    # Dagster names take letters, digits and `_`: a suffix keeps `eu-west` apart from an `eu_west`.
    assert schedules[0][0].startswith("drift_eu_west_") and schedules[1][0] == "drift_staging"
    with pytest.raises(ConfigError, match=r"manager.yaml:7:\d+: environments.staging.drift_schedule: minute `61`"):
        parse_config(MANAGER_YAML.replace("30 5", "61 5"), tmp_path / "manager.yaml")


def test_a_schedule_asks_for_the_partitions_with_state_only(tmp_path):
    config_path = tmp_path / "manager.yaml"
    config_path.write_text(MANAGER_YAML)
    [staging] = [s for s in drift_schedules(parse_config(MANAGER_YAML, config_path))
                 if s.name == "drift_staging"]
    database = f"sqlite:///{tmp_path / 'manager.db'}"
    store = Plans(database, tmp_path / "plans")
    plan_file = tmp_path / "plan.tfplan"
    plan_file.write_bytes(b"plan")

    def applied(source: str, destroy: bool = False) -> None:
        facts = PlanFacts(source=source, environment="staging", sha=None, branch="main", variables_digest="v",
                          module_digest="m", terraform_version="1.15.5", has_changes=True, summary=PlanSummary(),
                          destroy=destroy)
        plan = store.save(plan_file, "text", facts)
        for state in (PlanState.APPROVED, PlanState.APPLYING, PlanState.APPLIED):
            assert store.transition(plan.plan_id, state)

    applied("web")
    applied("api")
    applied("api", destroy=True)  # destroyed since: nothing to check
    store.save(plan_file, "text", PlanFacts(source="batch", environment="staging", sha=None, branch="main",
                                            variables_digest="v", module_digest="m", terraform_version="1.15.5",
                                            has_changes=True, summary=PlanSummary()))  # planned, never applied
    aws = AwsResource(mode="aws", region="us-east-1", state_bucket="b", manager_home=str(tmp_path))
    resources = {
        "manager": ManagerConfigResource(config_path=str(config_path)),
        "plans": PlanStoreResource(root=str(tmp_path / "plans"), database_url=database, aws=aws),
    }
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(SOURCE, ["web", "api", "batch"])
        tick = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
        with build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=tick) as context:
            requests = staging(context)
    assert [(r.partition_key, r.tags[KIND_TAG], r.tags[TRIGGER_TAG]) for r in requests] == [
        ("staging|web", "drift", "schedule")
    ]
    assert staging.job_name == DRIFT_JOB
