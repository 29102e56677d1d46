"""Fixtures: real services on 127.0.0.1 with free ports, each stopped by its own pid."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from manager_pipeline.local_aws import endpoint_answers, free_port, moto_server_command
from manager_pipeline.settings import Settings
from manager_pipeline.terraform import ensure_toolchain

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_VARIABLES = REPO / "examples" / "source_monorepo" / "infra" / "variables.yml"
BIN = Path(sys.executable).parent


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a fixture's service (and what it started) through its own process group."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> str:
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen(moto_server_command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not endpoint_answers(url, timeout=0.5):
        assert process.poll() is None and time.monotonic() < deadline, "moto server did not start"
        time.sleep(0.1)
    yield url
    stop_process(process)
    log.close()


@pytest.fixture(scope="session")
def tools_dir() -> Path:
    """The machine's shared toolchain folder (built by `make env`, else on first use here)."""
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "TERRAFORM_BIN"})
    ensure_toolchain(settings.tools_dir)
    return settings.tools_dir


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until ``url`` answers, failing with the service's log if its process ends first."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)


def dagster_launch(manager, partition: str, **tags: str) -> subprocess.Popen:
    """Submit a deploy run to the instance's queue the way `dagster job launch` does (not waiting)."""
    import json

    environment, source = partition.split("|")
    run_tags = {
        "dagster/partition": partition,
        "dagster/partition/environment": environment,
        "dagster/partition/source": source,
        **tags,
    }
    return subprocess.Popen(
        [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(manager.root / "workspace.yaml"),
            "-j",
            "deploy",
            "--tags",
            json.dumps(run_tags),
        ],
        cwd=manager.root,
        env=manager.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_source_repo(folder: Path, variables: str, branch: str = "main") -> Path:
    (folder / "infra").mkdir(parents=True)
    (folder / "infra" / "variables.yml").write_text(variables)
    git(folder, "init", "-q", "-b", branch)
    git(folder, "-c", "user.email=dev@example.com", "-c", "user.name=dev", "add", "-A")
    git(folder, "-c", "user.email=dev@example.com", "-c", "user.name=dev", "commit", "-qm", "infra")
    return folder


def commit_all(folder: Path, message: str) -> str:
    git(folder, "-c", "user.email=dev@example.com", "-c", "user.name=dev", "commit", "-qam", message)
    return git(folder, "rev-parse", "HEAD")


@dataclass
class Manager:
    """A manager set-up of its own: manager.yaml, home, Dagster instance, state bucket."""

    root: Path
    env: dict[str, str]
    bucket: str
    endpoint: str | None

    @property
    def config_path(self) -> Path:
        return self.root / "manager.yaml"

    @property
    def home(self) -> Path:
        return Path(self.env["MANAGER_HOME"])

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def write_config(self, text: str) -> None:
        self.config_path.write_text(text)

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "manager-pipeline"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def manager_config(sources: dict[str, Path], staging_auto_apply: bool = True) -> str:
    lines = ["sources:"]
    for name, path in sources.items():
        lines += [f"  - name: {name}", f"    path: {path}"]
    lines += [
        "environments:",
        "  staging:",
        f"    auto_apply: {'true' if staging_auto_apply else 'false'}",
        "    apply_branches: [main]",
        "  production:",
        "    auto_apply: false",
        "    apply_branches: [main]",
        "    approvers: [alice, bob]",
        f"terraform_dir: {REPO / 'terraform'}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def source_repo(tmp_path) -> Path:
    return make_source_repo(tmp_path / "source", EXAMPLE_VARIABLES.read_text())


def build_manager(root: Path, endpoint: str, tools_dir: Path, sources: dict[str, Path], **config) -> Manager:
    """A manager set-up in ``root`` whose environment points at ``endpoint`` and a new bucket."""
    root.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", root / "dagster.yaml")
    shutil.copyfile(REPO / "workspace.yaml", root / "workspace.yaml")
    bucket = f"state-{uuid.uuid4().hex[:12]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith(SCOPED_PREFIXES)} | {
        "MANAGER_CONFIG": str(root / "manager.yaml"),
        "MANAGER_HOME": str(root / ".manager"),
        "DAGSTER_HOME": str(root / ".manager" / "dagster"),
        "MANAGER_TOOLS_DIR": str(tools_dir),
        "AWS_ENDPOINT_URL": endpoint,
        "TF_STATE_BUCKET": bucket,
        "PYTHONPATH": str(REPO),
    }
    setup = Manager(root=root, env=env, bucket=bucket, endpoint=endpoint)
    setup.write_config(manager_config(sources, **config))
    return setup


SCOPED_PREFIXES = ("MANAGER_", "DAGSTER_", "AWS_", "TF_")


@pytest.fixture
def manager(tmp_path, moto_endpoint, tools_dir, source_repo, monkeypatch) -> Manager:
    """A manager whose one source, `app`, is a fresh git repo with the example variables."""
    setup = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, {"app": source_repo})
    for key in list(os.environ):
        if key.startswith(SCOPED_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in setup.env.items():
        monkeypatch.setenv(key, value)
    return setup


class GitHubStandIn:
    """Client of the GitHub stand-in's control endpoints."""

    def __init__(self, url: str):
        self.url = url

    def _call(self, method: str, path: str, payload=None):
        import json as _json
        import urllib.request

        data = None if payload is None else _json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_standin/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return _json.loads(body) if body else None

    def token(self, token: str, login: str | None = None) -> None:
        self._call("POST", "tokens", {"token": token, "login": login})

    def team(self, org: str, slug: str, members: list[str]) -> None:
        self._call("POST", "teams", {"org": org, "slug": slug, "members": members})

    def app(self, app_id: int, public_key: str, installation_id: int) -> None:
        self._call("POST", "app", {"app_id": app_id, "public_key": public_key, "installation_id": installation_id})

    def repo(self, full_name: str, commits: dict, branches: dict, pulls: list | None = None, **extra) -> None:
        self._call(
            "POST",
            "repos",
            {"full_name": full_name, "commits": commits, "branches": branches, "pulls": pulls or [], **extra},
        )

    def update(
        self, full_name: str, commits: dict | None = None, branches: dict | None = None, pulls=None, **extra
    ) -> None:
        payload = {"commits": commits or {}, "branches": branches or {}, **extra}
        if pulls is not None:
            payload["pulls"] = pulls
        self._call("POST", f"repos/{full_name}/update", payload)

    def faults(self, *faults: dict) -> None:
        self._call("POST", "faults", {"faults": list(faults)})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def requests(self) -> list[dict]:
        return self._call("GET", "requests")

    def state(self, full_name: str) -> dict:
        return self._call("GET", f"repos/{full_name}")


@pytest.fixture(scope="session")
def github_standin(tmp_path_factory) -> GitHubStandIn:
    port = free_port()
    log = open(tmp_path_factory.mktemp("github") / "standin.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.github_standin", "--port", str(port)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    standin = GitHubStandIn(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            standin.requests()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "GitHub stand-in did not start"
            time.sleep(0.1)
    yield standin
    stop_process(process)
    log.close()


SECRET_OUTPUT = 'output "admin_password" {\n  value     = "s3cr3t-${var.project_name}-pw"\n  sensitive = true\n}\n'


@pytest.fixture
def github_source(manager, github_standin, monkeypatch, tmp_path):
    """The manager's source `app` lives on the GitHub stand-in, with PR #7 on its head commit."""
    name = f"acme/web-{uuid.uuid4().hex[:8]}"
    token = f"ghp_{uuid.uuid4().hex}"
    head = hashlib.sha1(name.encode()).hexdigest()
    github_standin.token(token)
    github_standin.repo(
        name,
        commits={head: {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()}},
        branches={"main": head},
        pulls=[{"number": 7, "head_sha": head}],
    )
    module = tmp_path / "terraform"
    shutil.copytree(REPO / "terraform", module, ignore=shutil.ignore_patterns(".terraform*"))
    (module / "secret_outputs.tf").write_text(SECRET_OUTPUT)
    manager.write_config(
        f"sources:\n  - name: app\n    repo: {name}\n"
        "environments:\n  staging: {auto_apply: true}\n  production: {auto_apply: false}\n"
        f"terraform_dir: {module}\n"
    )
    env = {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_TIMEOUT": "2",
        "GITHUB_RETRIES": "2",
        "GITHUB_RETRY_BACKOFF": "0.05",
        "GITHUB_THROTTLE": "off",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield {"name": name, "token": token, "head": head}
    github_standin.clear_faults()
