"""State Terraform could not save: kept per partition, pushed back before the partition's next plan.

When AWS (or the state backend) stops answering in the middle of an apply, Terraform writes the state
it holds to ``errored.tfstate`` in its working directory. Left there, the next run's plan would not
know what the failed apply made and would make it again. The apply keeps that file under the
partition's folder; the next init pushes it (``terraform state push``, which refuses a state older
than the backend's or from another lineage) before anything is planned.

With an artifact bucket (``PLAN_ARTIFACT_BUCKET``), a kept state is also put there (``SharedStates``),
so the partition's next init pushes it whichever machine runs it (a Celery worker, a run's pod).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from manager_pipeline.errors import TerraformError
from manager_pipeline.terraform.runner import ERRORED_STATE_FILE, StateLocked, TerraformRunner


def _folder(root: Path, source: str, environment: str) -> Path:
    return root / source / environment


class SharedStates:
    """Kept states in the artifact bucket, under ``errored-state/<source>/<environment>/``."""

    def __init__(self, client: Any, bucket: str, prefix: str = "errored-state"):
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def _key(self, source: str, environment: str, name: str = "") -> str:
        return f"{self.prefix}/{source}/{environment}/{name}"

    def share(self, path: Path, source: str, environment: str) -> str:
        key = self._key(source, environment, path.name)
        self.client.upload_file(str(path), self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def gather(self, root: Path, source: str, environment: str) -> None:
        """Bring the partition's kept states this machine does not have into its folder."""
        folder = _folder(root, source, environment)
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(source, environment))
        for item in listed.get("Contents", []):
            path = folder / item["Key"].rsplit("/", 1)[1]
            if path.exists() or path.with_suffix(".pushed").exists():
                continue
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.client.download_file(self.bucket, item["Key"], str(path))
            os.chmod(path, 0o600)

    def pushed(self, path: Path, source: str, environment: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(source, environment, path.name))


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


def push_errored_states(
    runner: TerraformRunner, root: Path, source: str, environment: str, shared: SharedStates | None = None
) -> list[Path]:
    """Push each kept state of the partition (also those another machine kept, from the artifact bucket),
    oldest first; a pushed one is renamed ``*.pushed`` and leaves the bucket."""
    if shared is not None:
        shared.gather(root, source, environment)
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
        if shared is not None:
            shared.pushed(path, source, environment)
        pushed.append(path)
    return pushed
