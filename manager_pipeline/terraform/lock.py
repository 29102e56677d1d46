"""The module's lock file (terraform/.terraform.lock.hcl) and its required_providers: what provider
build the tests ran, and whether a module still admits it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.errors import TerraformError

LOCK_FILE = ".terraform.lock.hcl"
AWS = "registry.terraform.io/hashicorp/aws"


@dataclass(frozen=True)
class LockedProvider:
    address: str
    version: str
    constraints: str
    hashes: tuple[str, ...]


_BLOCK = re.compile(r'provider\s+"(?P<address>[^"]+)"\s*\{(?P<body>.*?)\n\}', re.S)


def read_lock(module_dir: Path) -> dict[str, LockedProvider]:
    """The providers a lock file pins, by address; {} without a lock file."""
    path = module_dir / LOCK_FILE
    if not path.is_file():
        return {}
    found = {}
    for block in _BLOCK.finditer(path.read_text()):
        body = block["body"]
        version = re.search(r'^\s*version\s*=\s*"([^"]*)"', body, re.M)
        constraints = re.search(r'^\s*constraints\s*=\s*"([^"]*)"', body, re.M)
        hashes = re.search(r"hashes\s*=\s*\[(.*?)\]", body, re.S)
        found[block["address"]] = LockedProvider(
            address=block["address"],
            version=version.group(1) if version else "",
            constraints=constraints.group(1) if constraints else "",
            hashes=tuple(re.findall(r'"([^"]+)"', hashes.group(1))) if hashes else (),
        )
    return found


def module_constraint(module_dir: Path, name: str = "aws") -> str | None:
    """The version constraint the module's ``required_providers`` gives provider ``name``, if any."""
    for path in sorted(module_dir.glob("*.tf")):
        text = path.read_text()
        start = text.find("required_providers")
        entry = re.compile(rf"\b{name}\s*=\s*\{{(.*?)\}}", re.S).search(text, start) if start >= 0 else None
        if entry:
            version = re.search(r'^\s*version\s*=\s*"([^"]*)"', entry.group(1), re.M)
            return version.group(1) if version else None
    return None


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("-")[0])[:3])


def admits(constraint: str, version: str) -> bool:
    """Whether a Terraform version constraint (``~> 3.39``, ``>= 3, < 4``, ``3.39.0``) admits ``version``."""
    have = _numbers(version)
    for part in filter(None, (p.strip() for p in constraint.split(","))):
        match = re.fullmatch(r"(~>|>=|<=|!=|=|>|<)?\s*v?([\d.]+)", part)
        if not match:
            return False
        operator, wanted_text = match.group(1) or "=", match.group(2)
        wanted = _numbers(wanted_text)
        padded = wanted + (0,) * (3 - len(wanted))
        if operator == "~>":
            # ~> 3.39 admits 3.39 up to, not including, 4.0; ~> 3.39.0 admits 3.39.x only.
            prefix = wanted[:-1] if len(wanted) > 1 else wanted
            if have < padded or have[: len(prefix)] != prefix:
                return False
        elif not {
            "=": have == padded,
            "!=": have != padded,
            ">": have > padded,
            ">=": have >= padded,
            "<": have < padded,
            "<=": have <= padded,
        }[operator]:
            return False
    return True


def check_module_admits_lock(module_dir: Path) -> None:
    """TerraformError when the module asks for another hashicorp/aws than its lock file pins: Terraform
    itself refuses that at init, except when the manager's shared provider process serves the run (a
    reattached provider is never installed, so never checked), so the manager asks first, every run."""
    locked = read_lock(module_dir).get(AWS)
    constraint = module_constraint(module_dir)
    if locked is None or constraint is None:
        return
    if not admits(constraint, locked.version):
        raise TerraformError(
            f"the module {module_dir} asks for hashicorp/aws `{constraint}`, but its {LOCK_FILE} pins "
            f"{locked.version}, the version the tests ran: moving to another major is a reviewed change "
            "(docs/setup.md, a new provider major); nothing was planned"
        )
