"""The provider Terraform will install, against the module's lock file (terraform/.terraform.lock.hcl).

The lock file pins the provider the tests ran (hashicorp/aws 3.39.0, from the offline mirror): its
``h1:`` hash is of the unpacked package (what the mirror holds), its ``zh:`` hash of the official
release zip (what the registry serves). A mirror or registry that cannot give that exact build makes
``terraform init`` fail at the first run; this says so before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from manager_pipeline.doctor.result import CheckResult, could_not_run, failed, ok
from manager_pipeline.terraform.lock import AWS, LOCK_FILE, LockedProvider, admits, module_constraint, read_lock

REGISTRY_URL = "https://registry.terraform.io"
NAME = "provider lock"


def package_hash(folder: Path) -> str:
    """Terraform's ``h1:`` hash of an unpacked provider package (Go's dirhash Hash1)."""
    summary = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in sorted(files, key=lambda p: p.relative_to(folder).as_posix()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        summary.update(f"{digest}  {path.relative_to(folder).as_posix()}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


def _locked(module_dir: Path) -> LockedProvider | CheckResult:
    lock = read_lock(module_dir).get(AWS)
    where = module_dir / LOCK_FILE
    if lock is None:
        return failed(
            NAME,
            f"{where} pins no hashicorp/aws: restore the committed lock file (git checkout -- {where.name}) so every "
            "run installs the tested provider",
        )
    constraint = module_constraint(module_dir)
    if constraint is None:
        return failed(NAME, f"{module_dir}/main.tf gives hashicorp/aws no version constraint: require `~> 3.39`")
    if not admits(constraint, lock.version):
        return failed(
            NAME,
            f"the module asks for hashicorp/aws {constraint} but the lock file pins {lock.version}: Terraform refuses "
            "to init; keep the tested major, or move to a new one as docs/setup.md says",
        )
    return lock


def check_mirror(module_dir: Path, tools_dir: Path) -> CheckResult:
    """MANAGER_PROVIDERS=mirror: the mirror holds the locked version, and its package hashes as locked."""
    lock = _locked(module_dir)
    if isinstance(lock, CheckResult):
        return lock
    versions = tools_dir / "providers" / AWS
    held = sorted(p.name for p in versions.iterdir() if p.is_dir()) if versions.is_dir() else []
    if not held:
        return failed(
            NAME, f"no provider mirror in {tools_dir / 'providers'}: run `manager-pipeline setup` (it builds it)"
        )
    if lock.version not in held:
        return failed(
            NAME,
            f"the lock file pins hashicorp/aws {lock.version} but the mirror holds {', '.join(held)}: init would "
            "fail; install the manager's own lock file, or re-lock after testing the new version (docs/setup.md)",
        )
    package = versions / lock.version / "linux_amd64"
    if not package.is_dir():
        return failed(
            NAME, f"the mirror has no linux_amd64 build of hashicorp/aws {lock.version}: run `manager-pipeline setup`"
        )
    digest = package_hash(package)
    if digest not in lock.hashes:
        return failed(
            NAME,
            f"the mirror's hashicorp/aws {lock.version} ({digest}) is not the build the lock file pins: remove "
            f"{tools_dir / 'providers'} and run `manager-pipeline setup`",
        )
    return ok(NAME, f"hashicorp/aws {lock.version} from the mirror, as the lock file pins ({digest[:15]}…)")


def _registry_get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def check_registry(
    module_dir: Path, registry_url: str = REGISTRY_URL, get: Callable[[str], dict] = _registry_get
) -> CheckResult:
    """MANAGER_PROVIDERS=registry: the registry serves the locked version, as the zip the lock file pins."""
    lock = _locked(module_dir)
    if isinstance(lock, CheckResult):
        return lock
    url = f"{registry_url.rstrip('/')}/v1/providers/hashicorp/aws/{lock.version}/download/linux/amd64"
    try:
        answer = get(url)
    except urllib.error.HTTPError as exc:
        return failed(NAME, f"the registry has no hashicorp/aws {lock.version} for linux_amd64 ({exc.code}): re-lock")
    except (OSError, ValueError) as exc:
        return could_not_run(
            NAME,
            f"cannot reach the provider registry ({registry_url}: {exc}); allow HTTPS to it, or set "
            "MANAGER_PROVIDERS=mirror",
        )
    served = f"zh:{answer.get('shasum', '')}"
    if served not in lock.hashes:
        return failed(
            NAME,
            f"the registry's hashicorp/aws {lock.version} zip ({served[:15]}…) is not one the lock file pins: init "
            "would refuse it; re-lock on a machine that can check it (docs/setup.md)",
        )
    return ok(NAME, f"hashicorp/aws {lock.version} from the registry, as the lock file pins")
