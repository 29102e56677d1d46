"""Change detection for path sources: a new variables file content is a dispatch event."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.sources.local import git_revision


@dataclass(frozen=True)
class LocalChange:
    source: str
    digest: str
    sequence: int
    sha: str | None
    branch: str | None


@dataclass(frozen=True)
class LocalWatchState:
    """Per source: the digest last seen and how many changes were seen so far."""

    seen: dict[str, tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> LocalWatchState:
        if not text:
            return cls()
        return cls({name: (str(v[0]), int(v[1])) for name, v in json.loads(text).items()})

    def to_json(self) -> str:
        return json.dumps({name: list(v) for name, v in sorted(self.seen.items())})


def detect_local_changes(config: ManagerConfig, state: LocalWatchState) -> tuple[list[LocalChange], LocalWatchState]:
    """Changes since ``state``; a source seen for the first time is recorded, not reported."""
    changes: list[LocalChange] = []
    seen = dict(state.seen)
    for spec in config.sources.values():
        if spec.path is None:
            continue
        variables = spec.path / spec.variables_file
        try:
            digest = hashlib.sha256(variables.read_bytes()).hexdigest()
        except OSError:
            continue
        previous = seen.get(spec.name)
        if previous is None:
            seen[spec.name] = (digest, 0)
        elif previous[0] != digest:
            sequence = previous[1] + 1
            seen[spec.name] = (digest, sequence)
            sha, branch = git_revision(spec.path)
            changes.append(LocalChange(spec.name, digest, sequence, sha, branch or spec.default_branch))
    for name in set(seen) - set(config.sources):
        del seen[name]
    return changes, LocalWatchState(seen)
