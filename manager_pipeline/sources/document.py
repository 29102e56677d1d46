from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class VariablesDocument:
    """The raw variables.yml of one source, and exactly where it was read from."""

    source: str
    text: str
    location: str
    sha: str | None
    branch: str | None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()
