"""The policy stage's pure parts: checkov's JSON report -> each plan's verdict, per environment, and
the policy inputs (manager.yaml's `checks`, the reviewed skip file, custom policies) with placed errors.

The reports are shaped as checkov 3.3.30 prints them (`-o json`, framework terraform_plan), cut down
to the fields the engine reads; tests/integration/test_policy.py runs the real checkov.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from manager_pipeline.policy import (
    ChecksFile,
    PlanToScan,
    PolicyConfigError,
    PolicyEngineError,
    PolicyResult,
    Skip,
    check_checks_document,
    load_custom_policies,
    load_reviewed_skips,
    plan_secrets,
    resolve_policy,
)
from manager_pipeline.policy.engine import read_report
from manager_pipeline.policy.install import CheckInfo, parse_check_list
from manager_pipeline.redact import forget_registered_secrets, register_secret
from manager_pipeline.yamlfile import parse_yaml

REPO = Path(__file__).resolve().parents[2]
CHECKS = {
    "CKV_AWS_20": CheckInfo(
        "S3 Bucket has an ACL defined which allows public READ access.", "https://example/S3PublicACLRead"
    ),
    "CKV_AWS_21": CheckInfo(
        "Ensure all data stored in the S3 bucket have versioning enabled", "https://example/Versioning"
    ),
    "CKV2_AWS_6": CheckInfo("Ensure that S3 bucket has a Public Access block", "https://example/PAB"),
}
SECRET = "hunter2-SuperSecret-value"


def check(check_id: str, resource: str, file: str, **extra) -> dict:
    name = CHECKS[check_id].name if check_id in CHECKS else extra.pop("name", "custom")
    return {
        "check_id": check_id,
        "bc_check_id": None,
        "check_name": name,
        "check_result": {"result": "FAILED", "entity": {"aws_s3_bucket": {"x": {"tags": [{"Password": SECRET}]}}}},
        "file_path": f"/{file}",
        "file_abs_path": f"/dev/shm/manager-policy-abc/{file}",
        "resource": resource,
        "resource_address": resource,
        "guideline": None,
        "severity": None,
        **extra,
    }


def report(failed: list[dict], passed: list[dict] = ()) -> str:
    return json.dumps(
        {
            "check_type": "terraform_plan",
            "results": {"passed_checks": list(passed), "failed_checks": failed},
            "summary": {"passed": len(passed), "failed": len(failed), "skipped": 0, "parsing_errors": 0},
        }
    )


def plan(secret: str = SECRET) -> dict:
    """A cut-down `terraform show -json`: a sensitive variable and a sensitive attribute."""
    return {
        "format_version": "1.2",
        "variables": {"db_password": {"value": secret}, "region": {"value": "us-east-1"}},
        "configuration": {"root_module": {"variables": {"db_password": {"sensitive": True}, "region": {}}}},
        "resource_changes": [
            {
                "address": "aws_ssm_parameter.pw",
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": {"name": "/app/pw", "value": secret + "-attr"},
                    "after_sensitive": {"value": True},
                },
            }
        ],
        "output_changes": {"token": {"after": "output-token-value", "after_sensitive": True}},
    }


def verdicts(stdout: str, *policies, files=None, sources=None) -> list[PolicyResult]:
    items = [PlanToScan(plan(), p, (sources or [None] * len(policies))[i]) for i, p in enumerate(policies)]
    return read_report(
        stdout, items, files or [f"plan-{i}.json" for i in range(len(items))], checks=CHECKS, engine="checkov 3.3.30"
    )


PUBLIC = [
    check("CKV_AWS_20", "aws_s3_bucket.public", "plan-0.json"),
    check("CKV2_AWS_6", "aws_s3_bucket.public", "plan-0.json"),
]


def test_production_enforces_and_staging_warns_the_same_failures():
    passed = [check("CKV_AWS_21", "aws_s3_bucket.public", "plan-0.json")]
    [production] = verdicts(report(PUBLIC, passed), resolve_policy("production"))
    [staging] = verdicts(report(PUBLIC, passed), resolve_policy("staging"))
    assert production.blocked and [(f.check_id, f.resource) for f in production.failures] == [
        ("CKV2_AWS_6", "aws_s3_bucket.public"),
        ("CKV_AWS_20", "aws_s3_bucket.public"),
    ]
    assert production.passed == 1 and production.warnings == ()
    assert production.failures[1].name == CHECKS["CKV_AWS_20"].name
    assert production.failures[1].guideline == "https://example/S3PublicACLRead"
    assert not staging.blocked and len(staging.warnings) == 2 and staging.passed == 1
    assert production.headline().startswith(
        "policy failed: 2 enforced check(s) failed (CKV2_AWS_6 aws_s3_bucket.public"
    )
    assert staging.headline() == "policy passed; 2 warning(s), 0 skipped, 1 passed (staging)"


def test_skips_with_reasons_by_resource_instance_and_source_and_the_warn_and_enforce_lists():
    failed = [
        check("CKV_AWS_20", 'aws_s3_bucket.public["assets"]', "plan-0.json"),
        check("CKV_AWS_20", "aws_s3_bucket.other", "plan-0.json"),
        check("CKV2_AWS_6", "aws_s3_bucket.public", "plan-0.json"),
        check("CKV_AWS_21", "aws_s3_bucket.public", "plan-0.json"),
    ]
    checks = ChecksFile.model_validate(
        {
            "warn": ["CKV_AWS_21"],
            "skips": [{"check": "CKV2_AWS_6", "reason": "the account blocks public access", "sources": ["web"]}],
        }
    )
    reviewed = (
        Skip(check="CKV_AWS_20", resources=("aws_s3_bucket.public",), reason="a public site", field="storage.public"),
    )
    policy = resolve_policy("production", checks, reviewed_skips=reviewed)
    [web] = verdicts(report(failed), policy, sources=["web"])
    assert [(f.check_id, f.resource) for f in web.failures] == [("CKV_AWS_20", "aws_s3_bucket.other")]
    assert [(f.check_id, f.reason, f.field) for f in web.skipped] == [
        ("CKV2_AWS_6", "the account blocks public access", ""),
        ("CKV_AWS_20", "a public site", "storage.public"),
    ]
    assert [f.check_id for f in web.warnings] == ["CKV_AWS_21"]
    # The per-source skip is not another source's.
    [api] = verdicts(report(failed), policy, sources=["api"])
    assert sorted(f.check_id for f in api.failures) == ["CKV2_AWS_6", "CKV_AWS_20"]
    # In a warning environment, `enforce` still blocks.
    [staging] = verdicts(report(failed), resolve_policy("staging", ChecksFile(enforce=("CKV_AWS_21",))))
    assert [f.check_id for f in staging.failures] == ["CKV_AWS_21"] and len(staging.warnings) == 3


def test_many_plans_in_one_report_are_mapped_back_to_each_plan():
    failed = [
        check("CKV_AWS_20", "aws_s3_bucket.public", "plan-0.json"),
        check("CKV_AWS_20", "aws_s3_bucket.public", "plan-2.json"),
    ]
    passed = [check("CKV_AWS_21", "aws_s3_bucket.b", f"plan-{i}.json") for i in (0, 1, 1, 2)]
    results = verdicts(
        report(failed, passed), resolve_policy("production"), resolve_policy("production"), resolve_policy("staging")
    )
    assert [len(r.failures) for r in results] == [1, 0, 0]
    assert [len(r.warnings) for r in results] == [0, 0, 1]
    assert [r.passed for r in results] == [1, 2, 1]
    # checkov prints a list when it ran several check types, and a bare summary when nothing was scanned.
    listed = json.dumps([json.loads(report(failed[:1]))])
    assert len(verdicts(listed, resolve_policy("production"))[0].failures) == 1
    empty = json.dumps({"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0})
    assert verdicts(empty, resolve_policy("production"))[0].passed == 0


@pytest.mark.parametrize(
    "stdout, cause",
    [
        ("", "printed no JSON report"),
        ("Traceback (most recent call last):\n  boom", "printed no JSON report"),
        ('{"unexpected": true}', "neither results nor a summary"),
        ("[1, 2]", "a report is not a JSON object"),
        (
            report([check("CKV_AWS_20", "aws_s3_bucket.public", "elsewhere.json")]),
            "reported on a file it was not given",
        ),
    ],
)
def test_output_that_is_not_a_report_is_an_error_of_one_line_never_a_pass(stdout, cause):
    with pytest.raises(PolicyEngineError, match=cause) as caught:
        verdicts(stdout, resolve_policy("staging"))
    assert "\n" not in str(caught.value)


def test_no_secret_of_the_plan_or_the_process_reaches_a_result_or_an_error():
    register_secret("registered-token-123456")
    try:
        leaky = [
            check("CKV_AWS_20", f'aws_s3_bucket.b["{SECRET}"]', "plan-0.json", guideline="see registered-token-123456"),
        ]
        [result] = verdicts(report(leaky), resolve_policy("production"))
        text = json.dumps(result.to_dict())
        assert SECRET not in text and "registered-token-123456" not in text and "***" in text
        with pytest.raises(PolicyEngineError) as caught:
            verdicts(f"not json {SECRET}", resolve_policy("production"))
        assert SECRET not in str(caught.value)
    finally:
        forget_registered_secrets()


def test_plan_secrets_are_what_terraform_marks_sensitive():
    found = plan_secrets(plan())
    assert {SECRET, SECRET + "-attr", "output-token-value"} <= found
    assert "us-east-1" not in found and "/app/pw" not in found


def test_results_travel_as_plain_data():
    [result] = verdicts(report(PUBLIC), resolve_policy("production"))
    data = json.loads(json.dumps(result.to_dict()))
    assert PolicyResult.from_dict(data) == result


def test_the_reviewed_skip_file_of_the_module_loads():
    skips = load_reviewed_skips(REPO / "terraform")
    assert skips and all(skip.reason and skip.check.startswith("CKV") for skip in skips)
    assert load_reviewed_skips(REPO / "examples") == ()


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "skips:\n  - check: CKV_AWS_18\n    resources: [aws_s3_bucket.x]\n",
            "p.yaml:2:5: skips.0: `reason` is required",
        ),
        ("skips:\n  - check: CKV_AWS_18\n    reason: '  '\n", "p.yaml:3:13: skips.0.reason: a skip needs a reason"),
        ("skips:\n  - check: not-an-id\n    reason: r\n", "p.yaml:2:12: skips.0.check: 'not-an-id' is not a check id"),
        ("skips:\n  - id: CKV_AWS_18\n    reason: r\n", "p.yaml:2:5: skips.0.id: unknown key `id`"),
        ("skips: [\n", "p.yaml:2:1: (file): expected the node content"),
    ],
)
def test_a_bad_skip_file_is_refused_at_its_line(tmp_path, text, expected):
    (tmp_path / "policy-skips.yaml").write_text(text)
    with pytest.raises(PolicyConfigError) as caught:
        load_reviewed_skips(tmp_path)
    assert expected in str(caught.value).replace(str(tmp_path / "policy-skips.yaml"), "p.yaml")


def test_a_skip_of_an_unknown_check_id_is_refused_at_its_line(tmp_path):
    (tmp_path / "policy-skips.yaml").write_text("skips:\n  - check: CKV_AWS_99999\n    reason: typo\n")
    with pytest.raises(
        PolicyConfigError, match=r"policy-skips.yaml:2:12: skips.0.check: no check has the id CKV_AWS_99999"
    ):
        load_reviewed_skips(tmp_path, known=CHECKS)


MANAGER_YAML = """\
environments:
  production:
    auto_apply: false
    checks:
      warn: [CKV_AWS_21, CKV_AWS_7777]
      skips:
        - check: CKV_AWS_20
          reason: ""
        - check: CKV2_AWS_6
          resources: [aws_s3_bucket.public]
          reason: the account blocks public access
      custom_policies: policies
      surprise: 1
