from __future__ import annotations

from pathlib import Path

from manager_pipeline.feedback.redact import redact_text


class LocalReportSink:
    """Reports as markdown files under the Dagster instance: ``<root>/<source>/<environment>/<run_id>.md``."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, source: str, environment: str, run_id: str, markdown: str) -> Path:
        folder = self.root / source / environment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}.md"
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(redact_text(markdown), encoding="utf-8")
        tmp.replace(path)
        return path
