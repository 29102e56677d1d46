"""One scan over every sink: the secrets the manager holds or learns appear in none of them.

Seeded: the GitHub token, the webhook secret, an AWS secret key in the manager's environment, and a
source's Slack webhook (a secret in a repository file, which the manager learns at run time). Runs:
a pull request plan, an apply of main with a Slack notification, and a failed run whose variables
copy the webhook into a tag (refused at the tag, by its name, never by its value). Sinks: every file the manager keeps (the Dagster event log, run storage and
tags, the plan store, reports, working directories, the outbox and inbox databases), the CLI's output,
every request the GitHub stand-in received (headers but the token's own Authorization, and bodies),
and every message Slack received.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest

from tests.integration.test_slack import slack  # noqa: F401 - the https Slack stand-in fixture
from tests.support import EXAMPLE_VARIABLES, REPO

pytestmark = pytest.mark.integration


IGNORED = shutil.ignore_patterns(".terraform*", "*.tfstate*")


def fragments(secret: str, size: int = 12) -> list[str]:
    """The secret and every run of ``size`` of its characters: a cut secret leaks as a prefix too."""
    return [secret] + [secret[i : i + size] for i in range(len(secret) - size + 1)]


def test_no_seeded_secret_reaches_any_sink(manager, github_standin, github_source, slack):  # noqa: F811
    repo, token = github_source["name"], github_source["token"]
    hook_path = f"/services/T0/B0/{uuid.uuid4().hex}"
    hook = f"https://hooks.slack.com{hook_path}"  # reached at the stand-in (MANAGER_SLACK_URL)
    webhook_secret = f"whsec-{uuid.uuid4().hex}"
    aws_secret = f"awsS3cr3t{uuid.uuid4().hex}"
    manager.env |= {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_THROTTLE": "off",
        "GITHUB_WEBHOOK_SECRET": webhook_secret,
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "SSL_CERT_FILE": str(slack["ca"]),
        "MANAGER_SLACK_URL": slack["url"],
    }
    variables = EXAMPLE_VARIABLES.read_text() + f"notifications:\n  slack_webhook: {hook}\n  on_success: true\n"
    head = hashlib.sha1(f"scan-{repo}".encode()).hexdigest()
    broken = hashlib.sha1(f"scan-broken-{repo}".encode()).hexdigest()
    quoting = variables.replace("tags:\n", f"tags:\n  Hook: {hook}\n", 1)
    github_standin.repo(
        repo,
        commits={head: {"infra/variables.yml": variables}, broken: {"infra/variables.yml": quoting}},
        branches={"main": head},
        pulls=[{"number": 7, "head_sha": head}, {"number": 8, "head_sha": broken}],
    )
    outputs = []
    planned = manager.cli("run", "--source", "app", "--env", "staging", "--sha", head, "--pr", "7")
    applied = manager.cli("run", "--source", "app", "--env", "staging", "--sha", head, "--branch", "main")
    failed = manager.cli("run", "--source", "app", "--env", "staging", "--sha", broken, "--pr", "8")
    for done in (planned, applied, failed):
        outputs.append(done.stdout + done.stderr)
    assert planned.returncode == 0 and applied.returncode == 0, outputs
    assert failed.returncode == 1 and "tags.Hook: holds the value of notifications.slack_webhook" in failed.stderr
    assert "Applied plan" in applied.stdout and slack["posts"], "the scan needs a Slack message to scan"
    state = github_standin.state(repo)
    assert any(c["issue"] == 7 for c in state["issue_comments"]) and state["statuses"]

    seeds = {
        "GitHub token": token,
        "webhook secret": webhook_secret,
        "AWS secret key": aws_secret,
        "Slack webhook": hook_path.rsplit("/", 1)[1],
    }
    found: list[str] = []

    def scan(sink: str, data: bytes) -> None:
        for name, secret in seeds.items():
            if any(piece.encode() in data for piece in fragments(secret)):
                found.append(f"{name} in {sink}")

    files = [path for path in manager.root.rglob("*") if path.is_file()]
    assert any(path.name.endswith(".db") for path in files)  # the event log and the manager's database
    # The policy stage read both plans' JSON (values in clear) and kept only its verdicts: scanned below too.
    assert len([path for path in files if path.name == "policy.json"]) >= 2
    for path in files:
        scan(str(path.relative_to(manager.root)), path.read_bytes())
    for index, text in enumerate(outputs):
        scan(f"CLI output of run {index + 1}", text.encode())
    for request in github_standin.requests():
        # The token's one place is the Authorization header of the requests it authenticates.
        shown = {key: value for key, value in request.items() if key != "authorization"}
        scan(f"GitHub request {request['method']} {request['path']}", json.dumps(shown).encode())
    for post in slack["posts"]:
        scan("a Slack message", json.dumps(post["body"]).encode())
    sinks = len(files) + len(outputs) + len(github_standin.requests()) + len(slack["posts"])
    print(f"secret scan: {len(seeds)} seeded secrets, {sinks} sinks scanned, {len(found)} found")
    assert found == []


def test_the_fleet_planner_never_runs_a_module_from_a_folder_named_in_run_config(manager, tmp_path):
    """Issue 19 #3: HCL in any folder of the host (a path source's checkout) reads a host file that holds a
    secret; a launchpad run of `plan_fleet` naming that folder must never plan it, nor reach it by a ref."""
    from dagster import DagsterInvalidConfigError

    from manager_pipeline.defs.fleet import FLEET_JOB
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.plans import Plans
    from manager_pipeline.terraform.workdir import module_digest

    secret = f"hostS3cr3t{uuid.uuid4().hex}"
    host_file = tmp_path / "host-credentials"
    host_file.write_text(secret)
    evil = Path(shutil.copytree(REPO / "terraform", tmp_path / "checkout" / "infra", ignore=IGNORED))
    (evil / "exfiltrate.tf").write_text(f'output "exfiltrated" {{\n  value = file("{host_file}")\n}}\n')
    settings = manager.settings()
    job = build_definitions(settings).resolve_job_def(FLEET_JOB)
    instance = open_instance(settings)

    def launch(config: dict):
        """A launchpad run: run config only."""
        op_config = {"environments": ["staging"], **config}
        return job.execute_in_process(
            instance=instance, run_config={"ops": {"plan_partitions": {"config": op_config}}}, raise_on_error=False
        )

    outcomes = []
    for config in ({"module_dir": str(evil)}, {"ref": str(evil)}, {"ref": f"HEAD:{evil}"}, {"ref": "--output=/tmp/x"}):
        try:
            result = launch(config)
        except DagsterInvalidConfigError as exc:
            outcomes.append(("refused at launch", str(exc).splitlines()[0]))
            continue
        outcomes.append(("ran", result.success))
        if result.success:
            planned = result.output_for_node("plan_partitions", "summary")
            assert secret not in planned

    digests = {plan.module_digest for plan in Plans(settings.database_url, settings.plans_dir).list_plans()}
    assert module_digest(evil) not in digests, outcomes
    leaked = [str(path) for path in manager.root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]
    assert leaked == [], outcomes
    assert outcomes[0][0] == "refused at launch" and all(outcome != ("ran", True) for outcome in outcomes), outcomes
