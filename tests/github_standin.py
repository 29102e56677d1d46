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


def repo_json(base: str, full_name: str, repo: dict[str, Any]) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": repo["id"],
        "name": name,
        "full_name": full_name,
        "owner": {"login": owner, "id": 1, "type": "Organization"},
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
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = dict(headers or {})
        if self.command == "GET" and status == 200 and not self.path.startswith("/_standin/"):
            # Conditional requests, as GitHub answers them: an unchanged resource is a bodiless 304.
            etag = 'W/"' + hashlib.sha1(body).hexdigest() + '"'
            headers["ETag"] = etag
            if self.headers.get("If-None-Match") == etag:
                status, body = 304, b""
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
        if url.path.startswith("/app/installations/"):
            return self._installation_token(url.path)
        if not self._authorized():
            return self._error(401, "Bad credentials")
        if url.path == "/user" and method == "GET":  # who the token belongs to
            return self._send(200, {"login": self._login(), "id": 1, "type": "User"})
        team = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)/members/([^/]+)", url.path)
        if team and method == "GET":
            members = STATE.teams.get(f"{team.group(1)}/{team.group(2)}")
            if members is None:
                return self._error(404, "Not Found")
            return self._send(204) if team.group(3) in members else self._error(404, "Not Found")
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
        header = self.headers.get("Authorization", "")
        token = header.split(" ", 1)[1] if " " in header else ""
        return STATE.tokens.get(token, "manager-bot")

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
        self._send(201, {"token": token, "expires_at": expires, "permissions": {}, "repository_selection": "all"})

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
            ("GET", r"/branches/(?P<branch>[^/]+)", lambda m: self._branch(repo, m["branch"], base)),
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
                "author": {"login": author, "id": 9} if author else None,
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
        status = {"id": STATE.new_id(), "sha": sha, "url": f"{base}/statuses/{sha}", "created_at": now_iso(), **body}
        repo["statuses"].append(status)
        self._send(201, status)

    def _pull_json(self, repo, number, base):
        pull = repo["pulls"][number]
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
                "repo": {"full_name": pull.get("head_repo", base.split("/repos/", 1)[1])},
            },
            "base": {"ref": pull.get("base_ref", "main")},
            "user": {"login": pull.get("author", "dev")},
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
            "user": {"login": pull.get("author", "dev")},
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
            "user": {"login": issue["user"]},
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
            "user": {"login": comment.get("user", "manager-bot")},
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
            "user": {"login": self._login()},
            "url": f"{base}/comments/{STATE.next_id}",
            "html_url": "https://github.example/c",
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        repo["commit_comments"].append(comment)
        self._send(201, comment)

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
                return self._send(200, {})
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
