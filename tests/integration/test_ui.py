"""What a person sees: the Dagster UI, rendered by a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

from manager_pipeline.defs.instance import prepare_home
from manager_pipeline.aws.standin import free_port
from tests.support import BIN, LIGHT_MODULE, run_partition, serving_ui

pytestmark = pytest.mark.integration
# What the UI shows of a run is under test, not what terraform/ builds.
TERRAFORM_DIR = LIGHT_MODULE

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
    "--virtual-time-budget=20000",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed for UI tests; `make env` installs it"
    return found


def render(url: str, screenshot=None) -> str:
    """The page's DOM once its scripts have run (the virtual time budget), and its picture from the same
    load when ``screenshot`` names a file: one Chromium does both."""
    with tempfile.TemporaryDirectory() as profile:
        args = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        if screenshot:
            args.append(f"--screenshot={screenshot}")
        done = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    return done.stdout


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def webserver(manager):
    prepare_home(manager.settings())
    argv = [str(BIN / "dagster-webserver"), "-w", str(manager.root / "workspace.yaml"), "-h", "127.0.0.1"]
    with serving_ui(manager, [*argv, "-p", str(free_port())], "webserver.log") as base:
        yield base


def test_the_run_and_its_op_graph_are_visible_in_the_ui(manager, webserver, tmp_path):
    result = run_partition(manager, "app", "staging", plan_only=True)
    assert result.success

    run_page = render(f"{webserver}/runs/{result.run_id}", screenshot=tmp_path / "run.png")
    assert "staging|app" in run_page
    assert "Success" in run_page
    assert "plan-only" in run_page

    location = "manager_pipeline.defs.definitions"
    job_page = render(f"{webserver}/locations/{location}/jobs/deploy", screenshot=tmp_path / "job.png")
    for op_name in ("fetch_variables", "validate", "init", "plan", "approval_gate", "apply", "feedback"):
        assert op_name in job_page
    assert (tmp_path / "run.png").stat().st_size > 10_000
