"""`manager-pipeline validate` and `manager-pipeline schema`, called as the command line."""

from __future__ import annotations

import json

import pytest

from manager_pipeline.cli import main
from manager_pipeline.contract import SCHEMA
from tests.support import REPO

EXAMPLE = REPO / "examples" / "source_monorepo" / "infra" / "variables.yml"


@pytest.fixture(autouse=True)
def no_manager_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("MANAGER_CONFIG", str(tmp_path / "absent.yaml"))


def test_valid_file_exits_0_and_prints_what_terraform_receives(capsys):
    assert main(["validate", str(EXAMPLE), "--env", "production"]) == 0
    out = capsys.readouterr().out
    assert "is valid; what Terraform receives for production:" in out
    resolved = json.loads(out.split(":\n", 1)[1])
    assert resolved["tags"]["Stage"] == "production" and resolved["instances"]["max_instances"] == 6


def test_json_format_for_valid_and_invalid_files(capsys, tmp_path):
    assert main(["validate", str(EXAMPLE), "--env", "staging", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["resolved"]["environment"] == "staging"

    broken = tmp_path / "variables.yml"
    broken.write_text(
        EXAMPLE.read_text().replace("networking:", "netwroking:").replace("min_instances: 1", "min_instances: 9")
    )
    assert main(["validate", str(broken), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert [(e["line"], e["column"], e["path"]) for e in report["errors"]] == [
        (12, 20, "environments.staging.min_instances"),
        (24, 1, "netwroking"),
    ]
    assert "did you mean `networking`?" in report["errors"][1]["message"]


def test_invalid_file_exits_1_listing_every_problem(capsys, tmp_path):
    broken = tmp_path / "variables.yml"
    broken.write_text(EXAMPLE.read_text().replace("region: us-east-1", "region: mars"))
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.count("is not valid: AWS region name") == 2
    assert f"{broken}:10:13: environments.staging.region" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["validate", "/nonexistent/variables.yml"], "cannot read"),
        (["validate", str(EXAMPLE), "--env", "qa"], "unknown environment `qa`"),
    ],
)
def test_usage_errors_exit_2(capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_environments_come_from_manager_yaml_when_there(capsys, tmp_path, monkeypatch):
    config = tmp_path / "manager.yaml"
    config.write_text("environments:\n  staging: {auto_apply: true}\n")
    monkeypatch.setenv("MANAGER_CONFIG", str(config))
    assert main(["validate", str(EXAMPLE)]) == 1
    assert (
        "environments.production: the manager does not deploy to `production` (known: staging)"
        in capsys.readouterr().err
    )


def test_schema_prints_the_json_schema_and_generated_files(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA
    assert main(["schema", "--terraform"]) == 0
    assert capsys.readouterr().out == (REPO / "terraform" / "sections.tf").read_text()
    assert main(["schema", "--markdown"]) == 0
    assert "| `environments.<name>.region` | yes |" in capsys.readouterr().out


# Verbatim copies of the two files the original pipeline ships (shared/mission/upstream-variables.*.yml).
MISSION = REPO / "examples" / "original_pipeline"


@pytest.mark.parametrize("name", ["variables.source.yml", "variables.extended.yml"])
def test_the_original_pipelines_files_validate_and_show_every_section_resolved(name, capsys):
    path = str(MISSION / name)
    assert main(["validate", path, "--env", "staging", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    if name.endswith("extended.yml"):
        resolved = report["resolved"]
        for section in ("compute", "database", "storage", "monitoring", "security", "features", "scaling", "backup"):
            assert resolved[section], section
        assert resolved["storage"]["versioning"] is True and resolved["scaling"]["target_cpu_utilization"] == 70
        assert sorted(w["path"] for w in report["warnings"]) == ["notifications.slack_webhook", "security.ssl_certificate_arn"]
        assert "hooks.slack.com" not in json.dumps(report)


def test_warnings_go_to_stderr_and_do_not_fail_the_check(capsys):
    assert main(["validate", str(MISSION / "variables.extended.yml")]) == 0
    captured = capsys.readouterr()
    assert "is valid" in captured.out and "warning: " in captured.err and "slack_webhook" in captured.err
