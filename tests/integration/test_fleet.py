"""The blast radius of a module change: every partition planned with a new module in one run, one
summary with the right counts, one comment on the manager repository's pull request."""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid

from manager_pipeline.fleet.summary import MARKER
from manager_pipeline.defs.instance import open_instance
from manager_pipeline.plans import PlanState
from manager_pipeline.plans.store import Plans
from tests.support import EXAMPLE_VARIABLES, REPO, build_manager, make_source_repo, run_partition


def changed_module(folder):
    """The manager's module with one resource replaced (the public route) and one changed (the VPC's tags)."""
    module = shutil.copytree(REPO / "terraform", folder, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    networking = module / "networking.tf"
    text = networking.read_text()
    assert 'destination_cidr_block = "0.0.0.0/0"' in text and 'Name = "${local.name}-vpc"' in text
    text = text.replace('destination_cidr_block = "0.0.0.0/0"', 'destination_cidr_block = "0.0.0.0/1"', 1)
    text = text.replace('Name = "${local.name}-vpc"', 'Name = "${local.name}-vpc"\n    Preview = "yes"', 1)
    networking.write_text(text)
    return module


def test_a_module_change_over_three_sources_gives_one_summary_with_the_right_counts(
    tmp_path, moto_endpoint, tools_dir, github_standin
):
    variables = EXAMPLE_VARIABLES.read_text()
    sources = {
        "s1": make_source_repo(tmp_path / "s1", variables.replace("project_name: demo-app", "project_name: fleet-one")),
        "s2": make_source_repo(tmp_path / "s2", variables.replace("project_name: demo-app", "project_name: fleet-two")),
        # Broken: the summary lists it as failed, with the first line of its error.
        "s3": make_source_repo(tmp_path / "s3", "project_name: [unclosed\n"),
    }
    manager = build_manager(tmp_path / "manager", moto_endpoint, tools_dir, sources)
    # s1/staging has state: the new module replaces and changes some of what it holds.
    applied = run_partition(manager, "s1", "staging")
    assert applied.success

    repo = f"acme/manager-{uuid.uuid4().hex[:8]}"
    token = f"ghp_{uuid.uuid4().hex}"
    head = hashlib.sha1(repo.encode()).hexdigest()
    github_standin.token(token)
    github_standin.repo(repo, commits={head: {}}, branches={"main": head}, pulls=[{"number": 5, "head_sha": head}])
    manager.env |= {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_THROTTLE": "off",
        "GITHUB_RETRIES": "1",
        "MANAGER_REPOSITORY": repo,  # the summary goes on the manager's own pull requests only
    }

    module = changed_module(tmp_path / "feature-terraform")
    done = manager.cli("preview", "--module", str(module), "--env", "staging", "--comment", f"{repo}#5")
    # A failed partition makes the command fail, so a pull request's check shows it.
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    table = [line.split("|") for line in out.splitlines() if re.match(r"\| s[0-9] \|", line)]
    rows = {cells[1].strip(): [c.strip() for c in cells[3:6]] for cells in table}
    assert rows == {"s1": ["1", "1", "1"], "s2": ["18", "0", "0"], "s3": ["-", "-", "-"]}, out + done.stderr
    assert "3 partitions planned: 2 with changes (1 destroying), 1 failed" in out
    # Every preview was checked by the policy engine: its column counts what the module change newly fails.
    policy = {cells[1].strip(): cells[7].strip() for cells in table}
    assert policy["s1"].isdigit() and policy["s2"].isdigit() and policy["s3"] == "-", out
    # Failures first, then destroys and replacements, then other changes.
    assert [cells[1].strip() for cells in table] == ["s3", "s1", "s2"]
    assert "- **s1/staging**: replaces `aws_route.public_internet`" in out
    failed_line = next(line for line in out.splitlines() if line.startswith("- **s3/staging**"))
    assert "is not valid" in failed_line and "variables.yml:2:1" in failed_line, failed_line

    # Every plan is kept as a preview: visible, never applicable; nothing was applied.
    settings = manager.settings()
    store = Plans(settings.database_url, settings.plans_dir)
    previews = [p for p in store.list_plans() if p.state == PlanState.PREVIEW and p.environment == "staging"]
    assert sorted(p.source for p in previews) == ["s1", "s2"]
    assert {p.summary.line() for p in previews if p.source == "s1"} == {"1 to add, 1 to change, 1 to destroy"}

    # One comment on the manager's pull request; a second preview edits it.
    def summaries():
        comments = github_standin.state(repo)["issue_comments"]
        return [c for c in (comments.values() if isinstance(comments, dict) else comments) if MARKER in c["body"]]

    assert len(summaries()) == 1 and "s3" in summaries()[0]["body"]
    again = manager.cli("preview", "--module", str(module), "--env", "staging", "--source", "s2", "--comment", f"{repo}#5")
    assert again.returncode == 0, again.stdout + again.stderr
    [comment] = summaries()
    assert "1 partitions planned" in comment["body"] and "| s3 |" not in comment["body"]

    # Each partition's plan is an observation of the `terraform_plan` asset, under its partition.
    instance = open_instance(settings)
    from dagster import AssetKey

    records = instance.fetch_observations(AssetKey("terraform_plan"), limit=100).records
    partitions = {r.event_log_entry.dagster_event.event_specific_data.asset_observation.partition for r in records}
    assert {"staging|s1", "staging|s2", "staging|s3"} <= partitions
