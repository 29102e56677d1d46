"""What each environment does with a failed check: enforce it, only warn, or skip it with a reason.

Three inputs, each checked with the place of every problem (``file:line:column``):

- ``environments.<env>.checks`` in manager.yaml (``ChecksFile``, as written), resolved into a
  ``PlanPolicy`` by ``resolve_policy``;
- the module's reviewed skip file, ``terraform/policy-skips.yaml`` (``load_reviewed_skips``): the
  checks the platform team decided stay failing, each with its resources and a reason. Every
  environment honours it;
- a folder of the platform team's own checkov YAML custom policies (``load_custom_policies``).

Defaults: production enforces every check (built-in and custom) but the reviewed skips; every other
environment only warns. A check id that neither checkov nor the custom policies know is refused, as
is a skip without a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from manager_pipeline.errors import ConfigError, Problem
from manager_pipeline.yamlfile import YamlDocument, YamlError, parse_yaml

SKIP_FILE = "policy-skips.yaml"
DEFAULT_TIMEOUT_S = 120.0
ENFORCING_ENVIRONMENTS = ("production",)

Verdict = Literal["enforced", "warning", "skipped"]
Failing = Literal["enforce", "warn"]

# CKV_AWS_20, CKV2_AWS_6, and custom ids in the same shape (CKV2_ACME_1).
_CHECK_ID = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_[0-9]+$")


class PolicyConfigError(ConfigError):
    """A policy file or setting that cannot be used; ``problems`` places each at file:line:column."""


def _check_id(value: str) -> str:
    if not _CHECK_ID.match(value):
        raise ValueError(f"{value!r} is not a check id such as CKV_AWS_20 or CKV2_AWS_6")
    return value


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("a skip needs a reason: one line saying why the check stays failing")
    if "\n" in value.strip():
        raise ValueError("the reason must be one line")
    return value.strip()


CheckId = Annotated[str, AfterValidator(_check_id)]
Reason = Annotated[str, AfterValidator(_one_line)]


class _Strict(BaseModel):
    # Lax only where YAML and Python differ (a list for a tuple); text stays text, numbers stay numbers.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Skip(_Strict):
    """A failed check that does not count: for these resources (all when none are named) of these
    sources (all when none are named), for this reason."""

    check: CheckId = Field(description="the check id, e.g. CKV_AWS_18")
    resources: tuple[str, ...] = Field(
        (), description="resource addresses (`aws_s3_bucket.logs`); none: every resource"
    )
    reason: Reason = Field(description="one line: why the check stays failing")
    sources: tuple[str, ...] = Field((), description="the sources it applies to; none: every source")
    field: str | None = Field(None, description="the variables.yml field whose value a source chose, where one did")

    def covers(self, check_id: str, resource: str, source: str | None) -> bool:
        if check_id != self.check:
            return False
        if self.sources and source not in self.sources:
            return False
        # An address names its instances too: aws_s3_bucket.logs covers aws_s3_bucket.logs[0] and ["a"].
        return not self.resources or any(resource == r or resource.startswith(r + "[") for r in self.resources)


class SkipFile(_Strict):
    """terraform/policy-skips.yaml: ``skips: [{check, resources, reason, field}]``."""

    skips: tuple[Skip, ...] = ()


class ChecksFile(_Strict):
    """``environments.<env>.checks`` in manager.yaml, as written."""

    failing: Failing | None = Field(
        None,
        description="what a failed check does: `enforce` (blocks approval) or `warn`; default: production enforces",
    )
    enforce: tuple[CheckId, ...] = Field((), description="checks enforced even when `failing: warn`")
    warn: tuple[CheckId, ...] = Field((), description="checks that only warn even when `failing: enforce`")
    skips: tuple[Skip, ...] = Field((), description="failed checks that do not count, each with a reason")
    custom_policies: str | None = Field(
        None, description="a folder of checkov YAML custom policies, relative to manager.yaml"
    )
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="the engine's hard timeout per call, in seconds")


@dataclass(frozen=True)
class CustomPolicy:
    id: str
    name: str
    guideline: str
    file: Path


@dataclass(frozen=True)
class PlanPolicy:
    """One environment's checks, resolved: what ``scan`` decides each failed check with."""

    environment: str
    failing: Failing
    enforce: frozenset[str] = frozenset()
    warn: frozenset[str] = frozenset()
    skips: tuple[Skip, ...] = ()
    custom_policies: Path | None = None
    custom: Mapping[str, CustomPolicy] | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def decide(self, check_id: str, resource: str, source: str | None = None) -> tuple[Verdict, Skip | None]:
        for skip in self.skips:
            if skip.covers(check_id, resource, source):
                return "skipped", skip
        if check_id in self.warn:
            return "warning", None
        if check_id in self.enforce or self.failing == "enforce":
            return "enforced", None
        return "warning", None

    def to_dict(self) -> dict[str, Any]:
        """What a run records of the policy it was checked against (plain data)."""
        return {
            "environment": self.environment,
            "failing": self.failing,
            "enforce": sorted(self.enforce),
            "warn": sorted(self.warn),
            "skips": [skip.model_dump(mode="json") for skip in self.skips],
            "custom_policies": str(self.custom_policies) if self.custom_policies else None,
            "timeout_s": self.timeout_s,
        }


