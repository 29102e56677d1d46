from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.errors import SourceError

MAX_VARIABLES_BYTES = 256 * 1024


def decode_variables(spec: SourceSpec, raw: bytes) -> str:
    """The variables file's text, wherever it was read; too big or not UTF-8 is the source's error."""
    if len(raw) > MAX_VARIABLES_BYTES:
        raise SourceError(
            f"source `{spec.name}`: {spec.variables_file} is {len(raw)} bytes; "
            f"the limit is {MAX_VARIABLES_BYTES // 1024} KiB"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"source `{spec.name}`: {spec.variables_file} is not UTF-8 (byte {exc.start})") from None


@dataclass(frozen=True)
class VariablesDocument:
    """The raw variables.yml of one source, and exactly where it was read from."""

    source: str
    text: str
    location: str
    sha: str | None
    # The branch the event (or the checkout) names, and whether the commit was seen on it: a
    # claimed branch alone never lets a plan apply.
    branch: str | None
    branch_verified: bool = False
    # The source as the run resolved it: where another machine reads the same bytes again (handoff.py).
    spec: SourceSpec | None = field(default=None, compare=False, repr=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()
