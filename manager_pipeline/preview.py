"""`manager-pipeline preview`: plan every partition with a module (a branch of the manager repository,
a folder, or the current one) in one run of the `plan_fleet` job, in this process; print the summary."""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from manager_pipeline.errors import ManagerError


class PreviewError(ManagerError):
    """A module that cannot be had: a ref git does not know, a folder with no module."""


@contextmanager
def module_at_ref(terraform_dir: Path, ref: str) -> Iterator[Path]:
    """The module folder as it is at ``ref`` of the git repository that holds it, in a temporary folder."""
    if ref.startswith("-"):
        raise PreviewError(f"`{ref[:80]}` is not a git ref")
    try:
        top = Path(
            subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],
                cwd=terraform_dir,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        raise PreviewError(f"{terraform_dir} is not in a git repository: give --module FOLDER instead of --ref") from None
    inside = terraform_dir.resolve().relative_to(top.resolve()).as_posix()
    with tempfile.TemporaryDirectory(prefix="mp-preview-") as folder:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", f"{ref}:{inside}"],
            cwd=top,
            capture_output=True,
        )
        if archive.returncode != 0:
            cause = (archive.stderr.decode(errors="replace").strip().splitlines() or ["unknown"])[0]
            raise PreviewError(f"git has no `{inside}` at `{ref[:80]}`: {cause}")
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


def check_module(folder: Path) -> Path:
    if not folder.is_dir() or not any(folder.glob("*.tf")):
        raise PreviewError(f"{folder} holds no Terraform module (no .tf file)")
    return folder
