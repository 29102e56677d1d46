"""Fixtures for tests/unit and tests/integration: real services on 127.0.0.1 with free ports, each
stopped by its own pid. Helpers and constants live in tests/support.py."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from manager_pipeline.aws.standin import free_port
from manager_pipeline.settings import Settings
from manager_pipeline.terraform import ensure_toolchain
from tests.support import (
    EXAMPLE_VARIABLES,
    REPO,
    SCOPED_PREFIXES,
    SECRET_OUTPUT,
    GitHubStandIn,
    Manager,
    build_manager,
    describe_violations,
    make_source_repo,
    moto_server,
    stop_process,
    wait_until,
)

# A suite started in the background by a non-interactive shell inherits SIGTERM, SIGINT and SIGQUIT ignored, and
# every process it starts would too: stop_process's SIGTERM then went unheard and each service waited out its
# 15 s before the SIGKILL (a worker's last teardown took 16 s). They are taken as from a terminal again, here,
# before the workers start.
for _signal in (signal.SIGTERM, signal.SIGQUIT):
    if signal.getsignal(_signal) == signal.SIG_IGN:
        signal.signal(_signal, signal.SIG_DFL)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Which module each worker takes next: the costliest first (tests/scheduling.py).
pytest_plugins = ("tests.scheduling",)


def pytest_collection_finish(session):
    """What the collection imported (Dagster, boto3, the manager, every test module) lives as long as the
    worker: frozen, the collector's full passes over the hundreds of in-process runs to come skip it
    (tests/unit: 25 s of CPU -> 21 s)."""
    gc.freeze()


def pytest_sessionfinish(session):
    """The policy engine's server (started by the first scan, shared by every worker) ends with the run
    of the tests, by its own pid, in the process that started the workers."""
    if hasattr(session.config, "workerinput"):
        return
    from manager_pipeline.policy import installed_checkov
    from manager_pipeline.policy.server import stop

    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "TERRAFORM_BIN"})
    checkov = installed_checkov(settings.tools_dir)
    if checkov is not None:
        stop(checkov)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> str:
    """One moto server (the AWS stand-in) for the session; each manager set-up gets a bucket of its own."""
    with moto_server(tmp_path_factory.mktemp("moto")) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def tools_dir() -> Path:
    """The machine's shared toolchain folder (built by `make env`, else on first use here)."""
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "TERRAFORM_BIN"})
    ensure_toolchain(settings.tools_dir)
    return settings.tools_dir


@pytest.fixture(scope="session")
def source_repo_template(tmp_path_factory) -> Path:
    """A git repository with the example variables, made once; tests get copies of it."""
    return make_source_repo(tmp_path_factory.mktemp("template") / "source", EXAMPLE_VARIABLES.read_text())


@pytest.fixture
def source_repo(tmp_path, source_repo_template) -> Path:
    """A git repository of the test's own (a copy of the template: the test may commit to it)."""
    return Path(shutil.copytree(source_repo_template, tmp_path / "source", symlinks=True))


@pytest.fixture
def manager(request, tmp_path, moto_endpoint, tools_dir, source_repo, monkeypatch) -> Manager:
    """A manager whose one source, `app`, is a fresh git repo with the example variables; it plans
    terraform/, or the test module's ``TERRAFORM_DIR`` where what terraform/ builds is not under test."""
    setup = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, {"app": source_repo})
    module = getattr(request.module, "TERRAFORM_DIR", None)
    if module is not None:
        setup.use_module(module)
    for key in list(os.environ):
        if key.startswith(SCOPED_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in setup.env.items():
        monkeypatch.setenv(key, value)
    return setup


@pytest.fixture(scope="session")
def github_standin(tmp_path_factory) -> GitHubStandIn:
    """The GitHub stand-in (`python -m tests.github_standin`), one for the session."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("github") / "standin.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.github_standin", "--port", str(port)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    standin = GitHubStandIn(f"http://127.0.0.1:{port}")

    try:
        wait_until(lambda: standin.answers_or_ended(process), 30, "the GitHub stand-in", log_path, interval=0.1)
        assert process.poll() is None, log_path.read_text(errors="replace")
        yield standin
        # Checked against GitHub's description: the counts for the run's summary, and any violation
        # that came after the last test's call (a background process, a teardown) fails here.
        report = standin.conformance()
        (log_path.parent / CONFORMANCE_REPORT).write_text(json.dumps(report, indent=1))
        late = report["violations"][standin.violations_seen :]
        assert not late, describe_violations(late)
    finally:
        stop_process(process)


CONFORMANCE_REPORT = "github-conformance.json"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A test that made the GitHub stand-in see a request or reply GitHub's description does not
    allow fails, naming the operation and the JSON path of the bad field."""
    outcome = yield
    standin = getattr(item, "funcargs", {}).get("github_standin")
    if not isinstance(standin, GitHubStandIn):
        return
    violations = standin.new_violations()
    if violations:
        message = describe_violations(violations)
        if outcome.exception is not None:
            message += f"\n(and the test failed: {type(outcome.exception).__name__}: {outcome.exception})"
        outcome.force_exception(pytest.fail.Exception(message, pytrace=False))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """One line: how many requests and replies the GitHub stand-ins checked (every xdist worker's)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None or hasattr(config, "workerinput"):
        return
    try:
        root = factory.getbasetemp()
    except OSError:
        return
    reports = []
    # The session's stand-in folder (github0/, not the githubcurrent link), or each xdist worker's.
    for pattern in (f"github[0-9]*/{CONFORMANCE_REPORT}", f"popen-gw*/github[0-9]*/{CONFORMANCE_REPORT}"):
        try:
            reports += [json.loads(path.read_text()) for path in root.glob(pattern)]
        except OSError:  # another pytest session pruning old base folders under the same temp root
            continue
    if not reports:
        return
    operations = {op for report in reports for op in report["operations"]}
    source = reports[0]["source"]
    terminalreporter.write_line(
        f"GitHub conformance ({source['package']}@{source['version']}): "
        f"{sum(r['requests_checked'] for r in reports)} requests and {sum(r['replies_checked'] for r in reports)} "
        f"replies checked, {len(operations)} of {reports[0]['operations_vendored']} vendored operations used, "
        f"violations recorded: {sum(len(r['violations']) for r in reports)} "
        f"(each fails its test; reports: {root}/[popen-gw*/]github*/{CONFORMANCE_REPORT})"
    )


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
    # terraform/, or the test module's TERRAFORM_DIR (the manager fixture's module).
    shutil.copytree(manager.module or REPO / "terraform", module, ignore=shutil.ignore_patterns(".terraform*"))
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
