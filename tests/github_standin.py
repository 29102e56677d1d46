"""A GitHub stand-in: the REST endpoints the manager uses, served on 127.0.0.1 for tests.

Run as ``python -m tests.github_standin --port N``. Tests set it up and inspect it through
``/_standin/...``: repositories (files per commit, branches, pull requests), accepted
tokens and a GitHub App, faults to inject (a status code with headers for the next N
matching requests, or a hang), and every request it received (bodies included, so tests
can search them for secrets).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import jwt

PER_PAGE_DEFAULT = 30


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, str] = {}
        self.teams: dict[str, set[str]] = {}
        self.app: dict[str, Any] | None = None
        self.installation_tokens: set[str] = set()
        self.repos: dict[str, dict[str, Any]] = {}
        self.faults: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.next_id = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


STATE = State()

# --- conformance: every request and reply checked against GitHub's description --------------

SPEC_FILE = Path(__file__).resolve().parent / "github_spec" / "rest-operations.json"
# A placeholder time for fields the manager never reads (fixed, so an unchanged resource keeps its ETag).
PLACEHOLDER_TIME = "2026-01-01T00:00:00Z"
_MISSING = object()


def _literal_length(template: str) -> int:
    return len(re.sub(r"\{[^}]+\}", "", template))


def _template_pattern(template: str) -> tuple[re.Pattern[str], list[str]]:
    """A path template as a regular expression, and its parameters' names in order."""
    # A last `{path}` (a file's path in contents) or `{ref}` (documented as a sha, `heads/BRANCH` or
    # `tags/TAG`) may hold slashes; every other parameter is one segment.
    parts = [part for part in re.split(r"(\{[^}]+\})", template) if part]
    regex = "".join(
        ("(.+)" if part in ("{path}", "{ref}") and index == len(parts) - 1 else "([^/]+)")
        if part.startswith("{")
        else re.escape(part)
        for index, part in enumerate(parts)
    )
    return re.compile(regex + "$"), [part[1:-1] for part in parts if part.startswith("{")]


