"""What `add-source` is asked: read by add.py and by the webhook's planning (webhook.py)."""

from __future__ import annotations

from dataclasses import dataclass

from manager_pipeline.config.model import DEFAULT_VARIABLES_FILE


@dataclass(frozen=True)
class AddRequest:
    name: str
    repo: str | None = None
    path: str | None = None
    variables_file: str = DEFAULT_VARIABLES_FILE
    environments: tuple[str, ...] | None = None
    webhook_url: str | None = None
    webhook: bool = True  # False: --no-webhook
    org_secret: bool = False  # sign with GITHUB_WEBHOOK_SECRET instead of a secret of the source's own
    dry_run: bool = False
