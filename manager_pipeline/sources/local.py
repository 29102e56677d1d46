"""A source that is a folder on this machine, usually a git checkout."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.sources.document import VariablesDocument, decode_variables

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def on_branch(folder: Path, sha: str, branch: str) -> bool:
    """Whether ``sha`` is reachable from the local branch ``branch``."""
    if not _COMMIT.match(sha):
        return False
    return _git(folder, "merge-base", "--is-ancestor", "--end-of-options", sha, f"refs/heads/{branch}") is not None


def git_revision(folder: Path) -> tuple[str | None, str | None]:
    """(HEAD commit, current branch) of the git repository holding ``folder``; None when unknown."""
    sha = _git(folder, "rev-parse", "--verify", "--quiet", "HEAD")
    branch = _git(folder, "symbolic-ref", "--quiet", "--short", "HEAD") if sha else None
    return sha, branch


@dataclass(frozen=True)
class LocalSource:
    """Reads a path source: the working tree, or a given commit through git."""

    spec: SourceSpec

    @property
    def folder(self) -> Path:
        assert self.spec.path is not None
        return self.spec.path

    @property
    def variables_path(self) -> Path:
        return self.folder / self.spec.variables_file

    def check_readable(self) -> None:
        """Fail early, before any run exists, when the variables file is not there."""
        if not self.folder.is_dir():
            raise SourceError(
                f"source `{self.spec.name}`: folder {self.folder} does not exist; fix its `path` in manager.yaml"
            )
        inside = self.folder.resolve()
        if self.variables_path.resolve() != inside and inside not in self.variables_path.resolve().parents:
            raise SourceError(
                f"source `{self.spec.name}`: {self.spec.variables_file} leads outside the source's folder "
                "(a symbolic link?); the manager reads only files inside it"
            )
        if not self.variables_path.is_file():
            raise SourceError(
                f"source `{self.spec.name}`: no variables file at {self.variables_path}; "
                f"create it or set `variables_file` for the source in manager.yaml"
            )

    def fetch(self, event: DispatchEvent) -> VariablesDocument:
        head, branch = git_revision(self.folder)
        if event.sha and not _COMMIT.match(event.sha):
            raise SourceError(
                f"source `{self.spec.name}`: `{event.sha[:80]}` is not a commit id; give the full 40-character hex id"
            )
        if event.sha and event.sha != head:
            text = self._read_at(event.sha)
            sha, committed = event.sha, True
        else:
            self.check_readable()
            raw = self.variables_path.read_bytes()
            text = decode_variables(self.spec, raw)
            # The working tree: it is the commit only when the file has no uncommitted change.
            sha = head
            committed = head is not None and self._unchanged_since(head)
        claimed = event.branch or branch or self.spec.default_branch
        return VariablesDocument(
            source=self.spec.name,
            text=text,
            location=str(self.variables_path),
            sha=sha,
            branch=claimed,
            branch_verified=bool(sha and committed and on_branch(self.folder, sha, claimed)),
            spec=self.spec,
        )

    def _unchanged_since(self, head: str) -> bool:
        return _git(self.folder, "diff", "--quiet", head, "--", self.spec.variables_file) is not None

    def _read_at(self, sha: str) -> str:
        # A blob by object name: nothing in the commit id can be read as an option or a path.
        done = subprocess.run(
            ["git", "-C", str(self.folder), "cat-file", "blob", f"{sha}:./{self.spec.variables_file}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(
                f"source `{self.spec.name}`: cannot read {self.spec.variables_file} at commit {sha}: "
                f"{reason[-1] if reason else 'git failed'}"
            )
        return decode_variables(self.spec, done.stdout)
