"""The Dagster instance of the manager: DAGSTER_HOME with the repo's dagster.yaml in it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

from manager_pipeline.settings import Settings


def prepare_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME; give it the manager's dagster.yaml unless it has its own."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    template = settings.config_path.parent / "dagster.yaml"
    if not target.exists() and template.is_file() and template.resolve() != target.resolve():
        shutil.copyfile(template, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance(settings: Settings) -> DagsterInstance:
    return DagsterInstance.from_config(str(prepare_home(settings)))
