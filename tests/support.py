"""Helpers shared by the tests (fixtures are in tests/conftest.py; test modules import from here only)."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from dagster import DagsterInstance, build_sensor_context

from manager_pipeline.config.file import load_config
from manager_pipeline.errors import ManagerError
from manager_pipeline.defs.code_server import serve_code_location
from manager_pipeline.defs.jobs import DEPLOY_JOB
from manager_pipeline.defs.location import build_definitions
from manager_pipeline.defs.partitions import partition_key, sync_source_partitions
from manager_pipeline.events import PLAN_ONLY_TAG, DispatchEvent, sign_author
from manager_pipeline.defs.instance import open_instance
from manager_pipeline.aws.standin import endpoint_answers, free_port, moto_server_command
from manager_pipeline.settings import Settings
from manager_pipeline.terraform.provider_server import die_with_parent
from manager_pipeline.signing import run_tag_key

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_VARIABLES = REPO / "examples" / "source_monorepo" / "infra" / "variables.yml"
BIN = Path(sys.executable).parent
# Environment variables a manager set-up sets itself; the test process's own are left out.
SCOPED_PREFIXES = ("MANAGER_", "DAGSTER_", "AWS_", "TF_")
SECRET_OUTPUT = 'output "admin_password" {\n  value     = "s3cr3t-${var.project_name}-pw"\n  sensitive = true\n}\n'


# --- processes and waiting ----------------------------------------------------------------

_cli_server: subprocess.Popen | None = None
_cli_socket: Path | None = None


def _cli_forkserver() -> Path | None:
    """This test process's `manager-pipeline` fork server (tests/cli_forkserver.py), started on first use and
    stopped by its own pid when the process ends; None where it cannot run (then each command is a process)."""
    global _cli_server, _cli_socket
    if os.environ.get("MANAGER_TESTS_CLI_FORKSERVER") == "0":
        return None
    if _cli_server is not None and _cli_server.poll() is None:
        return _cli_socket
    folder = Path(tempfile.mkdtemp(prefix="mp-cli-"))
    os.chmod(folder, 0o700)
    _cli_socket = folder / "cli.sock"
    _cli_server = subprocess.Popen(
        [str(BIN / "python"), "-m", "tests.cli_forkserver", str(_cli_socket)],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith(SCOPED_PREFIXES)} | {"PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # Its stop is this process's atexit; should that not run (a worker that ends otherwise), it ends with it.
        preexec_fn=die_with_parent,
    )
    if _cli_server.stdout.readline().strip() != b"ready":
        _cli_server.kill()
        _cli_server = None
        return None
    atexit.register(shutil.rmtree, folder, True)  # after the server's stop (atexit runs last in, first)
    atexit.register(stop_process, _cli_server, 10)
    return _cli_socket


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`manager-pipeline *args` in ``cwd`` with exactly ``env``: a fork of the tests' fork server (the CLI's
    imports paid once; the command is a fresh process of its own), else a process started for it."""
    argv = [str(BIN / "manager-pipeline"), *args]
    path = _cli_forkserver()
    if path is not None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            conn.settimeout(timeout)
            reader = conn.makefile("rb")
            pid = json.loads(reader.readline())["pid"]
            conn.sendall((json.dumps({"argv": argv, "env": dict(env), "cwd": str(cwd)}) + "\n").encode())
            try:
                answer = json.loads(reader.readline())
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(argv, timeout) from None
            return subprocess.CompletedProcess(argv, answer["code"], answer["stdout"], answer["stderr"])
        finally:
            conn.close()
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)



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


def wait_until(condition, timeout: float, what: str, log: Path | None = None, interval: float = 0.2):
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


@contextmanager
def moto_server(folder: Path) -> Iterator[int]:
    """A moto server (the AWS stand-in) on a free port of 127.0.0.1, its log in ``folder``; stopped by its pid."""
    port = free_port()
    log_path = folder / "moto.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            moto_server_command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is not None or endpoint_answers(url, timeout=0.5), 30, "the moto server", log_path
        )
        assert process.poll() is None, log_path.read_text(errors="replace")
        yield port
    finally:
        stop_process(process)


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until ``url`` answers, failing with the service's log if its process ends first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)


