"""The Dagster instance of the manager: DAGSTER_HOME with the repo's dagster.yaml in it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster import DagsterInstance

from manager_pipeline.files import private_dir
from manager_pipeline.settings import Settings

# What the manager needs of any Dagster instance it runs on: one run per partition at a time, so a
# second run of a source and environment waits in the queue instead of racing for the state lock.
ONE_RUN_PER_PARTITION = "dagster/partition"
DEFAULT_INSTANCE = """# Written by manager-pipeline: no dagster.yaml beside manager.yaml or in DAGSTER_HOME.
storage:
  sqlite:
    base_dir:
      env: DAGSTER_HOME
concurrency:
  runs:
    max_concurrent_runs: 10
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: manager/kind
        value: drift
        limit: 2
run_queue:
  dequeue_interval_seconds: 1
  dequeue_use_threads: true
  dequeue_num_workers: 4
telemetry:
  enabled: false
nux:
  enabled: false
"""


def prepare_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME with a dagster.yaml: its own, else a link to the one beside manager.yaml,
    else the manager's defaults; one that lets two runs of a partition race is warned about."""
    home = settings.dagster_home
    # Its event log, run storage and the manager's database hold tfvars and plans: the owner's only.
    private_dir(home)
    target = home / "dagster.yaml"
    template = settings.config_path.parent / "dagster.yaml"
    if not target.exists():
        target.unlink(missing_ok=True)
        if template.is_file() and template.resolve() != target.resolve():
            # A link, not a copy, so edits to the repository's dagster.yaml take effect.
            target.symlink_to(template.resolve())
        else:
            target.write_text(DEFAULT_INSTANCE)
    elif ONE_RUN_PER_PARTITION not in target.read_text(encoding="utf-8", errors="replace"):
        print(
            f"warning: {target} sets no run concurrency limit on `{ONE_RUN_PER_PARTITION}`: two runs of one source "
            "and environment may start together and race for its state lock; add the `concurrency` block of the "
            "repository's dagster.yaml",
            file=sys.stderr,
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance(settings: Settings) -> DagsterInstance:
    return DagsterInstance.from_config(str(prepare_home(settings)))
