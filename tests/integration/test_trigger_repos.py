"""A trigger repository end to end: signed deliveries to the receiver, runs under a real dagster-daemon,
real Terraform against the AWS stand-in, statuses on both repositories of the GitHub stand-in."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from manager_pipeline.defs.instance import open_instance
from manager_pipeline.intake.webhooks import signature_for
from manager_pipeline.aws.standin import free_port
from tests.support import (
    BIN,
    EXAMPLE_VARIABLES,
    LIGHT_MODULE,
    approve_as,
    build_manager,
    push_payload,
    run_partition,
    stop_process,
    wait_for_http,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.daemon]

ORG_SECRET = "trigger-tests-org-secret"
APP_SECRET = "trigger-tests-web-app-secret"
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def post(port: int, event: str, delivery: str, body: bytes, secret: str | None) -> tuple[int, dict]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = signature_for(secret.encode(), body)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/github", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def finished_run(instance: DagsterInstance, delivery: str):
    runs = instance.get_runs(RunsFilter(tags={".dagster/manager/delivery": delivery}))
    return runs[0] if len(runs) == 1 and runs[0].status in TERMINAL else None


def said(github_standin, repo: str, commit: str, context: str) -> list[str]:
    statuses = github_standin.state(repo)["statuses"]
    return [f"{s['state']}: {s['description']}" for s in statuses if s["sha"] == commit and s["context"] == context]


def trigger_setup(tmp_path, moto_endpoint, tools_dir, github_standin, environments: str):
    """A manager whose source `net` lives in an infra repository triggered by an application repository,
    both on the GitHub stand-in; the application's `main` at one commit and its tag v1.0.0 at another."""
    infra, app = f"acme/infra-{uuid.uuid4().hex[:8]}", f"acme/web-app-{uuid.uuid4().hex[:8]}"
    commits = {"infra": sha(infra), "app": sha(app), "tagged": sha(f"{app}-v1")}
    token = f"ghp_{uuid.uuid4().hex}"
    github_standin.token(token)
    github_standin.repo(infra, commits={commits["infra"]: {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()}},
                        branches={"main": commits["infra"]})
    # The application repository holds no variables at all.
    github_standin.repo(
        app,
        commits={commits["app"]: {"src/app.py": "print(1)"}, commits["tagged"]: {"src/app.py": "print(2)"}},
        branches={"main": commits["app"]},
        tags={"v1.0.0": commits["tagged"]},
    )
    manager = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, {})
    manager.write_config(
        f"sources:\n  - name: net\n    repo: {infra}\n    environments: {environments}\n    triggers:\n"
        f"      - {{repo: {app}, branches: [main], tags: ['v*'], webhook_secret_env: WEB_APP_HOOK_SECRET}}\n"
        "environments:\n  staging: {auto_apply: true}\n  production: {auto_apply: false, approvers: [alice]}\n"
        f"terraform_dir: {LIGHT_MODULE}\n"
    )
    manager.env |= {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_THROTTLE": "off",
        "GITHUB_TIMEOUT": "3",
        "GITHUB_WEBHOOK_SECRET": ORG_SECRET,
        "WEB_APP_HOOK_SECRET": APP_SECRET,
    }
    manager.github = github_standin  # vouches for approvers' tokens
    open_instance(manager.settings())
    return manager, infra, app, commits