"""


def test_the_checks_of_manager_yaml_are_refused_with_every_problem_placed(tmp_path):
    document = parse_yaml(MANAGER_YAML, "manager.yaml")
    (tmp_path / "policies").mkdir()
    with pytest.raises(PolicyConfigError) as caught:
        check_checks_document(document, "manager.yaml", ("environments", "production", "checks"), CHECKS, tmp_path)
    message = str(caught.value)
    assert "manager.yaml:8:19: environments.production.checks.skips.0.reason: a skip needs a reason" in message
    assert "manager.yaml:13:7: environments.production.checks.surprise: unknown key `surprise`" in message
    fixed = MANAGER_YAML.replace('reason: ""', "reason: a reviewed exception").replace("      surprise: 1\n", "")
    with pytest.raises(PolicyConfigError, match=r"manager.yaml:5:26: .*warn.1: no check has the id CKV_AWS_7777"):
        check_checks_document(
            parse_yaml(fixed, "manager.yaml"),
            "manager.yaml",
            ("environments", "production", "checks"),
            CHECKS,
            tmp_path,
        )
    good = fixed.replace(", CKV_AWS_7777", "")
    checks = check_checks_document(
        parse_yaml(good, "manager.yaml"), "manager.yaml", ("environments", "production", "checks"), CHECKS, tmp_path
    )
    assert checks.warn == ("CKV_AWS_21",) and checks.skips[1].resources == ("aws_s3_bucket.public",)
    assert (
        check_checks_document(
            parse_yaml(good, "manager.yaml"), "manager.yaml", ("environments", "staging", "checks"), CHECKS, tmp_path
        )
        is None
    )


def test_the_example_custom_policy_loads_and_bad_ones_are_placed(tmp_path):
    policies = load_custom_policies(REPO / "examples" / "policies")
    assert "CKV2_MP_1" in policies and "cost_center" in policies["CKV2_MP_1"].guideline
    (tmp_path / "a.yaml").write_text(
        "metadata:\n  id: CKV2_ACME_1\n  name: n\n  category: GENERAL_SECURITY\ndefinition: {}\n"
    )
    (tmp_path / "b.yaml").write_text("metadata:\n  id: CKV2_ACME_1\n  name: n\n  category: C\ndefinition: {}\n")
    (tmp_path / "c.yml").write_text("metadata:\n  name: no id\n")
    (tmp_path / "d.yaml").write_text("metadata: [\n")
    with pytest.raises(PolicyConfigError) as caught:
        load_custom_policies(tmp_path)
    message = str(caught.value)
    assert "b.yaml:2:7: metadata.id: CKV2_ACME_1 is also the id of a.yaml" in message
    assert "c.yml:2:3: metadata: `metadata` needs id, category" in message
    assert "d.yaml:2:1: (file)" in message
    with pytest.raises(PolicyConfigError, match="does not exist"):
        load_custom_policies(tmp_path / "missing")


def test_the_check_list_of_checkov_is_read_from_its_table():
    text = (
        "| | Id | Type | Entity | Policy | IaC | Resource Link |\n"
        "|---|---|---|---|---|---|---|\n"
        "|    0 | CKV_AWS_20 | resource | aws_s3_bucket | public READ | Terraform | https://x/a.py |\n"
        "|    1 | CKV_AWS_20 | resource | aws_s3_bucket_acl | public READ | Terraform | https://x/a.py |\n"
        "|    2 | CKV2_AWS_6 | resource | aws_s3_bucket | a Public Access block | Terraform | https://x/b.json |\n"
    )
    assert parse_check_list(text) == {
        "CKV_AWS_20": CheckInfo("public READ", "https://x/a.py"),
        "CKV2_AWS_6": CheckInfo("a Public Access block", "https://x/b.json"),
    }
