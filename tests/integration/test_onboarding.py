"""Onboarding over the wire: `manager-pipeline add-source` / `remove-source` processes against the GitHub
stand-in, then a plan-only run of the new source and a signed push to a receiver process for it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.receiver import PATH
from manager_pipeline.intake.webhooks import signature_for
from manager_pipeline.aws.standin import free_port
from manager_pipeline.onboarding.webhook import WEBHOOK_EVENTS
from tests.support import BIN, EXAMPLE_VARIABLES, LIGHT_MODULE, REPO, push_payload, stop_process, wait_for_http

pytestmark = pytest.mark.integration

CONFIG = """# The manager's sources.
sources:
  # Already here.
  - name: web
    repo: {web}

  # - name: later
  #   repo: acme/later

environments:
  staging: {{auto_apply: true, apply_branches: [main]}}
  production: {{auto_apply: false, apply_branches: [main], approvers: [alice]}}
terraform_dir: {terraform}
"""


def _repo(github_standin, prefix: str, files: dict | None = None, branch: str = "main") -> dict:
    name = f"acme/{prefix}-{uuid.uuid4().hex[:8]}"
    head = hashlib.sha1(name.encode()).hexdigest()
    files = {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()} if files is None else files
    github_standin.repo(name, commits={head: files}, branches={branch: head}, default_branch=branch)
    return {"name": name, "head": head}


class Setup:
    """A manager.yaml of its own and the environment of the CLI processes (GitHub: the stand-in)."""

    def __init__(self, root, github_standin, env: dict[str, str]):
        self.root, self.standin = root, github_standin
        self.token = f"ghp_{uuid.uuid4().hex}"
        github_standin.token(self.token)
        self.web = _repo(github_standin, "web")
        self.config = root / "manager.yaml"
        self.config.write_text(CONFIG.format(web=self.web["name"], terraform=LIGHT_MODULE))
        self.env = {k: v for k, v in env.items() if not k.startswith(("MANAGER_", "DAGSTER_", "GITHUB_"))} | {
            "MANAGER_CONFIG": str(self.config),
            "MANAGER_HOME": str(root / ".manager"),
            "PYTHONPATH": str(REPO),
            "GITHUB_API_URL": github_standin.url,
            "GITHUB_TOKEN": self.token,
            "GITHUB_TIMEOUT": "3",
            "GITHUB_RETRIES": "1",
            "GITHUB_RETRY_BACKOFF": "0.05",
            "GITHUB_THROTTLE": "off",
        }

    def cli(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "manager-pipeline"), *args],
            cwd=self.root,
            env=self.env | (env or {}),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def hooks(self, repo: str) -> list[dict]:
        request = urllib.request.Request(
            f"{self.standin.url}/repos/{repo}/hooks", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def created_secret(self, repo: str) -> str:
        """The secret the stand-in was given for the hook (GitHub never shows it back)."""
        posts = [r for r in self.standin.requests() if r["method"] == "POST" and r["path"] == f"/repos/{repo}/hooks"]
        return json.loads(posts[-1]["body"])["config"]["secret"]


@pytest.fixture
def setup(tmp_path, github_standin):
    root = tmp_path / "onboard"
    root.mkdir()
    yield Setup(root, github_standin, dict(os.environ))
    github_standin.clear_faults()


def _exported(stdout: str, name: str) -> str:
    found = re.findall(rf"^  export {name}=([0-9a-f]+)$", stdout, re.M)
    assert len(found) == 1, stdout
    return found[0]


def test_add_source_registers_it_creates_the_hook_and_its_deliveries_are_queued(setup, github_standin, tmp_path):
    shop = _repo(github_standin, "shop")
    port = free_port()
    before = setup.config.read_text()
    done = setup.cli("add-source", "shop", "--repo", shop["name"], "--webhook-url", f"http://127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # The hook on GitHub: the receiver's URL, JSON, the four events, the new secret.
    [hook] = setup.hooks(shop["name"])
    assert hook["config"]["url"] == f"http://127.0.0.1:{port}{PATH}" and hook["config"]["content_type"] == "json"
    assert sorted(hook["events"]) == sorted(WEBHOOK_EVENTS) and hook["active"] is True
    secret = _exported(done.stdout, "SHOP_WEBHOOK_SECRET")
    assert setup.created_secret(shop["name"]) == secret and len(secret) == 64
    # manager.yaml: the one new block, its comments and the other source as they were; no secret in it.
    text = setup.config.read_text()
    block = f"  - name: shop\n    repo: {shop['name']}\n    webhook_secret_env: SHOP_WEBHOOK_SECRET\n"
    assert text == before.replace("  #   repo: acme/later\n", f"  #   repo: acme/later\n\n{block}")
    assert secret not in text
    listed = setup.cli("sources")
    assert listed.returncode == 0 and f"shop                 github:{shop['name']}" in listed.stdout

    # A push to the new repository, signed with its own secret, reaches a receiver holding it.
    env = {k: v for k, v in setup.env.items() if not k.startswith("GITHUB_")} | {"SHOP_WEBHOOK_SECRET": secret}
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
            cwd=setup.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process, log)
        body = push_payload(repo=shop["name"], sha=shop["head"])

        def post(signed_with: str, delivery: str):
            request = urllib.request.Request(
                hook["config"]["url"],
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": delivery,
                    "X-Hub-Signature-256": signature_for(signed_with.encode(), body),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, {}

        assert post("not-the-secret", "d-0")[0] == 401
        status, answer = post(secret, "d-1")
        assert status == 202 and answer["status"] == "queued" and answer["sources"] == ["shop"]
        inbox = Inbox(f"sqlite:///{setup.root / '.manager' / 'dagster' / 'manager.db'}")
        assert inbox.states() == {"received": 1}
    finally:
        stop_process(process)
    assert secret not in log.read_text()


def test_a_new_source_plans_right_away(manager, github_standin, setup):
    """The issue's end to end: registered by add-source, planned by `run --plan-only` from GitHub's head."""
    shop = _repo(github_standin, "shop")
    env = manager.env | {k: v for k, v in setup.env.items() if k.startswith("GITHUB_")}
    manager.config_path.write_text(CONFIG.format(web=setup.web["name"], terraform=LIGHT_MODULE))
    done = subprocess.run(
        [
            str(BIN / "manager-pipeline"),
            "add-source",
            "shop",
            "--repo",
            shop["name"],
            "--environments",
            "staging",
            "--no-webhook",
        ],
        cwd=manager.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no webhook (--no-webhook)" in done.stdout and setup.hooks(shop["name"]) == []
    run = subprocess.run(
        [str(BIN / "manager-pipeline"), "run", "--source", "shop", "--env", "staging", "--plan-only"],
        cwd=manager.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    assert "finished: plan-only" in run.stdout, run.stdout
    reads = [r for r in github_standin.requests() if r["path"] == f"/repos/{shop['name']}/contents/infra/variables.yml"]
    assert {r["query"] for r in reads} == {f"ref={shop['head']}"}


@pytest.mark.parametrize("case", ["unknown-repo", "no-variables-file", "name-taken", "broken-manager-yaml"])
def test_bad_input_exits_non_zero_with_one_line_and_leaves_manager_yaml_byte_identical(setup, github_standin, case):
    repo = _repo(github_standin, "shop", files={"README.md": "no infra yet\n"} if case == "no-variables-file" else None)
    name = "web" if case == "name-taken" else "shop"
    if case == "unknown-repo":
        repo = {"name": f"acme/missing-{uuid.uuid4().hex[:8]}"}
    if case == "broken-manager-yaml":
        setup.config.write_text(setup.config.read_text().replace("    repo: ", "   repo: ", 1))
    before = setup.config.read_bytes()
    done = setup.cli("add-source", name, "--repo", repo["name"], "--webhook-url", "https://manager.example.com")
    assert done.returncode == 2 and done.stdout.count("\n") <= 1
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    expected = {
        "unknown-repo": f"unknown repository `{repo['name']}` on GitHub",
        "no-variables-file": f"{repo['name']} has no infra/variables.yml at the head of `main`",
        "name-taken": "source `web` is already registered (manager.yaml:4)",
        "broken-manager-yaml": "manager.yaml:5:",
    }[case]
    assert expected in done.stderr
    assert setup.config.read_bytes() == before
    assert [p.name for p in setup.root.iterdir() if p.name.startswith(".manager.yaml")] == []
    if case != "unknown-repo":
        assert setup.hooks(repo["name"]) == []


def test_a_token_that_may_not_manage_hooks_gets_what_to_paste(setup, github_standin):
    shop = _repo(github_standin, "shop")
    github_standin.faults({"path": f"^/repos/{shop['name']}/hooks$", "status": 404, "message": "Not Found"})
    done = setup.cli("add-source", "shop", "--repo", shop["name"], "--webhook-url", "https://manager.example.com")
    assert done.returncode == 0, done.stderr
    assert f"may not manage webhooks of {shop['name']} (GitHub answered 404)" in done.stdout
    for line in (
        f"https://github.example/{shop['name']}/settings/hooks/new",
        f"Payload URL:       https://manager.example.com{PATH}",
        "Content type:      application/json",
        "Secret:            the value of SHOP_WEBHOOK_SECRET",
        "Events:            Let me select individual events: Pushes, Pull requests, Issue comments, Pull request "
        "reviews",
    ):
        assert line in done.stdout
    _exported(done.stdout, "SHOP_WEBHOOK_SECRET")
    assert "webhook_secret_env: SHOP_WEBHOOK_SECRET" in setup.config.read_text()
    github_standin.clear_faults()
    assert setup.hooks(shop["name"]) == []


def test_remove_source_refuses_without_force_and_then_removes_only_the_entry(setup, github_standin):
    shop = _repo(github_standin, "shop")
    original = setup.config.read_text()
    url = "https://manager.example.com/webhooks/github"
    assert setup.cli("add-source", "shop", "--repo", shop["name"], "--webhook-url", url).returncode == 0
    added = setup.config.read_bytes()

    refused = setup.cli("remove-source", "shop")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "may still have infrastructure" in refused.stderr and "`manager-pipeline destroy shop staging`" in (
        refused.stderr
    )
    assert setup.config.read_bytes() == added

    removed = setup.cli("remove-source", "shop", "--force")
    assert removed.returncode == 0, removed.stderr
    assert "state objects are kept: s3://" in removed.stdout and "shop/staging/terraform.tfstate" in removed.stdout
    assert setup.config.read_text() == original

    # Onboarding it again finds the hook GitHub still has: no second one, and no new secret.
    again = setup.cli("add-source", "shop", "--repo", shop["name"], "--webhook-url", url)
    assert again.returncode == 0, again.stderr
    assert "already exists" in again.stdout and "not creating a second" in again.stdout
    assert "export" not in again.stdout and "webhook_secret_env" not in setup.config.read_text()
    assert len(setup.hooks(shop["name"])) == 1