def test_a_push_to_a_trigger_repository_runs_its_infra_source(tmp_path, moto_endpoint, tools_dir, github_standin):
    manager, infra, app, commits = trigger_setup(tmp_path, moto_endpoint, tools_dir, github_standin, "[staging]")
    port = free_port()
    daemon_log, receiver_log = tmp_path / "daemon.log", tmp_path / "receiver.log"
    with open(daemon_log, "wb") as daemon_out, open(receiver_log, "wb") as receiver_out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(manager.root / "workspace.yaml")],
            cwd=manager.root, env=manager.env, stdout=daemon_out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        receiver = subprocess.Popen(
            [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
            cwd=manager.root, env=manager.env, stdout=receiver_out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", receiver, receiver_log)
        push = push_payload(app, files=("src/app.py",), sha=commits["app"])
        # Unsigned or forged: refused before anything is stored.
        assert post(port, "push", "unsigned", push, None)[0] == 401
        assert post(port, "push", "forged", push, "not-the-secret")[0] == 401
        started = time.monotonic()
        assert post(port, "push", "app-push", push, APP_SECRET) == (
            202, {"status": "queued", "inbox_id": 1, "sources": ["net"]}
        )
        instance = DagsterInstance.from_config(str(manager.dagster_home))
        run = wait_until(lambda: finished_run(instance, "app-push"), 150, "the triggered run", daemon_log, 0.5)
        print(f"trigger push -> run finished: {time.monotonic() - started:.1f} s")
        assert run.status == DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == "staging|net"
        # The app commit on the run; the infra repository read at its default branch head.
        assert run.tags[".dagster/manager/trigger-repo"] == app and run.tags[".dagster/manager/trigger-sha"] == commits["app"]
        assert run.tags[".dagster/manager/trigger-ref"] == "refs/heads/main"
        assert (run.tags[".dagster/manager/sha"], run.tags[".dagster/manager/branch"]) == (commits["infra"], "main")
        state = manager.s3().list_objects_v2(Bucket=manager.bucket, Prefix="net/staging/")
        assert state.get("KeyCount", 0) == 1  # applied: the state is there

        # Feedback to both: the infra commit as for any run, the app commit per infra source.
        app_said = wait_until(
            lambda: (s := said(github_standin, app, commits["app"], "manager-pipeline/net/staging"))[-1:]
            and s[-1].startswith("success") and s,
            30, "the app commit's last status", daemon_log,
        )
        assert app_said[0].startswith("pending: Queued") and app_said[1].startswith("pending: Planning"), app_said
        assert app_said[-1].startswith("success: Applied plan"), app_said
        infra_said = said(github_standin, infra, commits["infra"], "manager-pipeline/staging")
        assert infra_said[0].startswith("pending: Planning") and infra_said[-1].startswith("success: Applied plan")
        links = [s["target_url"] for s in github_standin.state(app)["statuses"] if "Queued" not in s["description"]]
        assert links and all(link.endswith(f"/runs/{run.run_id}") for link in links)
    finally:
        stop_process(receiver)
        stop_process(daemon)


def test_a_releases_plan_approved_later_reports_its_apply_to_the_tagged_commit(
    tmp_path, moto_endpoint, tools_dir, github_standin, monkeypatch
):
    manager, infra, app, commits = trigger_setup(tmp_path, moto_endpoint, tools_dir, github_standin, "[production]")
    for key, value in manager.env.items():
        monkeypatch.setenv(key, value)
    # As the dispatch sensor tags a published release's run: the tag, not its commit (the run asks GitHub).
    trigger = {".dagster/manager/trigger-repo": app, ".dagster/manager/trigger-ref": "refs/tags/v1.0.0"}
    result = run_partition(manager, "net", "production", author="rel-bot", extra_tags=trigger)
    assert result.success
    plan_id = result.output_for_node("plan").plan_id
    context = "manager-pipeline/net/production"
    assert result.dagster_run.tags[".dagster/manager/trigger-sha"] == commits["tagged"]
    waiting = said(github_standin, app, commits["tagged"], context)
    assert waiting[0] == "pending: Planning production…"
    assert waiting[-1].startswith(f"pending: Awaiting approval: plan {plan_id}")
    assert approve_as(manager, "alice", plan_id, "--reason", "release v1.0.0").returncode == 0
    applied = manager.cli("apply", plan_id)
    assert applied.returncode == 0, applied.stderr
    # The apply run carries the planning run's trigger: the tagged commit hears how it ended.
    assert said(github_standin, app, commits["tagged"], context)[-1].startswith(f"success: Applied plan {plan_id}")
    assert said(github_standin, infra, commits["infra"], "manager-pipeline/production")[-1].startswith(
        f"success: Applied plan {plan_id}"
    )