@contextmanager
def serving_ui(manager: Manager, argv: list[str], log_name: str, timeout: float = 90) -> Iterator[str]:
    """A Dagster UI served by ``argv`` (the webserver, or `manager-pipeline ui`) for ``manager``; its base URL once
    it answers, with the first-visit tour dismissed; stopped by its own process id afterwards."""
    log_path = manager.root / log_name
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, cwd=manager.root, env=manager.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            port = argv[argv.index("--port" if "--port" in argv else "-p") + 1]
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/server_info", process, log_path, timeout=timeout)
            request = urllib.request.Request(
                f"{base}/graphql",
                data=json.dumps({"query": "mutation { setNuxSeen }"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=30).close()
            yield base
        finally:
            stop_process(process, timeout=30)


@contextmanager
def serving_code_location(root: Path, env: dict[str, str], log: Path, timeout: float = 300) -> Iterator[Path]:
    """The manager's code location on a code server of its own (defs/code_server.py, as `ui` and docs/scale.md
    run it), its output in ``log``, and ``root``'s workspace.yaml pointed at it; stopped by its own process id."""
    with open(log, "wb") as out:
        try:
            process, served = serve_code_location(root, env, stdout=out, timeout=timeout)
        except ManagerError as exc:
            raise AssertionError(f"{exc}\n{log.read_text(errors='replace')}") from None
    workspace = root / "workspace.yaml"
    managed = workspace.read_text()
    try:
        workspace.write_text(served.read_text())
        yield served
    finally:
        workspace.write_text(managed)
        stop_process(process, timeout=30)
        shutil.rmtree(served.parent, ignore_errors=True)


# --- source repositories ------------------------------------------------------------------


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


# --- a manager set-up ---------------------------------------------------------------------


@dataclass
class Manager:
    """A manager set-up of its own: manager.yaml, home, Dagster instance, state bucket."""

    root: Path
    env: dict[str, str]
    bucket: str
    endpoint: str | None
    # The GitHub stand-in that vouches for approvers' tokens (approve_as), when a test has one.
    github: GitHubStandIn | None = None
    # The module its manager.yaml plans in place of terraform/ (a test module's TERRAFORM_DIR: LIGHT_MODULE).
    module: Path | None = None

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
        if self.module is not None:
            text = text.replace(f"terraform_dir: {REPO / 'terraform'}", f"terraform_dir: {self.module}")
        self.config_path.write_text(text)

    def use_module(self, module: Path) -> None:
        """Plan ``module`` in place of terraform/ from now on (a test where what terraform/ builds is not under test)."""
        self.module = module
        self.write_config(self.config_path.read_text())

    def client(self, service: str):
        """A boto3 client of the AWS stand-in the manager talks to."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def s3(self):
        return self.client("s3")

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_cli(list(args), env=self.env, cwd=self.root, timeout=timeout)


# terraform/ builds a VPC and more; LIGHT_MODULE builds nothing in AWS (tests/modules/light/main.tf): for the
# tests of what the manager decides around Terraform, where what the module builds is not under test.
LIGHT_MODULE = REPO / "tests" / "modules" / "light"
# One VPC as terraform/ declares its main one (tests/modules/vpc/main.tf): for the tests of what the manager
# does with a resource in AWS (drift), where the rest of terraform/ is not under test.
VPC_MODULE = REPO / "tests" / "modules" / "vpc"


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


# --- running the deploy job ---------------------------------------------------------------

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def run_partition(
    manager: Manager,
    source: str,
    environment: str,
    instance: DagsterInstance | None = None,
    extra_tags: dict[str, str] | None = None,
    **event,
):
    """Execute the deploy job in process for one partition, as a dispatch event with ``event``'s fields."""
    settings = manager.settings()
    instance = instance or open_instance(settings)
    sync_source_partitions(instance, load_config(settings.config_path))
    job = build_definitions(settings).resolve_job_def(DEPLOY_JOB)
    # Signed as the CLI signs what it launches (an author given here is the manager's word); ``extra_tags`` as a
    # launchpad sets them, unsigned.
    own = DispatchEvent(source=source, environment=environment, trigger="test", **event).to_tags()
    tags = sign_author(own, run_tag_key(settings)) | (extra_tags or {})
    return job.execute_in_process(
        partition_key=partition_key(source, environment),
        instance=instance,
        tags=tags,
        run_config=QUIET,
        raise_on_error=False,
    )


def sensor_tick(manager: Manager, name: str, *resources: str, instance: DagsterInstance | None = None):
    """One evaluation of sensor ``name`` on the manager's instance, as the daemon does it, given the named resources."""
    definitions = build_definitions(manager.settings())
    sensor = definitions.resolve_sensor_def(name)
    # Every sensor reads manager.yaml through the `manager` resource.
    given = {key: definitions.resources[key] for key in ("manager", *resources)}
    with build_sensor_context(instance=instance or open_instance(manager.settings()), resources=given) as context:
        return sensor(context)


def approval_requests(manager: Manager) -> list:
    """One tick of the approval sensor: the apply runs it asks for."""
    return list(getattr(sensor_tick(manager, "approve_plans", "plans", "github"), "run_requests", None) or [])


def plan_only_backfill(root: Path, partitions: list[str]) -> list[str]:
    """The command an operator types for a plan-only backfill of the deploy job over ``partitions``
    (keys such as `staging|alpha`), with the workspace in ``root``."""
    return [
        str(BIN / "dagster"),
        "job",
        "backfill",
        "-w",
        str(root / "workspace.yaml"),
        "-j",
        DEPLOY_JOB,
        "--partitions",
        ",".join(partitions),
        "--noprompt",
        "--tags",
        json.dumps({PLAN_ONLY_TAG: "true"}),
    ]


def dagster_launch(manager: Manager, partition: str, **tags: str) -> subprocess.Popen:
    """Submit a deploy run to the instance's queue the way `dagster job launch` does (not waiting)."""
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


# --- the GitHub stand-in (tests/github_standin.py) ----------------------------------------


class GitHubStandIn:
    """Client of the GitHub stand-in's control endpoints."""

    def __init__(self, url: str):
        self.url = url
        # Conformance violations already reported to a test (the stand-in keeps them all).
        self.violations_seen = 0

    def _call(self, method: str, path: str, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_standin/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def token(self, token: str, login: str | None = None) -> None:
        self._call("POST", "tokens", {"token": token, "login": login})

    def team(self, org: str, slug: str, members: list[str]) -> None:
        self._call("POST", "teams", {"org": org, "slug": slug, "members": members})

    def app(self, app_id: int, public_key: str, installation_id: int, slug: str = "manager-app") -> None:
        app = {"app_id": app_id, "public_key": public_key, "installation_id": installation_id, "slug": slug}
        self._call("POST", "app", app)

    def comment_by(self, full_name: str, issue: int, user: str, body: str) -> int:
        """A comment ``user`` wrote on issue or pull request ``issue`` (not the manager)."""
        return self._call("POST", f"repos/{full_name}/comments", {"issue": issue, "user": user, "body": body})["id"]

    def issue_by(self, full_name: str, user: str, title: str, body: str) -> int:
        """An open issue ``user`` opened (not the manager)."""
        return self._call("POST", f"repos/{full_name}/issues", {"user": user, "title": title, "body": body})["number"]

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

    def answers_or_ended(self, process: subprocess.Popen) -> bool:
        """Whether the stand-in answers, or its ``process`` has ended (for wait_until: stop waiting)."""
        if process.poll() is not None:
            return True
        try:
            self.requests()
        except OSError:
            return False
        return True

    def state(self, full_name: str) -> dict:
        return self._call("GET", f"repos/{full_name}")

    def conformance(self) -> dict:
        """What the stand-in checked against GitHub's description (tests/github_spec/): counts, and
        every request or reply that did not conform."""
        return self._call("GET", "conformance")

    def new_violations(self) -> list[dict]:
        """Violations since the last call: each names its operation and the JSON path of the bad field."""
        violations = self.conformance()["violations"]
        new, self.violations_seen = violations[self.violations_seen :], len(violations)
        return new


def describe_violations(violations: list[dict]) -> str:
    lines = [
        f"  {v['operation'] or '(no operation)'} ({v['method']} {v['path']}): {v['where']} {v['pointer']}: "
        f"{v['message']}"
        for v in violations
    ]
    return (
        f"the GitHub stand-in saw {len(violations)} request(s) or reply(ies) that GitHub's REST description "
        "(tests/github_spec/rest-operations.json) does not allow:\n" + "\n".join(lines)
    )


# --- webhook deliveries (tests/unit/test_intake.py and tests/integration/test_intake.py) --

WEBHOOK_SECRET = "webhook-secret-for-tests-4f9a"
INTAKE_CONFIG = """
sources:
  - {name: web, repo: acme/web}
  - {name: api, repo: acme/mono, variables_file: services/api/infra/variables.yml}
  - {name: batch, repo: acme/mono, variables_file: services/batch/infra/variables.yml, environments: [staging]}
environments:
  staging: {auto_apply: true, apply_branches: [main]}
  production: {auto_apply: false, apply_branches: [main, release]}
"""


def push_payload(repo="acme/web", files=("infra/variables.yml",), branch="main", sha=None, **extra) -> bytes:
    """The body of a GitHub `push` webhook delivery, shaped as GitHub documents it (``extra`` overrides)."""
    after = sha or hashlib.sha1(repr((repo, files, branch)).encode()).hexdigest()
    owner = repo.split("/")[0]
    payload = {
        "ref": f"refs/heads/{branch}",
        "before": hashlib.sha1(f"before-{after}".encode()).hexdigest(),
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{repo}/compare/{after[:12]}",
        "commits": [
            {"id": after, "message": "change", "added": [], "removed": [], "modified": list(files)},
        ],
        "head_commit": {"id": after, "message": "change", "added": [], "removed": [], "modified": list(files)},
        "repository": {"full_name": repo, "name": repo.split("/")[-1], "owner": {"login": owner}},
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "type": "User"},
        **extra,
    }
    return json.dumps(payload).encode()


def pull_request_payload(
    repo="acme/web", number=12, action="opened", sha="a" * 40, head_repo=None, association="MEMBER", author="dev"
) -> bytes:
    """The body of a GitHub `pull_request` webhook delivery (``head_repo``: the fork it comes from)."""
    return json.dumps(
        {
            "action": action,
            "number": number,
            "repository": {"full_name": repo, "name": repo.split("/")[-1]},
            "pull_request": {
                "number": number,
                "head": {"sha": sha, "ref": "feature", "repo": {"full_name": head_repo or repo}},
                "base": {"ref": "main", "repo": {"full_name": repo}},
                "user": {"login": author},
                "author_association": association,
            },
            "sender": {"login": author, "type": "User"},
        }
    ).encode()


def plan_comment_payload(repo="acme/web", number=12, body="/plan", association="MEMBER", login="maintainer",
                         comment_id=9001, action="created") -> bytes:
    """The body of a GitHub `issue_comment` delivery: a comment on pull request ``number``."""
    return json.dumps(
        {
            "action": action,
            "issue": {"number": number, "pull_request": {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}},
            "comment": {"id": comment_id, "body": body, "user": {"login": login}, "author_association": association},
            "repository": {"full_name": repo},
            "sender": {"login": login, "type": "User"},
        }
    ).encode()


def github_time(at: float | None = None) -> str:
    """A time as GitHub writes it (whole seconds, UTC; a review's `submitted_at`); default: now."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def approve_as(manager, login: str, plan_id: str, *args: str, github: GitHubStandIn | None = None):
    """`manager-pipeline approve` by ``login``, who proves it with a GitHub token of their own that the
    stand-in ``github`` (default: ``manager.github``) vouches for (console approvals name who runs them)."""
    github = github or manager.github
    token = f"ghp_approver_{login}_{uuid.uuid4().hex[:8]}"
    github.token(token, login)
    env = dict(manager.env, MANAGER_APPROVER_TOKEN=token, GITHUB_API_URL=github.url, GITHUB_THROTTLE="off")
    return run_cli(["approve", plan_id, *args], env=env, cwd=manager.root, timeout=300)


def review_payload(repo="acme/web", number=12, state="approved", commit="a" * 40, login="alice", review_id=7001,
                   action="submitted") -> bytes:
    """The body of a GitHub `pull_request_review` delivery: a review of pull request ``number`` at ``commit``."""
    return json.dumps(
        {
            "action": action,
            "review": {"id": review_id, "user": {"login": login}, "state": state, "commit_id": commit,
                       "body": "ship it", "author_association": "MEMBER"},
            "pull_request": {"number": number, "head": {"sha": commit, "ref": "feature", "repo": {"full_name": repo}}},
            "repository": {"full_name": repo},
            "sender": {"login": login, "type": "User"},
        }
    ).encode()