def closed(schema: Any) -> Any:
    """The schema with every object that lists its properties closed to others (GitHub's schemas
    leave them open, which would let a field GitHub does not take, or never sends, pass)."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    members = schema.get("allOf")
    if members and all(isinstance(m, dict) and set(m) <= {"type", "properties", "required"} for m in members):
        # An allOf of plain objects: one object with all their properties (closing each would refuse the others').
        schema.pop("allOf")
        properties: dict[str, Any] = dict(schema.get("properties", {}))
        required = list(schema.get("required", []))
        for member in members:
            for name, sub in member.get("properties", {}).items():
                properties[name] = {"allOf": [properties[name], sub]} if name in properties else sub
            required += [r for r in member.get("required", []) if r not in required]
        schema.update(type="object", properties=properties, required=required)
    out = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: closed(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "oneOf"):
            out[key] = closed(value)
        elif key == "allOf":
            # Members that could not be merged stay open: each sees only its own properties.
            out[key] = [{**closed(m), "additionalProperties": m.get("additionalProperties", True)}
                        if isinstance(m, dict) and "properties" in m else closed(m) for m in value]
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out and "patternProperties" not in out:
        out["additionalProperties"] = False
    return out


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    return kind if isinstance(kind, list) else [kind] if kind else []


class Conformance:
    """GitHub's REST description (tests/github_spec/rest-operations.json): which operation a request
    is, whether the request and its reply are as the description says, and replies completed with the
    fields GitHub always sends.

    Violations are kept (``/_standin/conformance``); the fixtures fail the test that caused one."""

    def __init__(self, spec_path: Path = SPEC_FILE) -> None:
        spec = json.loads(spec_path.read_text())
        self.source = spec["source"]
        self.operations: dict[str, dict[str, Any]] = spec["operations"]
        self.routes = sorted(
            ((method, template, op_id, _template_pattern(template)) for method, template, op_id in spec["index"]),
            key=lambda route: -_literal_length(route[1]),
        )
        self._validators: dict[tuple[str, str], Any] = {}
        self._closed: dict[tuple[str, str], Any] = {}
        # Its own lock: replies are checked while a handler holds STATE.lock.
        self.lock = threading.Lock()
        self.violations: list[dict[str, Any]] = []
        self.requests_checked = 0
        self.replies_checked = 0
        self.by_operation: dict[str, int] = {}

    def _validator(self, key: tuple[str, str], schema: dict[str, Any]):
        from jsonschema import Draft4Validator

        if key not in self._validators:
            self._validators[key] = Draft4Validator(self._closed_schema(key, schema))
        return self._validators[key]

    def _closed_schema(self, key: tuple[str, str], schema: dict[str, Any]) -> dict[str, Any]:
        if key not in self._closed:
            self._closed[key] = closed(schema)
        return self._closed[key]

    def _violate(self, op_id: str | None, method: str, path: str, where: str, pointer: str, message: str) -> None:
        self.violations.append(
            {"operation": op_id, "method": method, "path": path, "where": where, "pointer": pointer,
             "message": message[:400], "time": time.time()}
        )

    def _errors(self, op_id, method, path, where, key, schema, instance) -> int:
        from jsonschema.exceptions import best_match

        errors = list(self._validator(key, schema).iter_errors(instance))
        for error in errors:
            leaf = best_match([error]) or error
            self._violate(op_id, method, path, where, leaf.json_path, leaf.message)
        return len(errors)

    def operation_of(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        """(operation id, path parameters) of a request; a violation (and None) when GitHub has none."""
        templates = []
        for route_method, template, op_id, (pattern, names) in self.routes:
            found = pattern.match(path)
            if found:
                if route_method == method:
                    return op_id, {name: unquote(value) for name, value in zip(names, found.groups(), strict=True)}
                templates.append(template)
        if templates:
            message = f"GitHub has no {method} operation for {templates[0]} (only other methods)"
        else:
            message = f"GitHub has no operation at this path ({method} {path})"
        self._violate(None, method, path, "request", "$", message)
        return None, {}

    @staticmethod
    def _coerced(schema: dict[str, Any], value: str) -> Any:
        kinds = _types(schema)
        if "integer" in kinds and re.fullmatch(r"-?\d+", value):
            return int(value)
        if "boolean" in kinds and value in ("true", "false"):
            return value == "true"
        return value

    def check_request(self, method: str, path: str, query: str, raw: bytes) -> tuple[str | None, int]:
        """(operation id, body violations) of a request; every violation is recorded."""
        with self.lock:
            self.requests_checked += 1
            op_id, path_values = self.operation_of(method, path)
            if op_id is None:
                return None, 0
            self.by_operation[op_id] = self.by_operation.get(op_id, 0) + 1
            op = self.operations.get(op_id)
            if op is None:
                self._violate(op_id, method, path, "request", "$",
                              f"{op_id} is not vendored: add it to OPERATIONS in scripts/vendor_github_spec.py")
                return op_id, 0
            declared = {(p["in"], p["name"]): p for p in op["parameters"]}
            for name, value in path_values.items():
                parameter = declared.get(("path", name))
                if parameter is not None:
                    self._errors(op_id, method, path, f"path parameter {name}", (op_id, f"path:{name}"),
                                 parameter["schema"], self._coerced(parameter["schema"], value))
            for name, values in parse_qs(query, keep_blank_values=True).items():
                parameter = declared.get(("query", name))
                if parameter is None:
                    self._violate(op_id, method, path, "query", f"$.{name}",
                                  f"query parameter {name!r} is not declared for {op_id}")
                    continue
                for value in values:
                    self._errors(op_id, method, path, f"query parameter {name}", (op_id, f"query:{name}"),
                                 parameter["schema"], self._coerced(parameter["schema"], value))
            body = op["request_body"]
            if not raw:
                if body and body["required"]:
                    self._violate(op_id, method, path, "request body", "$", f"{op_id} requires a JSON body")
                return op_id, 0
            try:
                data = json.loads(raw)
            except ValueError:
                self._violate(op_id, method, path, "request body", "$", "the body is not JSON")
                return op_id, 1
            if body is None or body["schema"] is None:
                self._violate(op_id, method, path, "request body", "$", f"{op_id} takes no body (sent {raw[:80]!r})")
                return op_id, 0
            return op_id, self._errors(op_id, method, path, "request body", (op_id, "request"), body["schema"], data)

    def check_reply(self, op_id: str, method: str, path: str, status: int, payload: Any) -> None:
        op = self.operations.get(op_id)
        if op is None:
            return
        with self.lock:
            self.replies_checked += 1
            responses = op["responses"]
            if str(status) not in responses:
                if 200 <= status < 300:
                    self._violate(op_id, method, path, f"reply {status}", "$",
                                  f"GitHub answers {op_id} with {', '.join(responses)}, never {status}")
                return  # an injected fault (5xx, 403, 429): GitHub may send those anywhere
            schema = responses[str(status)]
            if schema is None:
                if payload is not None:
                    self._violate(op_id, method, path, f"reply {status}", "$", f"GitHub sends no body with {status}")
                return
            if payload is None:
                self._violate(op_id, method, path, f"reply {status}", "$", f"GitHub sends a body with {status}")
                return
            self._errors(op_id, method, path, f"reply {status}", (op_id, str(status)), schema, payload)

    # Replies completed with what GitHub always sends: the stand-in sets what the manager reads, and
    # every other field the description requires gets a placeholder of its type (null where it may be).

    def completed(self, op_id: str | None, status: int, payload: Any) -> Any:
        op = self.operations.get(op_id or "")
        schema = op and op["responses"].get(str(status))
        if not schema or payload is None:
            return payload
        with self.lock:
            return self._fill(self._closed_schema((op_id, str(status)), schema), payload)

    def _fill(self, schema: dict[str, Any], value: Any = _MISSING) -> Any:
        from jsonschema import Draft4Validator

        for key in ("oneOf", "anyOf"):
            if key in schema:
                branches = [b for b in schema[key] if _types(b) != ["null"]]
                if value is _MISSING and len(branches) < len(schema[key]):
                    return None
                for branch in branches:
                    merged = {**{k: v for k, v in schema.items() if k != key}, **branch}
                    candidate = self._fill(merged, json.loads(json.dumps(value)) if value is not _MISSING else _MISSING)
                    if Draft4Validator(merged).is_valid(candidate):
                        return candidate
                return value if value is not _MISSING else self._fill(branches[0])
        if "allOf" in schema:
            for member in schema["allOf"]:
                value = self._fill(member, value)
            return value
        kinds = _types(schema)
        if value is _MISSING:
            if "null" in kinds:
                return None
            if "enum" in schema:
                return schema.get("default", schema["enum"][0])
            if "default" in schema:
                return schema["default"]
            if "object" in kinds or "properties" in schema:
                value = {}
            elif "array" in kinds:
                return []
            elif "string" in kinds:
                return {"date-time": PLACEHOLDER_TIME, "uri": "https://github.example/placeholder",
                        "email": "placeholder@github.example"}.get(schema.get("format"), "")
            elif "integer" in kinds or "number" in kinds:
                return schema.get("minimum", 1)
            elif "boolean" in kinds:
                return False
            else:
                return None
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value and name in properties:
                    value[name] = self._fill(properties[name])
            for name, sub in list(value.items()):
                if name in properties and isinstance(sub, (dict, list)):
                    value[name] = self._fill(properties[name], sub)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            value = [self._fill(schema["items"], item) for item in value]
        return value


    def report(self) -> dict[str, Any]:
        with self.lock:
            return {
                "source": self.source,
                "stand_in": str(Path(__file__).resolve()),
                "operations_vendored": len(self.operations),
                "requests_checked": self.requests_checked,
                "replies_checked": self.replies_checked,
                "operations": dict(sorted(self.by_operation.items())),
                "violations": list(self.violations),
            }


CONFORMANCE = Conformance()


def user_json(login: str, kind: str = "User") -> dict[str, Any]:
    """A user as GitHub nests one in its objects (the rest of its fields: placeholders)."""
    return {"login": login, "id": 1 + sum(map(ord, login)), "type": kind, "html_url": f"https://github.example/{login}"}


def repo_ref(base: str, full_name: str) -> dict[str, Any]:
    """A repository as GitHub nests one in a pull request's head and base."""
    owner, name = full_name.split("/", 1)
    return {"full_name": full_name, "name": name, "owner": user_json(owner, "Organization"),
            "url": f"{base}/repos/{full_name}", "html_url": f"https://github.example/{full_name}"}


