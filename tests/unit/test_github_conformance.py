"""The GitHub stand-in's conformance checks (tests/github_standin.py, against the operations vendored in
tests/github_spec/rest-operations.json): what they catch, how a violation names its operation and
field, and that the stand-in's own replies conform. The stand-in itself answering one:
tests/integration/test_github_conformance.py."""

from __future__ import annotations

import json

import pytest

from tests.github_standin import SPEC_FILE, Conformance

SHA = "a" * 40


@pytest.fixture
def conformance() -> Conformance:
    return Conformance()


def pointers(conformance: Conformance) -> list[tuple[str | None, str, str]]:
    return [(v["operation"], v["where"], v["pointer"]) for v in conformance.violations]


def test_the_vendored_description_records_its_package_and_holds_only_the_used_operations():
    spec = json.loads(SPEC_FILE.read_text())
    assert spec["source"]["package"] == "@octokit/openapi" and spec["source"]["version"]
    assert len(spec["operations"]) < 60 and len(spec["index"]) > 800
    assert SPEC_FILE.stat().st_size < 3_000_000
    assert '"nullable":true' not in SPEC_FILE.read_text()  # OpenAPI 3.0's, turned into type lists


def test_a_conforming_request_is_counted_and_leaves_no_violation(conformance):
    body = json.dumps({"state": "success", "context": "manager-pipeline/staging", "description": None}).encode()
    assert conformance.check_request("POST", f"/repos/acme/web/statuses/{SHA}", "", body) == (
        "repos/create-commit-status", 0)
    assert conformance.violations == [] and conformance.requests_checked == 1


def test_a_body_field_of_the_wrong_type_or_one_github_does_not_take_is_named_by_operation_and_path(conformance):
    body = json.dumps({"state": "done", "context": "x", "colour": "red"}).encode()
    operation, refused = conformance.check_request("POST", f"/repos/acme/web/statuses/{SHA}", "", body)
    assert operation == "repos/create-commit-status" and refused == 2
    assert sorted(pointers(conformance)) == [
        ("repos/create-commit-status", "request body", "$"),
        ("repos/create-commit-status", "request body", "$.state"),
    ]
    assert any("'colour' was unexpected" in v["message"] for v in conformance.violations)


def test_a_query_parameter_the_operation_does_not_declare_is_a_violation(conformance):
    conformance.check_request("GET", "/repos/acme/web/pulls", "state=open&per_page=100&sort_by=created", b"")
    assert pointers(conformance) == [("pulls/list", "query", "$.sort_by")]


def test_a_query_value_out_of_the_parameters_schema_is_a_violation(conformance):
    conformance.check_request("GET", "/repos/acme/web/pulls", "state=merged", b"")
    assert pointers(conformance) == [("pulls/list", "query parameter state", "$")]


def test_a_path_github_does_not_have_is_a_violation_and_so_is_a_method_it_does_not_take(conformance):
    conformance.check_request("GET", "/repos/acme/web/frobnicate", "", b"")
    conformance.check_request("PUT", "/repos/acme/web/pulls/7/files", "", b"")
    assert [v["message"] for v in conformance.violations] == [
        "GitHub has no operation at this path (GET /repos/acme/web/frobnicate)",
        "GitHub has no PUT operation for /repos/{owner}/{repo}/pulls/{pull_number}/files (only other methods)",
    ]


def test_an_operation_github_has_but_that_is_not_vendored_says_where_to_add_it(conformance):
    conformance.check_request("GET", "/repos/acme/web/releases", "", b"")
    [violation] = conformance.violations
    assert violation["operation"] == "repos/list-releases" and "scripts/vendor_github_spec.py" in violation["message"]


def test_a_reply_of_another_shape_or_status_than_github_sends_is_a_violation(conformance):
    conformance.check_reply("issues/create-comment", "POST", "/repos/a/b/issues/7/comments", 201, {"id": "7"})
    assert ("issues/create-comment", "reply 201", "$.id") in pointers(conformance)
    conformance.violations.clear()
    conformance.check_reply("issues/create-comment", "POST", "/repos/a/b/issues/7/comments", 200, {})
    assert [v["message"] for v in conformance.violations] == [
        "GitHub answers issues/create-comment with 201, 403, 404, 410, 422, never 200"
    ]
    conformance.violations.clear()
    conformance.check_reply("issues/create-comment", "POST", "/repos/a/b/issues/7/comments", 502, {"message": "x"})
    assert conformance.violations == []  # an injected outage: GitHub may answer 5xx anywhere


def test_every_vendored_reply_the_stand_in_completes_conforms(conformance):
    """The placeholders the stand-in adds for fields the manager never reads are of GitHub's shape."""
    for op_id, operation in conformance.operations.items():
        for status, schema in operation["responses"].items():
            if schema is None or not status.startswith("2"):
                continue
            empty = [{}] if schema.get("type") == "array" else {}
            reply = conformance.completed(op_id, int(status), empty)
            conformance.check_reply(op_id, operation["method"], operation["path"], int(status), reply)
    assert conformance.violations == []
