"""A source on GitHub: the variables file at the exact commit of the event."""

from __future__ import annotations

from dataclasses import dataclass

from github import Github, GithubException, UnknownObjectException

from manager_pipeline.config import SourceSpec
from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.sources.document import VariablesDocument, decode_variables


def _reason(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or exc.status)


@dataclass(frozen=True)
class GitHubSource:
    spec: SourceSpec
    github: Github

    def head_sha(self, branch: str) -> str:
        """The commit a branch points at now; a run records it and reads exactly that commit."""
        try:
            return self.github.get_repo(self.spec.repo).get_branch(branch).commit.sha
        except GithubException as exc:
            raise SourceError(self._failure(f"branch `{branch}`", exc)) from None

    def fetch(self, event: DispatchEvent) -> VariablesDocument:
        branch = event.branch or self.spec.default_branch
        sha = event.sha or self.head_sha(branch)
        try:
            content = self.github.get_repo(self.spec.repo).get_contents(self.spec.variables_file, ref=sha)
        except GithubException as exc:
            raise SourceError(self._failure(f"{self.spec.variables_file} at commit {sha}", exc)) from None
        if isinstance(content, list):
            raise SourceError(f"source `{self.spec.name}`: {self.spec.variables_file} is a folder, not a file")
        text = decode_variables(self.spec, content.decoded_content)
        return VariablesDocument(
            source=self.spec.name,
            text=text,
            location=f"{self.spec.repo}@{sha[:12]}:{self.spec.variables_file}",
            sha=sha,
            branch=branch,
        )

    def _failure(self, what: str, exc: GithubException) -> str:
        where = f"source `{self.spec.name}` ({self.spec.repo})"
        if isinstance(exc, UnknownObjectException) or exc.status == 404:
            return (
                f"{where}: {what} not found; check that the file and commit exist and that the manager's "
                "GitHub credentials can read the repository"
            )
        if exc.status in (401, 403):
            return f"{where}: GitHub refused access to {what} ({_reason(exc)}); check the manager's GitHub credentials"
        if exc.status == 422:
            return f"{where}: {what}: unknown commit ({_reason(exc)})"
        return f"{where}: reading {what} failed: GitHub answered {exc.status} ({_reason(exc)})"