def repo_json(base: str, full_name: str, repo: dict[str, Any]) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": repo["id"],
        "name": name,
        "full_name": full_name,
        "owner": user_json(owner, "Organization"),
        "private": True,
        "default_branch": repo["default_branch"],
        "url": f"{base}/repos/{full_name}",
        "html_url": f"https://github.example/{full_name}",
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    # --- plumbing -------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://{self.headers.get('Host')}"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        operation = getattr(self, "_operation", None)
        if operation:
            payload = CONFORMANCE.completed(operation, status, payload)
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = dict(headers or {})
        if self.command == "GET" and status == 200 and not self.path.startswith("/_standin/"):
            # Conditional requests, as GitHub answers them: an unchanged resource is a bodiless 304.
            etag = 'W/"' + hashlib.sha1(body).hexdigest() + '"'
            headers["ETag"] = etag
            if self.headers.get("If-None-Match") == etag:
                status, body, payload = 304, b"", None
        if operation:
            CONFORMANCE.check_reply(operation, self.command, urlparse(self.path).path, status, payload)
        if getattr(self, "_record", None) is not None:
            self._record["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"message": message, "documentation_url": "https://docs.github.com/rest"}, headers)

    def _handle(self, method: str) -> None:
        self._operation = self._record = None  # the handler lives as long as a keep-alive connection
        url = urlparse(self.path)
        raw = self._body()
        if url.path.startswith("/_standin/"):
            return self._admin(method, url.path, raw)
        self._record = {
            "method": method,
            "path": url.path,
            "query": url.query,
            "authorization": self.headers.get("Authorization", ""),
            "body": raw.decode("utf-8", "replace"),
            "time": time.time(),
        }
        # What GitHub would say of the request (recorded as violations); a body that its schema refuses
        # gets GitHub's 422, after any injected fault (an outage answers before validation does).
        self._operation, refused = CONFORMANCE.check_request(method, url.path, url.query, raw)
        with STATE.lock:
            STATE.requests.append(self._record)
            fault = self._take_fault(method, url.path)
        if fault:
            if fault.get("hang"):
                time.sleep(float(fault["hang"]))
                return self._error(504, "hung")
            headers = dict(fault.get("headers") or {})
            if "X-RateLimit-Reset-In" in headers:
                headers["X-RateLimit-Reset"] = str(int(time.time()) + int(headers.pop("X-RateLimit-Reset-In")))
            return self._error(int(fault["status"]), fault.get("message", "injected fault"), headers)
        if refused:
            return self._error(422, "Invalid request. The body does not match GitHub's schema (/_standin/conformance).")
        if url.path.startswith("/app/installations/"):
            return self._installation_token(url.path)
        if url.path == "/app" and method == "GET":  # the App itself, asked with its JWT
            return self._app()
        if not self._authorized():
            return self._error(401, "Bad credentials")
        if url.path == "/user" and method == "GET":  # who the token belongs to
            return self._send(200, {"login": self._login(), "id": 1, "type": "User"})
        team = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", url.path)
        if team and method == "GET":
            members = STATE.teams.get(f"{team.group(1)}/{team.group(2)}")
            if members is None or unquote(team.group(3)) not in members:
                return self._send(404)  # GitHub's description: a bodiless 404 for "not a member"
            return self._send(200, {"url": f"{self.base}{url.path}", "role": "member", "state": "active"})
        try:
            self._route(method, url.path, parse_qs(url.query), json.loads(raw) if raw else {})
        except KeyError as exc:
            self._error(404, f"Not Found ({exc})")

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        for fault in STATE.faults:
            if fault.get("method", method) == method and re.search(fault.get("path", ".*"), path):
                if fault.get("times") is not None:
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        STATE.faults.remove(fault)
                return fault
        return None

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = header.split(" ", 1)[1] if " " in header else ""
        return token in STATE.tokens or token in STATE.installation_tokens

    def _login(self) -> str:
        """Who GitHub shows as the writer: the token's user, or an installation token's App bot."""
        header = self.headers.get("Authorization", "")
        token = header.split(" ", 1)[1] if " " in header else ""
        if token in STATE.installation_tokens and STATE.app:
            return f"{STATE.app.get('slug', 'manager-app')}[bot]"
        return STATE.tokens.get(token, "manager-bot")

    def _app_claims(self) -> dict[str, Any] | None:
        header = self.headers.get("Authorization", "")
        if not STATE.app or not header.startswith("Bearer "):
            return None
        try:
            return jwt.decode(header.split(" ", 1)[1], STATE.app["public_key"], algorithms=["RS256"])
        except jwt.PyJWTError:
            return None

    def _app(self) -> None:
        claims = self._app_claims()
        if claims is None or str(claims.get("iss")) != str(STATE.app["app_id"]):
            return self._error(401, "A JSON web token could not be decoded")
        slug = STATE.app.get("slug", "manager-app")
        self._send(200, {
            "id": int(STATE.app["app_id"]), "slug": slug, "name": slug, "owner": user_json("acme", "Organization"),
            "html_url": f"https://github.example/apps/{slug}", "permissions": STATE.app.get("permissions", {}),
            "events": [],
        })

    def _installation_token(self, path: str) -> None:
        match = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        header = self.headers.get("Authorization", "")
        if not match or not STATE.app or not header.startswith("Bearer "):
            return self._error(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(header.split(" ", 1)[1], STATE.app["public_key"], algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            return self._error(401, f"A JSON web token could not be decoded ({exc})")
        if str(claims.get("iss")) != str(STATE.app["app_id"]) or match.group(1) != str(STATE.app["installation_id"]):
            return self._error(404, "Not Found")
        token = f"ghs_installation{STATE.new_id()}"
        STATE.installation_tokens.add(token)
        expires = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # The installation's permissions, as a token asked without narrowing them carries (doctor reads them);
        # a test sets them with the app (`/_standin/app`, key `permissions`).
        permissions = STATE.app.get("permissions", {})
        self._send(
            201, {"token": token, "expires_at": expires, "permissions": permissions, "repository_selection": "all"}
        )

    # --- REST -----------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> None:
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
        if not match:
            return self._error(404, "Not Found")
        full_name, rest = match.group(1), match.group(2) or ""
        repo = STATE.repos.get(full_name)
        if repo is None or not repo.get("accessible", True):
            return self._error(404, "Not Found")
        base = f"{self.base}/repos/{full_name}"
        routes = [
            ("GET", r"", lambda m: self._send(200, repo_json(self.base, full_name, repo))),
            ("GET", r"/branches/(?P<branch>[^/]+)", lambda m: self._branch(repo, unquote(m["branch"]), base)),
            ("GET", r"/commits/(?P<sha>[0-9a-f]{7,40})", lambda m: self._commit(repo, m["sha"], base)),
            (
                "GET",
                r"/commits/tags(/|%2F)(?P<tag>.+)",
                lambda m: self._commit(repo, repo["tags"][unquote(m["tag"])], base),
            ),
            ("GET", r"/contents/(?P<path>.+)", lambda m: self._contents(repo, m["path"], query, base)),
            ("POST", r"/statuses/(?P<sha>[0-9a-f]{40})", lambda m: self._status(repo, m["sha"], body, base)),
            ("GET", r"/commits/(?P<sha>[0-9a-f]{40})/pulls", lambda m: self._commit_pulls(repo, m["sha"], base)),
            (
                "GET",
                r"/pulls",
                lambda m: self._send(200, [self._pull_json(repo, n, base) for n in sorted(repo["pulls"])]),
            ),
            ("GET", r"/pulls/(?P<number>\d+)", lambda m: self._pull(repo, int(m["number"]), base)),
            ("GET", r"/pulls/(?P<number>\d+)/files", lambda m: self._pull_files(repo, int(m["number"]))),
            ("GET", r"/pulls/(?P<number>\d+)/reviews", lambda m: self._send(200, repo["reviews"].get(m["number"], []))),
            (
                "GET",
                r"/compare/(?P<base>[0-9a-f]{40})\.\.\.(?P<head>[0-9a-f]{40})",
                lambda m: self._compare(repo, m["base"], m["head"], base),
            ),
            ("GET", r"/issues/(?P<number>\d+)", lambda m: self._issue(repo, int(m["number"]), base)),
            ("GET", r"/issues", lambda m: self._list_issues(repo, query, base)),
            ("POST", r"/issues", lambda m: self._create_issue(repo, body, base)),
            ("PATCH", r"/issues/(?P<number>\d+)", lambda m: self._edit_issue(repo, int(m["number"]), body, base)),
            (
                "GET",
                r"/issues/(?P<number>\d+)/comments",
                lambda m: self._list_comments(repo, int(m["number"]), query, base),
            ),
            (
                "POST",
                r"/issues/(?P<number>\d+)/comments",
                lambda m: self._create_comment(repo, int(m["number"]), body, base),
            ),
            ("PATCH", r"/issues/comments/(?P<id>\d+)", lambda m: self._edit_comment(repo, int(m["id"]), body, base)),
            ("DELETE", r"/issues/comments/(?P<id>\d+)", lambda m: self._delete_comment(repo, int(m["id"]))),
            (
                "GET",
                r"/commits/(?P<sha>[0-9a-f]{40})/comments",
                lambda m: self._list_commit_comments(repo, m["sha"], query, base),
            ),
            (
                "POST",
                r"/commits/(?P<sha>[0-9a-f]{40})/comments",
                lambda m: self._commit_comment(repo, m["sha"], body, base),
            ),
            ("POST", r"/check-runs", lambda m: self._create_check_run(repo, body, base)),
            ("PATCH", r"/check-runs/(?P<id>\d+)", lambda m: self._update_check_run(repo, int(m["id"]), body, base)),
            (
                "GET",
                r"/commits/(?P<ref>[^/]+)/check-runs",
                lambda m: self._list_check_runs(repo, m["ref"], query, base),
            ),
            (
                "GET",
                r"/collaborators/(?P<login>[^/]+)/permission",
                lambda m: self._permission(repo, unquote(m["login"])),
            ),
            ("GET", r"/hooks", lambda m: self._list_hooks(repo, query, base)),
            ("POST", r"/hooks", lambda m: self._create_hook(repo, body, base)),
        ]
        for route_method, pattern, handler in routes:
            found = re.fullmatch(pattern, rest)
            if found and route_method == method:
                with STATE.lock:
                    return handler(found.groupdict())
        self._error(404, "Not Found")

    def _branch(self, repo, branch, base):
        sha = repo["branches"][branch]
        self._send(200, {"name": branch, "commit": {"sha": sha, "url": f"{base}/commits/{sha}"}, "protected": False})

    def _commit(self, repo, sha, base):
        full = next((s for s in repo["commits"] if s.startswith(sha)), None)
        if full is None:
            return self._error(422, f"No commit found for SHA: {sha}")
        author = repo["commit_authors"].get(full)
        self._send(
            200,
            {
                "sha": full,
                "url": f"{base}/commits/{full}",
                "commit": {"message": "commit"},
                "files": [],
                "author": user_json(author) if author else None,
            },
        )

    def _contents(self, repo, path, query, base):
        ref = (query.get("ref") or [repo["branches"][repo["default_branch"]]])[0]
        ref = repo["branches"].get(ref, ref)
        if ref not in repo["commits"]:
            return self._error(404, f"No commit found for the ref {ref}")
        files = repo["commits"][ref]
        if path not in files:
            return self._error(404, "Not Found")
        content = files[path].encode()
        self._send(
            200,
            {
                "type": "file",
                "encoding": "base64",
                "size": len(content),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": base64.b64encode(content).decode(),
                "sha": f"blob{abs(hash(content)) % 10**12}",
                "url": f"{base}/contents/{path}?ref={ref}",
            },
        )

    def _status(self, repo, sha, body, base):
        if sha not in repo["commits"]:
            return self._error(422, "No commit found for SHA")
        if len(body.get("description") or "") > 140:
            return self._error(422, "description is too long (maximum is 140 characters)")
        status = {"id": STATE.new_id(), "url": f"{base}/statuses/{sha}", "created_at": now_iso(), **body}
        repo["statuses"].append({**status, "sha": sha})  # tests look statuses up by commit
        self._send(201, status)

    def _pull_json(self, repo, number, base):
        pull = repo["pulls"][number]
        own = base.split("/repos/", 1)[1]
        return {
            "id": number + 5000,
            "number": number,
            "state": "open",
            "title": f"PR {number}",
            "url": f"{base}/pulls/{number}",
            "issue_url": f"{base}/issues/{number}",
            "head": {
                "sha": pull["head_sha"],
                "ref": pull.get("head_ref", "feature"),
                # A fork that was deleted since: GitHub sends `head.repo: null`.
                "repo": repo_ref(self.base, head_repo) if (head_repo := pull.get("head_repo", own)) else None,
            },
            "base": {
                "ref": pull.get("base_ref", "main"),
                "sha": repo["branches"].get(pull.get("base_ref", "main"), "0" * 40),
                "repo": repo_ref(self.base, own),
            },
            "user": user_json(pull.get("author", "dev")),
            "author_association": pull.get("author_association", "MEMBER"),
        }

    def _commit_pulls(self, repo, sha, base):
        numbers = [n for n, pull in repo["pulls"].items() if pull["head_sha"] == sha]
        self._send(200, [self._pull_json(repo, n, base) for n in sorted(numbers)])

    def _pull(self, repo, number, base):
        self._send(200, self._pull_json(repo, number, base))

    @staticmethod
    def _diff(repo, old_sha, new_sha):
        old, new = repo["commits"].get(old_sha, {}), repo["commits"][new_sha]
        return sorted(path for path in set(old) | set(new) if old.get(path) != new.get(path))

    def _pull_files(self, repo, number):
        pull = repo["pulls"][number]
        base_sha = repo["branches"][pull.get("base_ref", repo["default_branch"])]
        files = self._diff(repo, base_sha, pull["head_sha"])
        self._send(200, [{"filename": f, "status": "modified", "sha": "0" * 40} for f in files])

    def _compare(self, repo, old, new, base):
        if old not in repo["commits"] or new not in repo["commits"]:
            return self._error(404, "Not Found")
        files = [{"filename": f, "status": "modified", "sha": "0" * 40} for f in self._diff(repo, old, new)]
        self._send(
            200,
            {
                "url": f"{base}/compare/{old}...{new}",
                "status": "ahead",
                "ahead_by": 1,
                "behind_by": 0,
                "total_commits": 1,
                "commits": [],
                "files": files,
            },
        )

    def _pull_issue_json(self, repo, number, base):
        pull = repo["pulls"][number]
        return {
            "id": number + 7000,
            "number": number,
            "state": "open",
            "title": f"PR {number}",
            "url": f"{base}/issues/{number}",
            "comments_url": f"{base}/issues/{number}/comments",
            "pull_request": {"url": f"{base}/pulls/{number}"},
            "user": user_json(pull.get("author", "dev")),
        }

    def _issue(self, repo, number, base):
        issues = repo.setdefault("issues", {})
        if number in issues:
            return self._send(200, self._issue_json(issues[number], base))
        self._send(200, self._pull_issue_json(repo, number, base))

    # Issues, as GitHub lists them: pull requests are issues too (with a `pull_request` key); numbers are shared.
    def _issue_json(self, issue, base):
        return {
            "id": issue["number"] + 9000,
            "number": issue["number"],
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "state_reason": issue.get("state_reason"),
            "labels": [],
            "user": user_json(issue["user"]),
            "url": f"{base}/issues/{issue['number']}",
            "html_url": f"https://github.example/issues/{issue['number']}",
            "comments_url": f"{base}/issues/{issue['number']}/comments",
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue.get("closed_at"),
        }

    def _list_issues(self, repo, query, base):
        state = (query.get("state") or ["open"])[0]
        issues = [self._issue_json(i, base) for i in repo.setdefault("issues", {}).values()]
        issues += [self._pull_issue_json(repo, n, base) for n in repo["pulls"]]
        shown = sorted((i for i in issues if state == "all" or i["state"] == state), key=lambda i: -i["number"])
        chunk, headers = self._paginate(shown, query, f"{base}/issues")
        self._send(200, chunk, headers)

    def _create_issue(self, repo, body, base):
        if not body.get("title"):
            return self._error(422, "Validation Failed: title is required")
        if len(body.get("body") or "") > 65536:
            return self._error(422, "body is too long (maximum is 65536 characters)")
        issues = repo.setdefault("issues", {})
        issue = {
            "number": max([0, *repo["pulls"], *issues]) + 1,
            "title": body["title"],
            "body": body.get("body") or "",
            "state": "open",
            "user": self._login(),
            "created_at": now_iso(),
            "updated_at": now_iso(),
            "edits": 0,
        }
        issues[issue["number"]] = issue
        self._send(201, self._issue_json(issue, base))

    def _edit_issue(self, repo, number, body, base):
        issue = repo.setdefault("issues", {})[number]
        if body.get("state") not in (None, "open", "closed") or len(body.get("body") or "") > 65536:
            return self._error(422, "Validation Failed")
        if body.get("state") == "closed" and issue["state"] != "closed":
            issue["closed_at"] = now_iso()
        issue.update({k: body[k] for k in ("title", "body", "state", "state_reason") if k in body})
        issue.update(updated_at=now_iso(), edits=issue["edits"] + 1)
        self._send(200, self._issue_json(issue, base))

    def _comment_json(self, comment, base):
        return {
            "id": comment["id"],
            "body": comment["body"],
            "user": user_json(comment.get("user", "manager-bot")),
            "url": f"{base}/issues/comments/{comment['id']}",
            "html_url": f"https://github.example/comment/{comment['id']}",
            "created_at": comment["created_at"],
            "updated_at": comment["updated_at"],
        }

    def _paginate(self, items, query, url):
        per_page = int((query.get("per_page") or [PER_PAGE_DEFAULT])[0])
        page = int((query.get("page") or [1])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{url}?per_page={per_page}&page={page + 1}>; rel="next"'
        return chunk, headers

    def _list_comments(self, repo, number, query, base):
        if number not in repo["pulls"] and number not in repo.setdefault("issues", {}):
            return self._error(404, "Not Found")
        comments = [c for c in repo["issue_comments"].values() if c["issue"] == number]
        chunk, headers = self._paginate(comments, query, f"{base}/issues/{number}/comments")
        self._send(200, [self._comment_json(c, base) for c in chunk], headers)

    def _create_comment(self, repo, number, body, base):
        if number not in repo["pulls"] and number not in repo.setdefault("issues", {}):
            return self._error(404, "Not Found")
        if len(body.get("body", "")) > 65536:
            return self._error(422, "body is too long (maximum is 65536 characters)")
        comment = {
            "id": STATE.new_id(),
            "issue": number,
            "body": body["body"],
            "user": self._login(),
            "created_at": now_iso(),
            "updated_at": now_iso(),
            "edits": 0,
        }
        repo["issue_comments"][comment["id"]] = comment
        self._send(201, self._comment_json(comment, base))

    def _edit_comment(self, repo, comment_id, body, base):
        comment = repo["issue_comments"][comment_id]
        if len(body.get("body", "")) > 65536:
            return self._error(422, "body is too long (maximum is 65536 characters)")
        comment.update(body=body["body"], updated_at=now_iso(), edits=comment["edits"] + 1)
        self._send(200, self._comment_json(comment, base))

    def _delete_comment(self, repo, comment_id):
        del repo["issue_comments"][comment_id]
        self._send(204)

    def _list_commit_comments(self, repo, sha, query, base):
        comments = [c for c in repo["commit_comments"] if c["commit_id"] == sha]
        chunk, headers = self._paginate(comments, query, f"{base}/commits/{sha}/comments")
        self._send(200, chunk, headers)

    def _commit_comment(self, repo, sha, body, base):
        if sha not in repo["commits"]:
            return self._error(422, "No commit found for SHA")
        comment = {
            "id": STATE.new_id(),
            "commit_id": sha,
            "body": body["body"],
            "user": user_json(self._login()),
            "url": f"{base}/comments/{STATE.next_id}",
            "html_url": "https://github.example/c",
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        repo["commit_comments"].append(comment)
        self._send(201, comment)

    # Check runs, as GitHub keeps them: a GitHub App's only (a token gets 403), annotations added to those a
    # check run has at each write, 50 at most per request (the description's maxItems: 422 past it).
    def _check_run_json(self, run, base):
        app = STATE.app or {}
        output = run["output"]
        return {
            "id": run["id"],
            "name": run["name"],
            "head_sha": run["head_sha"],
            "external_id": run.get("external_id"),
            "status": run["status"],
            "conclusion": run.get("conclusion"),
            "details_url": run.get("details_url"),
            "started_at": run["started_at"],
            "completed_at": run.get("completed_at"),
            "url": f"{base}/check-runs/{run['id']}",
            "html_url": f"https://github.example/runs/{run['id']}",
            "check_suite": {"id": 1},
            "output": {"title": output.get("title"), "summary": output.get("summary"), "text": output.get("text"),
                       "annotations_count": len(run["annotations"]),
                       "annotations_url": f"{base}/check-runs/{run['id']}/annotations"},
            "app": {"id": int(app.get("app_id", 1)), "slug": app.get("slug", "manager-app"),
                    "name": app.get("slug", "manager-app"), "owner": user_json("acme", "Organization"),
                    "permissions": app.get("permissions", {}), "events": []},
            "pull_requests": [],
        }

    def _checks_refused(self):
        """403 unless an installation token of an App that may write checks (a token may never)."""
        header = self.headers.get("Authorization", "")
        token = header.split(" ", 1)[1] if " " in header else ""
        permissions = (STATE.app or {}).get("permissions")
        if token not in STATE.installation_tokens or (permissions is not None and permissions.get("checks") != "write"):
            self._error(403, "Resource not accessible by integration")
            return True
        return False

    def _write_check_run(self, run, body):
        if body.get("status") == "completed" and not body.get("conclusion") and not run.get("conclusion"):
            return "Validation Failed: conclusion is required when status is completed"
        for key in ("name", "external_id", "details_url", "status", "conclusion", "actions"):
            if key in body:
                run[key] = body[key]
        if body.get("conclusion"):
            run.update(status="completed", completed_at=now_iso())
        output = body.get("output") or {}
        run["output"].update({k: output[k] for k in ("title", "summary", "text") if k in output})
        run["annotations"] += output.get("annotations") or []
        run["requests"] += 1
        return None

    def _create_check_run(self, repo, body, base):
        if self._checks_refused():
            return None
        if body.get("head_sha") not in repo["commits"]:
            return self._error(422, "No commit found for SHA")
        run = {"id": STATE.new_id(), "head_sha": body["head_sha"], "name": body["name"], "status": "queued",
               "started_at": now_iso(), "output": {}, "annotations": [], "requests": 0}
        problem = self._write_check_run(run, body)
        if problem:
            return self._error(422, problem)
        repo.setdefault("check_runs", []).append(run)
        self._send(201, self._check_run_json(run, base))

    def _update_check_run(self, repo, run_id, body, base):
        if self._checks_refused():
            return None
        run = next((r for r in repo.setdefault("check_runs", []) if r["id"] == run_id), None)
        if run is None:
            return self._error(404, "Not Found")
        problem = self._write_check_run(run, body)
        if problem:
            return self._error(422, problem)
        self._send(200, self._check_run_json(run, base))

    def _list_check_runs(self, repo, ref, query, base):
        if self._checks_refused():
            return None
        sha = repo["branches"].get(ref, ref)
        runs = [r for r in repo.setdefault("check_runs", []) if r["head_sha"] == sha]
        if query.get("check_name"):
            runs = [r for r in runs if r["name"] == query["check_name"][0]]
        if query.get("app_id"):  # the stand-in has one App: another App's id finds none of its check runs
            runs = [r for r in runs if str((STATE.app or {}).get("app_id", 1)) == query["app_id"][0]]
        runs = sorted(runs, key=lambda r: -r["id"])
        if (query.get("filter") or ["latest"])[0] == "latest":
            runs = [r for i, r in enumerate(runs) if r["name"] not in {o["name"] for o in runs[:i]}]
        chunk, headers = self._paginate(runs, query, f"{base}/commits/{ref}/check-runs")
        self._send(200, {"total_count": len(runs), "check_runs": [self._check_run_json(r, base) for r in chunk]},
                   headers)

    def _permission(self, repo, login):
        """A collaborator's permission as GitHub states it (`permissions` of the repository: login -> level)."""
        permission = repo.setdefault("permissions", {}).get(login, "none")
        self._send(200, {"permission": permission, "role_name": permission, "user": user_json(login)})

    # Webhooks, as GitHub shows them: the secret is kept (tests read it from the request log) but
    # answered as "********". A token that may not manage hooks is a fault on `/hooks` (403 or 404).
    def _hook_json(self, hook, base):
        config = dict(hook["config"])
        if "secret" in config:
            config["secret"] = "********"
        return {
            "type": "Repository",
            "id": hook["id"],
            "name": "web",
            "active": hook["active"],
            "events": hook["events"],
            "config": config,
            "updated_at": hook["created_at"],
            "created_at": hook["created_at"],
            "url": f"{base}/hooks/{hook['id']}",
            "test_url": f"{base}/hooks/{hook['id']}/test",
            "ping_url": f"{base}/hooks/{hook['id']}/pings",
            "deliveries_url": f"{base}/hooks/{hook['id']}/deliveries",
            "last_response": {"code": None, "status": "unused", "message": None},
        }

    def _list_hooks(self, repo, query, base):
        hooks = repo.setdefault("hooks", [])
        chunk, headers = self._paginate(hooks, query, f"{base}/hooks")
        self._send(200, [self._hook_json(h, base) for h in chunk], headers)

    def _create_hook(self, repo, body, base):
        config = body.get("config") or {}
        if body.get("name", "web") != "web" or not config.get("url"):
            return self._error(422, "Validation Failed: config.url is required")
        hooks = repo.setdefault("hooks", [])
        if any(h["config"].get("url") == config["url"] for h in hooks):
            return self._error(422, "Validation Failed: Hook already exists on this repository")
        hook = {
            "id": STATE.new_id(),
            "active": body.get("active", True),
            "events": body.get("events") or ["push"],
            "config": config,
            "created_at": now_iso(),
        }
        hooks.append(hook)
        self._send(201, self._hook_json(hook, base))

    # --- test control ---------------------------------------------------------------

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        data = json.loads(raw) if raw else {}
        with STATE.lock:
            if method == "POST" and path == "/_standin/tokens":
                STATE.tokens[data["token"]] = data.get("login") or "manager-bot"
                return self._send(200, {})
            if method == "POST" and path == "/_standin/teams":
                STATE.teams[f"{data['org']}/{data['slug']}"] = set(data["members"])
                return self._send(200, {})
            if method == "POST" and path == "/_standin/app":
                STATE.app = data
                return self._send(200, {})
            if method == "POST" and path == "/_standin/repos":
                STATE.repos[data["full_name"]] = {
                    "id": STATE.new_id(),
                    "default_branch": data.get("default_branch", "main"),
                    "branches": data.get("branches", {}),
                    "commits": data.get("commits", {}),
                    "pulls": {int(p["number"]): p for p in data.get("pulls", [])},
                    "accessible": data.get("accessible", True),
                    "reviews": {str(k): v for k, v in data.get("reviews", {}).items()},
                    "commit_authors": data.get("commit_authors", {}),
                    # tag name -> commit (GET /commits/tags/NAME resolves it, as GitHub's commits endpoint does)
                    "tags": data.get("tags", {}),
                    # login -> admin, write, read (GET /collaborators/{login}/permission)
                    "permissions": data.get("permissions", {}),
                    "check_runs": [],
                    "statuses": [],
                    "issue_comments": {},
                    "commit_comments": [],
                }
                return self._send(200, {})
            if method == "POST" and path == "/_standin/faults":
                STATE.faults.extend(data["faults"])
                return self._send(200, {})
            if method == "DELETE" and path == "/_standin/faults":
                STATE.faults.clear()
                return self._send(200, {})
            if method == "GET" and path == "/_standin/conformance":
                return self._send(200, CONFORMANCE.report())
            if method == "GET" and path == "/_standin/requests":
                return self._send(200, STATE.requests)
            if method == "DELETE" and path == "/_standin/requests":
                STATE.requests.clear()
                return self._send(200, {})
            match = re.fullmatch(r"/_standin/repos/([^/]+/[^/]+)/update", path)
            if method == "POST" and match:
                repo = STATE.repos[match.group(1)]
                repo["commits"].update(data.get("commits", {}))
                repo["branches"].update(data.get("branches", {}))
                if "pulls" in data:
                    repo["pulls"] = {int(p["number"]): p for p in data["pulls"]}
                repo["reviews"].update({str(k): v for k, v in data.get("reviews", {}).items()})
                repo["commit_authors"].update(data.get("commit_authors", {}))
                repo["tags"].update(data.get("tags", {}))
                repo.setdefault("permissions", {}).update(data.get("permissions", {}))
                return self._send(200, {})
            # Written by someone else (another user's comment or issue), as GitHub would show it.
            match = re.fullmatch(r"/_standin/repos/([^/]+/[^/]+)/comments", path)
            if method == "POST" and match:
                comment = {"id": STATE.new_id(), "issue": int(data["issue"]), "body": data["body"],
                           "user": data["user"], "created_at": now_iso(), "updated_at": now_iso(), "edits": 0}
                STATE.repos[match.group(1)]["issue_comments"][comment["id"]] = comment
                return self._send(200, {"id": comment["id"]})
            match = re.fullmatch(r"/_standin/repos/([^/]+/[^/]+)/issues", path)
            if method == "POST" and match:
                repo = STATE.repos[match.group(1)]
                issues = repo.setdefault("issues", {})
                number = max([0, *repo["pulls"], *issues]) + 1
                issues[number] = {"number": number, "title": data["title"], "body": data["body"], "state": "open",
                                  "user": data["user"], "created_at": now_iso(), "updated_at": now_iso(), "edits": 0}
                return self._send(200, {"number": number})
            match = re.fullmatch(r"/_standin/repos/([^/]+/[^/]+)", path)
            if method == "GET" and match:
                repo = STATE.repos[match.group(1)]
                return self._send(
                    200,
                    {
                        "statuses": repo["statuses"],
                        "issue_comments": list(repo["issue_comments"].values()),
                        "commit_comments": repo["commit_comments"],
                        "issues": list(repo.setdefault("issues", {}).values()),
                        "check_runs": repo.setdefault("check_runs", []),
                    },
                )
        self._error(404, "unknown stand-in control")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
