"""Vendor the part of GitHub's published API descriptions that the manager uses, for the stand-in's checks.

    .venv/bin/python scripts/vendor_github_spec.py [--openapi 23.0.2] [--examples 7.6.1]

Writes ``tests/github_spec/rest-operations.json``: each REST operation the manager calls (and the
GitHub stand-in, tests/github_standin.py, serves), dereferenced, with its path and query parameters,
its JSON request body schema and a JSON schema per response status, taken from
``@octokit/openapi``'s ``generated/api.github.com.deref.json``; plus an index of every operation of
the description (method, path template, operation id), so a request for an operation that exists
but is not vendored is told apart from one GitHub does not have. OpenAPI 3.0's ``nullable: true``
becomes a JSON Schema type list (``jsonschema`` knows no ``nullable``), and annotations
(descriptions, examples) are dropped: they validate nothing.

Writes ``tests/github_spec/webhooks/<event>.json``: the example payloads of ``@octokit/webhooks-examples``
for each event the receiver handles or refuses, whole, as published.

Both packages come from the npm registry through ``npm pack`` (MIT licensed); the package names and
versions are recorded in the files written. Add an operation to ``OPERATIONS`` (or an event to
``EVENTS``) and run the script again when the manager starts using one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "github_spec"
OPENAPI_PACKAGE, OPENAPI_VERSION = "@octokit/openapi", "23.0.2"
EXAMPLES_PACKAGE, EXAMPLES_VERSION = "@octokit/webhooks-examples", "7.6.1"
DESCRIPTION = "package/generated/api.github.com.deref.json"
EXAMPLES = "package/api.github.com/index.json"

# The operations the manager calls through manager_pipeline/github/client.py (PyGithub), which the
# stand-in serves: (operation id, what calls it).
OPERATIONS = {
    "apps/create-installation-access-token": "GitHub App auth (PyGithub's AppInstallationAuth)",
    "users/get-authenticated": "token_login, own_login (a token), approvals' token check",
    "apps/get-authenticated": "own_login (a GitHub App: its slug names its bot, `<app-slug>[bot]`)",
    "teams/get-membership-for-user-in-org": "in_team",
    "repos/get": "repository",
    "repos/get-branch": "head_sha, branch_head",
    "repos/get-commit": "commit_author, tag_commit",
    "repos/get-content": "file_at",
    "repos/create-commit-status": "create_status",
    "repos/list-pull-requests-associated-with-commit": "pulls_of_commit",
    "repos/compare-commits": "changed_files (PyGithub asks /compare/{base}...{head})",
    "repos/list-comments-for-commit": "commit_comments",
    "repos/create-commit-comment": "create_commit_comment",
    "repos/list-webhooks": "hooks",
    "repos/create-webhook": "create_hook",
    "pulls/list": "open_pulls",
    "pulls/get": "pull_files, reviews (PyGithub completes the pull request)",
    "pulls/list-files": "pull_files",
    "pulls/list-reviews": "reviews",
    "issues/get": "issue_comments, create_issue_comment (PyGithub completes the issue)",
    "issues/list-for-repo": "open_issues",
    "issues/create": "create_issue",
    "issues/update": "edit_issue",
    "issues/list-comments": "issue_comments",
    "issues/create-comment": "create_issue_comment",
    "issues/update-comment": "edit_issue_comment",
    "issues/delete-comment": "delete_issue_comment",
    "checks/create": "create_check_run (GitHub App only)",
    "checks/update": "update_check_run",
    "checks/list-for-ref": "check_runs (the run's check run found again by its external_id)",
    "repos/get-collaborator-permission-level": "permission (who may press a check run's \"Plan again\")",
}

# Webhook events whose example payloads drive the receiver (tests/unit/test_webhook_examples.py):
# those it handles, the lifecycle events it records (a repository renamed or transferred, the App
# removed, the hook deleted), and a few it refuses as unhandled.
EVENTS = (
    "push", "pull_request", "pull_request_review", "issue_comment", "release", "ping", "check_run",
    "repository", "installation", "installation_repositories", "github_app_authorization", "meta",
)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Keywords that only annotate: they validate nothing.
ANNOTATIONS = {"description", "example", "examples", "title", "externalDocs", "deprecated", "readOnly",
               "writeOnly", "discriminator", "xml"}


def npm_pack(package: str, version: str, into: Path) -> Path:
    """The package's tarball, unpacked into ``into``."""
    subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=into, check=True, capture_output=True)
    tarball = next(into.glob("*.tgz"))
    target = into / "unpacked"
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter="data")
    return target


