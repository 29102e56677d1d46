"""The Dagster instance of the manager: DAGSTER_HOME with the repo's dagster.yaml in it."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from manager_pipeline.settings import Settings


def prepare_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME; link the manager's dagster.yaml into it unless it has a file of its own."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    template = settings.config_path.parent / "dagster.yaml"
    if template.is_file() and not target.exists() and template.resolve() != target.resolve():
        # A link, not a copy, so edits to the repository's dagster.yaml take effect.
        target.unlink(missing_ok=True)
        target.symlink_to(template.resolve())
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance(settings: Settings) -> DagsterInstance:
    return DagsterInstance.from_config(str(prepare_home(settings)))
