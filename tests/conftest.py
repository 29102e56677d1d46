"""Fixtures for tests/unit and tests/integration: real services on 127.0.0.1 with free ports, each
stopped by its own pid. Helpers and constants live in tests/support.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from manager_pipeline.local_aws import free_port
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
    make_source_repo,
    moto_server,
    stop_process,
    wait_until,
)


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
def manager(tmp_path, moto_endpoint, tools_dir, source_repo, monkeypatch) -> Manager:
    """A manager whose one source, `app`, is a fresh git repo with the example variables."""
    setup = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, {"app": source_repo})
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
    finally:
        stop_process(process)


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


# The modules that take longest, longest first: pytest-xdist hands modules to workers in collection
# order, so starting these first keeps one of them from being the last thing a run waits for.
LONGEST_FIRST = (
    "test_daemon.py",
    "test_sections_compute.py",
    "test_faults.py",
    "test_approval_flow.py",
    "test_celery.py",
    "test_sections_example.py",
    "test_sections_database.py",
    "test_sections_data.py",
    "test_github_runs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each module keeps its order
