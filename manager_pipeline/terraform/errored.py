"""State Terraform could not save: kept per partition, pushed back before the partition's next plan.

When AWS (or the state backend) stops answering in the middle of an apply, Terraform writes the state
it holds to ``errored.tfstate`` in its working directory. Left there, the next run's plan would not
know what the failed apply made and would make it again. The apply keeps that file under the
partition's folder; the next init pushes it (``terraform state push``, which refuses a state older
than the backend's or from another lineage) before anything is planned.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from manager_pipeline.errors import TerraformError
from manager_pipeline.terraform.runner import ERRORED_STATE_FILE, StateLocked, TerraformRunner


def _folder(root: Path, source: str, environment: str) -> Path:
    return root / source / environment


def keep_errored_state(workdir: Path, root: Path, source: str, environment: str) -> Path | None:
    """Move the working directory's errored.tfstate, if any, to the partition's folder (0600)."""
    errored = workdir / ERRORED_STATE_FILE
    if not errored.is_file():
        return None
    folder = _folder(root, source, environment)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"{time.time_ns()}.tfstate"
    shutil.move(str(errored), target)
    os.chmod(target, 0o600)
    return target


def waiting_errored_states(root: Path, source: str, environment: str) -> list[Path]:
    return sorted(_folder(root, source, environment).glob("*.tfstate"))


def push_errored_states(runner: TerraformRunner, root: Path, source: str, environment: str) -> list[Path]:
    """Push each kept state of the partition, oldest first; a pushed one is renamed ``*.pushed``."""
    pushed = []
    for path in waiting_errored_states(root, source, environment):
        try:
            runner.state_push(path)
        except StateLocked:
            raise
        except TerraformError as exc:
            raise TerraformError(
                f"a failed apply left the state it could not save in {path}, and the backend refused it "
                f"({str(exc).splitlines()[-1]}): the state changed since. Compare the two, then push it by hand "
                f"(`terraform state push {path.name}` in an initialised working directory) or move the file away"
            ) from None
        path.rename(path.with_suffix(".pushed"))
        pushed.append(path)
    return pushed