def _strip_nullable(schema: Any) -> tuple[Any, bool]:
    if isinstance(schema, dict) and schema.get("nullable") is True:
        return {k: v for k, v in schema.items() if k != "nullable"}, True
    return schema, False


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: ``nullable`` as a type list, annotations dropped."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    null_branches: list[dict[str, Any]] = []
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            branches = [_strip_nullable(branch) for branch in value]
            converted = [json_schema(branch) for branch, _ in branches]
            if key != "allOf" and any(null for _, null in branches):
                # `oneOf: [{type: string, nullable}, {type: integer, nullable}]`: as type lists, null would
                # match every branch and fail oneOf; null is its own branch instead.
                null_branches.append({"anyOf": [{"type": "null"}, {key: converted}]})
            else:
                out[key] = converted
        else:
            out[key] = value
    if null_branches:
        out["allOf"] = [*out.get("allOf", []), *null_branches]
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif "type" not in out:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _json_content(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema of the JSON media type of a request body or response, if it has one."""
    for media in ("application/json", *sorted(content or {})):
        if "json" in media and media in (content or {}) and "schema" in content[media]:
            return json_schema(content[media]["schema"])
    return None


def operation(path: str, method: str, item: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    parameters = {(p["name"], p["in"]): p for p in [*item.get("parameters", []), *op.get("parameters", [])]}
    body = op.get("requestBody")
    return {
        "method": method.upper(),
        "path": path,
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "required": bool(p.get("required")),
                "schema": json_schema(p.get("schema", {})),
            }
            for p in parameters.values()
            if p["in"] in ("path", "query")
        ],
        "request_body": None if body is None else {
            "required": bool(body.get("required")),
            "schema": _json_content(body.get("content")),
        },
        "responses": {status: _json_content(response.get("content")) for status, response in op["responses"].items()},
    }


def vendor_rest(description: dict[str, Any]) -> dict[str, Any]:
    index, operations = [], {}
    for path, item in sorted(description["paths"].items()):
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            index.append([method.upper(), path, op["operationId"]])
            if op["operationId"] in OPERATIONS:
                operations[op["operationId"]] = operation(path, method, item, op)
    missing = sorted(set(OPERATIONS) - set(operations))
    if missing:
        raise SystemExit(f"not in {OPENAPI_PACKAGE}: {', '.join(missing)}")
    return {
        "source": {
            "package": OPENAPI_PACKAGE,
            "version": OPENAPI_VERSION,
            "file": DESCRIPTION.removeprefix("package/"),
            "license": "MIT",
            "regenerate": "scripts/vendor_github_spec.py",
        },
        "nullable": "OpenAPI 3.0 `nullable: true` converted to JSON Schema type lists; annotations dropped",
        "operations": {key: operations[key] for key in sorted(operations)},
        "index": index,
    }


def vendor_webhooks(events: list[dict[str, Any]], version: str) -> dict[str, dict[str, Any]]:
    by_name = {event["name"]: event for event in events}
    missing = sorted(set(EVENTS) - set(by_name))
    if missing:
        raise SystemExit(f"not in {EXAMPLES_PACKAGE}: {', '.join(missing)}")
    return {
        name: {
            "package": EXAMPLES_PACKAGE,
            "version": version,
            "file": EXAMPLES.removeprefix("package/"),
            "event": name,
            "actions": by_name[name].get("actions", []),
            "examples": by_name[name]["examples"],
        }
        for name in EVENTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--openapi", default=OPENAPI_VERSION, help=f"{OPENAPI_PACKAGE} version")
    parser.add_argument("--examples", default=EXAMPLES_VERSION, help=f"{EXAMPLES_PACKAGE} version")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        openapi_dir, examples_dir = Path(temp, "openapi"), Path(temp, "examples")
        openapi_dir.mkdir()
        examples_dir.mkdir()
        description = json.loads((npm_pack(OPENAPI_PACKAGE, args.openapi, openapi_dir) / DESCRIPTION).read_text())
        examples = json.loads((npm_pack(EXAMPLES_PACKAGE, args.examples, examples_dir) / EXAMPLES).read_text())
    rest = vendor_rest(description)
    rest["source"]["version"] = args.openapi
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rest-operations.json").write_text(json.dumps(rest, separators=(",", ":"), sort_keys=True) + "\n")
    hooks = OUT / "webhooks"
    hooks.mkdir(exist_ok=True)
    for name, data in vendor_webhooks(examples, args.examples).items():
        (hooks / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    size = (OUT / "rest-operations.json").stat().st_size
    print(f"{len(rest['operations'])} operations of {len(rest['index'])} ({size / 1e6:.1f} MB), {len(EVENTS)} events")


if __name__ == "__main__":
    main()
