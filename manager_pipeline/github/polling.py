"""Conditional reads for polling: an unchanged answer (304) costs GitHub no rate limit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from github import Github, GithubException

from manager_pipeline.errors import ManagerError


class PollError(ManagerError):
    pass


@dataclass
class GitHubPoller:
    github: Github

    def _get(
        self, path: str, etag: str | None, parameters: dict[str, Any] | None = None
    ) -> tuple[int, Any, str | None]:
        headers = {"If-None-Match": etag} if etag else {}
        status, response_headers, body = self.github.requester.requestJson("GET", path, parameters, headers)
        new_etag = next((v for k, v in response_headers.items() if k.lower() == "etag"), None)
        if status == 304:
            return 304, None, etag
        if status >= 400:
            raise PollError(f"GET {path}: GitHub answered {status}")
        return status, json.loads(body) if body else None, new_etag

    def branch_head(self, repo: str, branch: str, etag: str | None) -> tuple[bool, str | None, str | None]:
        """(changed, head sha, etag); unchanged answers carry no sha."""
        status, data, etag = self._get(f"/repos/{repo}/branches/{branch}", etag)
        return (False, None, etag) if status == 304 else (True, data["commit"]["sha"], etag)

    def open_pulls(self, repo: str, etag: str | None) -> tuple[bool, list[dict[str, Any]], str | None]:
        status, data, etag = self._get(f"/repos/{repo}/pulls", etag, {"state": "open", "per_page": 100})
        if status == 304:
            return False, [], etag
        pulls = [
            {
                "number": p["number"],
                "sha": p["head"]["sha"],
                "ref": p["head"]["ref"],
                "author": (p.get("user") or {}).get("login"),
            }
            for p in data
        ]
        return True, pulls, etag

    def changed_files(self, repo: str, base: str, head: str) -> tuple[str, ...] | None:
        """Files changed from ``base`` to ``head``; None when GitHub cannot say (too many, or gone)."""
        try:
            comparison = self.github.get_repo(repo).compare(base, head)
            files = [f.filename for f in comparison.files]
        except GithubException:
            return None
        return None if len(files) >= 300 else tuple(files)

    def pull_files(self, repo: str, number: int) -> tuple[str, ...] | None:
        try:
            return tuple(f.filename for f in self.github.get_repo(repo).get_pull(number).get_files())
        except GithubException:
            return None
