from __future__ import annotations

from pathlib import Path

from manager_pipeline.files import private_dir, write_private
from manager_pipeline.redact import redact_text


class LocalReportSink:
    """Reports as markdown files under the Dagster instance: ``<root>/<source>/<environment>/<run_id>.md``."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, source: str, environment: str, run_id: str, markdown: str) -> Path:
        # A report names what a plan changes: the owner's only, like the plans themselves.
        for folder in (self.root, self.root / source, self.root / source / environment):
            private_dir(folder)
        return write_private(self.root / source / environment / f"{run_id}.md", redact_text(markdown))

    def note(self, source: str, environment: str, run_id: str, line: str) -> bool:
        """Say under an earlier run's heading what became of its plan since (applied, refused, superseded by a
        newer one), so the report read later is not stale; whether that run has a report here."""
        path = self.root / source / environment / f"{run_id}.md"
        try:
            heading, _, rest = path.read_text().partition("\n")
        except OSError:
            return False
        write_private(path, redact_text(f"{heading}\n\n> **Since:** {line}\n{rest}"))
        return True
