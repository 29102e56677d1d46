"""Which module the fleet planner may plan with: the manager's own `terraform/`, the manager repository
as it is at a git ref (checked out here, by the manager), or a folder the CLI's own user named
(`manager-pipeline preview --module`), handed over inside that process only.

HCL runs with every environment's credentials and reads any file of the host (``file()``): a folder
named in run config (which the UI's launchpad writes) would let anyone who reaches the UI run their
own. So run config names a ref, never a path."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from manager_pipeline.errors import ManagerError


class PreviewError(ManagerError):
    """A module that cannot be had: a ref git does not know, a folder with no module."""


# A branch, tag or commit; no `:` (git would read what follows as a path), no leading `-` (an option).
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@^~-]{0,199}")
# The folder `preview --module` named, set by the CLI around its in-process run; never a run's config.
_LOCAL_MODULE: ContextVar[Path | None] = ContextVar("local_module", default=None)


@contextmanager
def local_module(folder: Path) -> Iterator[Path]:
    """Let the fleet planner of this process plan with ``folder`` (a local edit of the module) while inside."""
    token = _LOCAL_MODULE.set(check_module(folder).resolve())
    try:
        yield folder
    finally:
        _LOCAL_MODULE.reset(token)


@contextmanager
def fleet_module(terraform_dir: Path, ref: str = "") -> Iterator[Path]:
    """The module a fleet run plans with: the CLI's local folder, ``ref`` of the manager repository, or
    ``terraform_dir`` itself."""
    local = _LOCAL_MODULE.get()
    if local is not None and ref:
        raise PreviewError("give a module folder or a ref, not both")
    if local is not None:
        yield local
    elif ref:
        with module_at_ref(terraform_dir, ref) as folder:
            yield check_module(folder)
    else:
        yield terraform_dir


@contextmanager
def module_at_ref(terraform_dir: Path, ref: str) -> Iterator[Path]:
    """The module folder as it is at ``ref`` of the git repository that holds it, in a temporary folder."""
    if not _REF.fullmatch(ref) or ".." in ref:
        raise PreviewError(f"`{ref[:80]}` is not a git ref (a branch, tag or commit of the manager repository)")
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
