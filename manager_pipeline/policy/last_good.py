"""The last good policy: what an environment's checks are when a policy file goes bad.

A custom policy that no longer parses, or a reviewed skip file with a skip lacking its reason, must
neither stop every run nor let plans through unchecked. ``environment_policy`` resolves the
environment's policy from the files as they are; when that works, it keeps a copy (the resolved
settings and each custom policy file) in a folder of the manager's home, rewritten only when
something changed. When the files are bad, the copy stands in, and the caller is told why (each
problem at file:line) so that it can say so; with no copy kept yet, the problem is raised: a policy
nobody could read is never no policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from manager_pipeline.files import PRIVATE_FILE, locked
from manager_pipeline.policy.rules import (
    ChecksFile,
    CustomPolicy,
    PlanPolicy,
    PolicyConfigError,
    Skip,
    load_reviewed_skips,
    resolve_policy,
    unknown_id_problems,
)
from manager_pipeline.yamlfile import YamlDocument

KEPT_FILE = "policy.json"
CUSTOM_FOLDER = "custom"


@dataclass(frozen=True)
class LoadedPolicy:
    """An environment's policy and, when the last good one stands in for bad files, why (else None)."""

    policy: PlanPolicy
    kept_because: str | None = None


def environment_policy(
    environment: str,
    checks: ChecksFile | None,
    *,
    root: Path,
    module_dir: Path,
    known: Iterable[str] | None,
    keep: Path | None,
    document: YamlDocument | None = None,
    origin: str = "manager.yaml",
) -> LoadedPolicy:
    """``environment``'s policy from manager.yaml's ``checks`` (custom policies relative to ``root``) and
    the module's reviewed skips, their check ids checked against ``known`` (a typo of an enforced id would
    enforce nothing); ``document`` (manager.yaml parsed, read from ``origin``) places a bad id at its line.
    With ``keep`` (a folder), a good policy is kept there and a bad one is replaced by the one kept, or
    PolicyConfigError when none was."""
    try:
        policy = resolve_policy(
            environment,
            checks,
            root=root,
            reviewed_skips=load_reviewed_skips(module_dir, known=known),
        )
        if known is not None and checks is not None:
            loc = ("environments", environment, "checks")
            unknown = unknown_id_problems(checks, {*known, *(policy.custom or {})}, document, origin, loc)
            if unknown:
                raise PolicyConfigError(problems=unknown)
    except PolicyConfigError as exc:
        if keep is None:
            raise
        kept = read_kept(keep / environment)
        if kept is None:
            raise PolicyConfigError(
                problems=exc.problems,
                message=f"{exc}\nno good policy of {environment} was kept before, so nothing is checked against "
                "a policy the manager cannot read: fix the file(s) above",
            ) from None
        policy, taken = kept
        return LoadedPolicy(
            policy,
            f"the policy files of {environment} are not valid, so the last good policy (kept {taken}) stands "
            f"until they are fixed:\n{exc}",
        )
    if keep is not None:
        write_kept(keep / environment, policy)
    return LoadedPolicy(policy)


def _settings(policy: PlanPolicy) -> dict[str, Any]:
    """What is kept of a policy besides its custom policy files (whose contents are digested in)."""
    custom = policy.custom or {}
    return {
        "environment": policy.environment,
        "failing": policy.failing,
        "enforce": sorted(policy.enforce),
        "warn": sorted(policy.warn),
        "skips": [skip.model_dump(mode="json") for skip in policy.skips],
        "timeout_s": policy.timeout_s,
        "custom": {
            check_id: {
                "name": item.name,
                "guideline": item.guideline,
                "file": item.file.name,
                "sha256": hashlib.sha256(item.file.read_bytes()).hexdigest(),
            }
            for check_id, item in sorted(custom.items())
        },
        # Files of the folder that hold no policy of their own (helpers a policy may not need) are not kept.
        "has_custom_folder": policy.custom_policies is not None,
    }


def _lock_of(folder: Path) -> Path:
    # Beside the folder, not in it: a writer swaps the folder whole. Every process of the manager (the code
    # location, each run, each worker) keeps the policy at its start, and a reader must not look between a
    # writer's two renames.
    return folder.parent / f".{folder.name}.lock"


def write_kept(folder: Path, policy: PlanPolicy) -> bool:
    """Keep ``policy`` in ``folder`` unless the same is kept already; True when it was written. The new
    copy is made beside the old one and swapped in, so a reader never sees half of one, and one writer at
    a time does so (many processes start at once)."""
    settings = _settings(policy)
    with locked(_lock_of(folder), mode=PRIVATE_FILE):
        return _write_kept(folder, settings, policy)


def _write_kept(folder: Path, settings: dict[str, Any], policy: PlanPolicy) -> bool:
    kept = folder / KEPT_FILE
    try:
        before = json.loads(kept.read_text())
        before.pop("taken_at", None)
        if before == settings:
            return False
    except (OSError, ValueError):
        pass
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        if policy.custom:
            (fresh / CUSTOM_FOLDER).mkdir()
            for item in policy.custom.values():
                shutil.copyfile(item.file, fresh / CUSTOM_FOLDER / item.file.name)
        stamped = {**settings, "taken_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        (fresh / KEPT_FILE).write_text(json.dumps(stamped, indent=2, sort_keys=True) + "\n")
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        fresh.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return True


def read_kept(folder: Path) -> tuple[PlanPolicy, str] | None:
    """The policy kept in ``folder`` and when it was taken, or None when nothing (whole) is kept there."""
    if not folder.parent.is_dir():
        return None
    with locked(_lock_of(folder), shared=True, mode=PRIVATE_FILE):
        return _read_kept(folder)


def _read_kept(folder: Path) -> tuple[PlanPolicy, str] | None:
    try:
        kept = json.loads((folder / KEPT_FILE).read_text())
        custom_folder = folder / CUSTOM_FOLDER
        custom = {}
        for check_id, item in kept["custom"].items():
            path = custom_folder / item["file"]
            if hashlib.sha256(path.read_bytes()).hexdigest() != item["sha256"]:
                return None  # changed behind the manager's back: not the policy that was good
            custom[check_id] = CustomPolicy(check_id, item["name"], item["guideline"], path)
        policy = PlanPolicy(
            environment=kept["environment"],
            failing=kept["failing"],
            enforce=frozenset(kept["enforce"]),
            warn=frozenset(kept["warn"]),
            skips=tuple(Skip.model_validate(skip) for skip in kept["skips"]),
            custom_policies=custom_folder if kept["has_custom_folder"] and custom else None,
            custom=custom or None,
            timeout_s=float(kept["timeout_s"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return policy, str(kept.get("taken_at", "at an unknown time"))
