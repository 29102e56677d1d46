"""The fleet planner's pure parts: which partitions, the blast-radius summary, the module sensor."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context

from manager_pipeline.defs.resources import ManagerConfigResource

from manager_pipeline.config.file import parse_config
from manager_pipeline.defs.fleet import module_change_sensor
from manager_pipeline.errors import ManagerError
from manager_pipeline.fleet import summary as blast_radius
from manager_pipeline.fleet.planner import Partition, PartitionPlan, _first_line, fleet_partitions
from manager_pipeline.terraform import PlanSummary
from tests.support import REPO

CONFIG = """
sources:
  - {name: web, path: /srv/web}
  - {name: api, path: /srv/api, environments: [staging]}
environments:
  staging: {auto_apply: true}
  production: {auto_apply: false}
"""


def test_the_fleet_is_every_declared_partition_or_the_named_ones_and_unknown_names_are_refused():
    config = parse_config(CONFIG, Path("/srv/manager/manager.yaml"))
    assert [p.label for p in fleet_partitions(config)] == ["api/staging", "web/staging", "web/production"]
    assert [p.label for p in fleet_partitions(config, environments=["production"])] == ["web/production"]
    assert [p.label for p in fleet_partitions(config, sources=["api"], environments=["production"])] == []
    with pytest.raises(ManagerError, match="unknown source `nope`: manager.yaml declares api, web"):
        fleet_partitions(config, sources=["nope"])
    with pytest.raises(ManagerError, match="unknown environment `qa`"):
        fleet_partitions(config, environments=["qa"])


def plan(source, env, **summary):
    return PartitionPlan(Partition(source, env), summary=PlanSummary(**summary), plan_id=f"id-{source}-{env}")


def test_the_summary_puts_failures_then_destroys_first_and_counts_every_partition():
    results = [
        plan("quiet", "staging"),
        plan("grow", "staging", to_add=("aws_s3_bucket.a", "aws_s3_bucket.b")),
        plan("risky", "production", to_replace=("aws_route.public",), to_change=("aws_vpc.main",)),
        plan("gone", "staging", to_destroy=tuple(f"aws_subnet.s[{i}]" for i in range(12))),
        PartitionPlan(Partition("broken", "staging"), error="variables.yml is not valid: line 2"),
    ]
    markdown = blast_radius.render(results, "abc123", "http://ui/runs/r1")
    rows = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ") and "source" not in line]
    # Failed, then the most destroys first, then other changes, then nothing.
    assert rows == ["broken", "gone", "risky", "grow", "quiet"]
    assert markdown.startswith(blast_radius.MARKER)
    assert "5 partitions planned: 3 with changes (2 destroying), 1 failed; 3 to add, 1 to change, 13 to destroy" in markdown
    assert "| risky | production | 1 | 1 | 1 | `id-risky-production` |" in markdown
    assert "### Blast radius of module `abc123`" in markdown
    assert "- **broken/staging**: `variables.yml is not valid: line 2`" in markdown
    assert "- **risky/production**: replaces `aws_route.public`" in markdown
    # Long lists are cut, with how many more.
    assert "`aws_subnet.s[9]` and 2 more" in markdown and "aws_subnet.s[10]" not in markdown


def test_an_error_is_shown_by_its_first_telling_line_redacted():
    from manager_pipeline.redact import register_secret

    register_secret("hunter2-secret-value")
    assert _first_line(ValueError("x.yml is not valid (1 problem):\n- x.yml:2:1: bad")) == "x.yml is not valid (1 problem): - x.yml:2:1: bad"
    assert _first_line(RuntimeError("plan failed\n│ Error: creating VPC: hunter2-secret-value")) == (
        "Error: creating VPC: ***"
    )


def test_the_module_sensor_keeps_a_baseline_and_plans_every_partition_once_when_the_module_changes(tmp_path):
    module = Path(shutil.copytree(REPO / "terraform", tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform*")))
    config_path = tmp_path / "manager.yaml"
    config_path.write_text(CONFIG + f"terraform_dir: {module}\n")
    sensor = module_change_sensor()
    resources = {"manager": ManagerConfigResource(config_path=str(config_path))}
    with DagsterInstance.ephemeral() as instance:
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        assert not first.run_requests and first.cursor
        same = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
        assert not same.run_requests
        (module / "networking.tf").write_text((module / "networking.tf").read_text() + "\n# a change\n")
        changed = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
        [request] = changed.run_requests
        assert changed.cursor != first.cursor
        assert request.run_key == f"module-{changed.cursor}"
        assert request.tags[".dagster/manager/trigger"] == "module-change"


def test_the_summary_has_a_column_of_policy_failures_the_module_change_introduces():
    checked = PartitionPlan(
        Partition("web", "production"),
        summary=PlanSummary(to_add=("aws_s3_bucket.main",)),
        plan_id="p1",
        new_policy_failures=("CKV_AWS_20 aws_s3_bucket.main", "CKV_AWS_79 aws_launch_template.app"),
    )
    clean = PartitionPlan(Partition("api", "staging"), summary=PlanSummary(), plan_id="p2", new_policy_failures=())
    unchecked = PartitionPlan(
        Partition("batch", "staging"), summary=PlanSummary(), plan_id="p3", policy_note="not checked: engine timed out"
    )
    markdown = blast_radius.render([checked, clean, unchecked], "abc123")
    rows = {line.split("|")[1].strip(): line.split("|")[7].strip() for line in markdown.splitlines() if line.count("|") == 8}
    assert rows["web"] == "2" and rows["api"] == "0" and rows["batch"] == "-"
    assert "#### New policy failures" in markdown
    assert "- **web/production**: `CKV_AWS_20 aws_s3_bucket.main`, `CKV_AWS_79 aws_launch_template.app`" in markdown
    assert "`not checked: engine timed out`" in markdown
