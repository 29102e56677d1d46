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
import uuid

import pytest

from tests.integration.test_slack import slack  # noqa: F401 - the https Slack stand-in fixture
from tests.support import EXAMPLE_VARIABLES

pytestmark = pytest.mark.integration


def fragments(secret: str, size: int = 12) -> list[str]:
    """The secret and every run of ``size`` of its characters: a cut secret leaks as a prefix too."""
    return [secret] + [secret[i : i + size] for i in range(len(secret) - size + 1)]


def test_no_seeded_secret_reaches_any_sink(manager, github_standin, github_source, slack):  # noqa: F811
    repo, token = github_source["name"], github_source["token"]
    hook_path = f"/services/T0/B0/{uuid.uuid4().hex}"
    hook = f"{slack['url']}{hook_path}"
    webhook_secret = f"whsec-{uuid.uuid4().hex}"
    aws_secret = f"awsS3cr3t{uuid.uuid4().hex}"
    manager.env |= {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_THROTTLE": "off",
        "GITHUB_WEBHOOK_SECRET": webhook_secret,
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "SSL_CERT_FILE": str(slack["ca"]),
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