def _placed(
    document: YamlDocument | None, origin: str, loc: tuple[Any, ...], message: str, at_key: bool = False
) -> Problem:
    place = document.place(loc, key=at_key) if document else None
    path = ".".join(str(part) for part in loc) or "(top level)"
    return Problem(path, message, origin, place.line if place else None, place.column if place else None)


def _validation_problems(
    exc: ValidationError, document: YamlDocument | None, origin: str, prefix: tuple[Any, ...] = ()
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = (*prefix, *error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(_placed(document, origin, loc, f"unknown key `{loc[-1]}`", at_key=True))
        elif error["type"] == "missing":
            problems.append(_placed(document, origin, loc[:-1], f"`{loc[-1]}` is required"))
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(_placed(document, origin, loc, message))
    return problems


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise PolicyConfigError(problems=sorted(problems, key=lambda p: (p.origin, p.line or 0, p.column or 0)))


def parse_skip_file(text: str, origin: str) -> tuple[tuple[Skip, ...], YamlDocument]:
    try:
        document = parse_yaml(text, origin)
    except YamlError as exc:
        raise PolicyConfigError(problems=[Problem("(file)", exc.message, origin, exc.line, exc.column)]) from None
    try:
        model = SkipFile.model_validate({} if document.data is None else document.data)
    except ValidationError as exc:
        _raise(_validation_problems(exc, document, origin))
        raise AssertionError from exc  # unreachable: errors always give problems
    return model.skips, document


def load_reviewed_skips(module_dir: Path, known: Iterable[str] | None = None) -> tuple[Skip, ...]:
    """The reviewed skips of the module (``<module_dir>/policy-skips.yaml``), none if there is no such
    file; with ``known`` (check ids), a skip of an id no check has is refused."""
    path = module_dir / SKIP_FILE
    if not path.is_file():
        return ()
    skips, document = parse_skip_file(path.read_text(encoding="utf-8"), str(path))
    if known is not None:
        check_skip_ids(skips, known, str(path), document)
    return skips


def load_custom_policies(folder: Path) -> dict[str, CustomPolicy]:
    """Check id -> policy of each checkov YAML custom policy in ``folder`` (``*.yaml``, ``*.yml``)."""
    if not folder.is_dir():
        raise PolicyConfigError(f"{folder}: the custom policies folder does not exist")
    found: dict[str, CustomPolicy] = {}
    problems: list[Problem] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        origin = str(path)
        try:
            document = parse_yaml(path.read_text(encoding="utf-8"), origin)
        except YamlError as exc:
            problems.append(Problem("(file)", exc.message, origin, exc.line, exc.column))
            continue
        data = document.data if isinstance(document.data, dict) else {}
        metadata = data.get("metadata")
        if not isinstance(metadata, dict):
            problems.append(
                _placed(document, origin, (), "a custom policy needs `metadata:` with `id`, `name`, `category`")
            )
            continue
        missing = [
            key for key in ("id", "name", "category") if not isinstance(metadata.get(key), str) or not metadata[key]
        ]
        if missing:
            problems.append(_placed(document, origin, ("metadata",), f"`metadata` needs {', '.join(missing)}"))
            continue
        if not isinstance(data.get("definition"), dict):
            problems.append(_placed(document, origin, (), "a custom policy needs a `definition:` mapping"))
            continue
        check_id = metadata["id"]
        if not _CHECK_ID.match(check_id):
            problems.append(
                _placed(document, origin, ("metadata", "id"), f"{check_id!r} is not a check id such as CKV2_ACME_1")
            )
        elif check_id in found:
            problems.append(
                _placed(
                    document, origin, ("metadata", "id"), f"{check_id} is also the id of {found[check_id].file.name}"
                )
            )
        else:
            found[check_id] = CustomPolicy(check_id, metadata["name"], str(metadata.get("guideline") or ""), path)
    _raise(problems)
    return found


def unknown_check_ids(checks: ChecksFile, known: Iterable[str]) -> list[tuple[tuple[Any, ...], str]]:
    """(place within the checks mapping, message) for each check id that no check has."""
    known = set(known)
    found = []
    for key in ("enforce", "warn"):
        for index, check_id in enumerate(getattr(checks, key)):
            if check_id not in known:
                found.append(((key, index), f"no check has the id {check_id}"))
    for index, skip in enumerate(checks.skips):
        if skip.check not in known:
            found.append((("skips", index, "check"), f"no check has the id {skip.check}"))
    return found


def check_checks_document(
    document: YamlDocument, origin: str, loc: tuple[Any, ...], known: Iterable[str], root: Path
) -> ChecksFile | None:
    """The ``checks`` mapping at ``loc`` of a parsed manager.yaml, validated (known ids, an existing
    custom policy folder), or PolicyConfigError placing every problem. None when it is absent."""
    data: Any = document.data
    for part in loc:
        data = data.get(part) if isinstance(data, dict) else None
    if data is None:
        return None
    try:
        checks = ChecksFile.model_validate(data)
    except ValidationError as exc:
        _raise(_validation_problems(exc, document, origin, loc))
        raise AssertionError from exc
    ids = set(known)
    problems = []
    if checks.custom_policies:
        try:
            ids |= set(load_custom_policies(root / checks.custom_policies))
        except PolicyConfigError as exc:
            problems.extend(exc.problems or [_placed(document, origin, (*loc, "custom_policies"), str(exc))])
    problems += unknown_id_problems(checks, ids, document, origin, loc)
    _raise(problems)
    return checks


def unknown_id_problems(
    checks: ChecksFile, known: Iterable[str], document: YamlDocument | None, origin: str, loc: tuple[Any, ...]
) -> list[Problem]:
    """A problem for each check id of ``checks`` (the mapping at ``loc`` of manager.yaml) that no check has,
    placed at its line when ``document`` (the parsed manager.yaml) is given."""
    return [_placed(document, origin, (*loc, *where), message) for where, message in unknown_check_ids(checks, known)]


def check_skip_ids(
    skips: tuple[Skip, ...], known: Iterable[str], origin: str, document: YamlDocument | None = None
) -> None:
    """PolicyConfigError for each skip of a skip file whose check id no check has."""
    known = set(known)
    _raise(
        [
            _placed(document, origin, ("skips", index, "check"), f"no check has the id {skip.check}")
            for index, skip in enumerate(skips)
            if skip.check not in known
        ]
    )


def resolve_policy(
    environment: str,
    checks: ChecksFile | None = None,
    *,
    root: Path | None = None,
    reviewed_skips: tuple[Skip, ...] = (),
) -> PlanPolicy:
    """The environment's ``PlanPolicy``: its ``checks`` settings (None: the defaults) with the module's
    reviewed skips; ``root`` is the folder the custom policies folder is relative to (manager.yaml's)."""
    checks = checks or ChecksFile()
    failing: Failing = checks.failing or ("enforce" if environment in ENFORCING_ENVIRONMENTS else "warn")
    folder = None
    custom = None
    if checks.custom_policies:
        folder = ((root or Path.cwd()) / checks.custom_policies).resolve()
        custom = load_custom_policies(folder)
    return PlanPolicy(
        environment=environment,
        failing=failing,
        enforce=frozenset(checks.enforce),
        warn=frozenset(checks.warn),
        skips=(*reviewed_skips, *checks.skips),
        custom_policies=folder,
        custom=custom,
        timeout_s=checks.timeout_s,
    )
