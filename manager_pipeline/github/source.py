"""A source on GitHub: the variables file at the exact commit of the event, read through ``GitHubClient``."""

from __future__ import annotations

from dataclasses import dataclass

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.github.client import GitHubClient, GitHubError, NotAFile
from manager_pipeline.sources.document import VariablesDocument, decode_variables


@dataclass(frozen=True)
class GitHubSource:
    spec: SourceSpec
    client: GitHubClient

    def head_sha(self, branch: str) -> str:
        """The commit a branch points at now; a run records it and reads exactly that commit."""
        try:
            return self.client.head_sha(self.spec.repo, branch)
        except GitHubError as exc:
            raise SourceError(self._failure(f"branch `{branch}`", exc)) from None

    def fetch(self, event: DispatchEvent) -> VariablesDocument:
        branch = event.branch or self.spec.default_branch
        try:
            head = self.head_sha(branch)
        except SourceError:
            if not event.sha:
                raise
            head = None  # the branch is gone (a merged pull request's head): nothing to verify against
        sha = event.sha or head
        try:
            data = self.client.file_at(self.spec.repo, self.spec.variables_file, sha)
        except NotAFile:
            raise SourceError(
                f"source `{self.spec.name}`: {self.spec.variables_file} is a folder, not a file"
            ) from None
        except GitHubError as exc:
            raise SourceError(self._failure(f"{self.spec.variables_file} at commit {sha}", exc)) from None
        text = decode_variables(self.spec, data)
        return VariablesDocument(
            source=self.spec.name,
            text=text,
            location=f"{self.spec.repo}@{sha[:12]}:{self.spec.variables_file}",
            sha=sha,
            branch=branch,
            # Only the branch's head counts as on the branch: a commit that a newer push replaced,
            # or one the event merely says is there, is planned, never applied.
            branch_verified=sha == head,
            spec=self.spec,
        )

    def _failure(self, what: str, exc: GitHubError) -> str:
        where = f"source `{self.spec.name}` ({self.spec.repo})"
        if exc.not_found:
            return (
                f"{where}: {what} not found; check that the file and commit exist and that the manager's "
                "GitHub credentials can read the repository"
            )
        if exc.status in (401, 403):
            return f"{where}: GitHub refused access to {what} ({exc.reason}); check the manager's GitHub credentials"
        if exc.status == 422:
            return f"{where}: {what}: unknown commit ({exc.reason})"
        return f"{where}: reading {what} failed: GitHub answered {exc.status} ({exc.reason})"
