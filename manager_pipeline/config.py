"""manager.yaml -> ManagerConfig: the registered sources and each environment's policy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from manager_pipeline.errors import ConfigError, UnknownSourceError
from manager_pipeline.yamlfile import load_yaml, suggest

DEFAULT_ENVIRONMENTS = ("staging", "production")
DEFAULT_VARIABLES_FILE = "infra/variables.yml"

# Names end up in partition keys ("staging|name"), state keys and run tags.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class EnvironmentPolicy:
    """How one environment may be deployed: decided here, checked in one place (approvals/)."""

    name: str
    auto_apply: bool = False
    apply_branches: tuple[str, ...] = ("main",)
    required_approvals: int = 0
    # GitHub logins, and `org/team` slugs whose members may approve.
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = False
    max_plan_age_hours: float = 7 * 24

    @property
    def gated(self) -> bool:
        return not self.auto_apply


@dataclass(frozen=True)
class SourceSpec:
    """One source repository: where its variables come from and where it deploys."""

    name: str
    environments: tuple[str, ...]
    variables_file: str = DEFAULT_VARIABLES_FILE
    path: Path | None = None
    repo: str | None = None
    default_branch: str = "main"

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else f"github:{self.repo}"


@dataclass(frozen=True)
class ManagerConfig:
    path: Path
    sources: Mapping[str, SourceSpec]
    environments: Mapping[str, EnvironmentPolicy]
    terraform_dir: Path

    def source(self, name: str) -> SourceSpec:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            raise UnknownSourceError(
                f"unknown source `{name}`{suggest(name, self.sources)} (registered in {self.path.name}: {known})"
            ) from None

    def policy(self, environment: str) -> EnvironmentPolicy:
        try:
            return self.environments[environment]
        except KeyError:
            known = ", ".join(self.environments)
            raise UnknownSourceError(
                f"unknown environment `{environment}`{suggest(environment, self.environments)} (known: {known})"
            ) from None

    def check_partition(self, source: str, environment: str) -> SourceSpec:
        """The source, if it deploys to ``environment``; else an error saying what to fix."""
        spec = self.source(source)
        self.policy(environment)
        if environment not in spec.environments:
            raise UnknownSourceError(
                f"source `{source}` does not deploy to `{environment}` "
                f"(its environments: {', '.join(spec.environments)}); add it under the source in {self.path.name}"
            )
        return spec

    @cached_property
    def sources_by_repo(self) -> dict[str, tuple[SourceSpec, ...]]:
        """GitHub ``owner/name`` (lowercase) -> the sources that live in it."""
        found: dict[str, list[SourceSpec]] = {}
        for spec in self.sources.values():
            if spec.repo:
                found.setdefault(spec.repo.lower(), []).append(spec)
        return {repo: tuple(specs) for repo, specs in found.items()}

    def partitions(self) -> list[tuple[str, str]]:
        return [(s.name, env) for s in self.sources.values() for env in s.environments]


_TOP_KEYS = ("sources", "environments", "terraform_dir")
_SOURCE_KEYS = ("name", "path", "repo", "variables_file", "environments", "default_branch")
_POLICY_KEYS = (
    "auto_apply",
    "apply_branches",
    "required_approvals",
    "approvers",
    "allow_self_approval",
    "max_plan_age",
)
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([hd])$")
_APPROVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9_.-]+)?$")


def _check_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key `{key}`{suggest(key, allowed)}")


def _str_list(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of names")
    return tuple(value)


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _parse_policy(name: str, data: Any, origin: str) -> EnvironmentPolicy:
    where = f"{origin}: environments.{name}"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    _check_keys(where, data, _POLICY_KEYS)
    auto_apply = _bool(f"{where}.auto_apply", data.get("auto_apply", False))
    approvals = data.get("required_approvals", 0 if auto_apply else 1)
    if type(approvals) is not int or not 0 <= approvals <= 10:
        raise ConfigError(f"{where}.required_approvals: expected a whole number from 0 to 10, got {approvals!r}")
    approvers = _str_list(f"{where}.approvers", data["approvers"]) if "approvers" in data else ()
    for approver in approvers:
        if not _APPROVER.match(approver):
            raise ConfigError(f"{where}.approvers: {approver!r} is neither a GitHub login nor an `org/team` slug")
    if "required_approvals" in data and approvals and not approvers:
        raise ConfigError(
            f"{where}: requires {approvals} approval(s) but names no `approvers`; list GitHub logins or `org/team` "
            "slugs, or set `auto_apply: true`"
        )
    if auto_apply and "required_approvals" in data and approvals:
        raise ConfigError(f"{where}: `auto_apply: true` applies without approval; drop `required_approvals`")
    age = str(data.get("max_plan_age", "7d"))
    match = _AGE.match(age)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{where}.max_plan_age: expected hours or days such as `12h` or `7d`, got {age!r}")
    hours = float(match.group(1)) * (24 if match.group(2) == "d" else 1)
    return EnvironmentPolicy(
        name=name,
        auto_apply=auto_apply,
        apply_branches=(
            _str_list(f"{where}.apply_branches", data["apply_branches"]) if "apply_branches" in data else ("main",)
        ),
        required_approvals=approvals,
        approvers=approvers,
        allow_self_approval=_bool(f"{where}.allow_self_approval", data.get("allow_self_approval", False)),
        max_plan_age_hours=hours,
    )


def _parse_source(
    index: int, data: Any, root: Path, environments: Mapping[str, EnvironmentPolicy], origin: str
) -> SourceSpec:
    where = f"{origin}: sources[{index}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with `name` and `path` or `repo`")
    _check_keys(where, data, _SOURCE_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} is not a valid source name "
            "(lowercase letters, digits, '.', '_' and '-', starting with a letter or digit)"
        )
    where = f"{origin}: source `{name}`"
    has_path, has_repo = "path" in data, "repo" in data
    if has_path == has_repo:
        raise ConfigError(f"{where}: give exactly one of `path` (a local checkout) or `repo` (GitHub owner/name)")
    path = repo = None
    if has_path:
        if not isinstance(data["path"], str) or not data["path"]:
            raise ConfigError(f"{where}.path: expected a folder path")
        path = (root / data["path"]).resolve()
    else:
        if not isinstance(data["repo"], str) or not _REPO.match(data["repo"]):
            raise ConfigError(f"{where}.repo: expected a GitHub `owner/name`, got {data['repo']!r}")
        repo = data["repo"]
    variables_file = data.get("variables_file", DEFAULT_VARIABLES_FILE)
    if (
        not isinstance(variables_file, str)
        or not variables_file
        or Path(variables_file).is_absolute()
        or ".." in Path(variables_file).parts
    ):
        raise ConfigError(f"{where}.variables_file: expected a relative path inside the repository")
    envs = (
        _str_list(f"{where}.environments", data["environments"])
        if "environments" in data
        else tuple(e for e in DEFAULT_ENVIRONMENTS if e in environments)
    )
    for env in envs:
        if env not in environments:
            raise ConfigError(
                f"{where}.environments: `{env}` is not defined under `environments:`{suggest(env, environments)}"
            )
    branch = data.get("default_branch", "main")
    if not isinstance(branch, str) or not branch:
        raise ConfigError(f"{where}.default_branch: expected a branch name")
    return SourceSpec(
        name=name, environments=envs, variables_file=variables_file, path=path, repo=repo, default_branch=branch
    )


def parse_config(text: str, path: Path) -> ManagerConfig:
    origin = path.name
    data = load_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping with `sources:` and `environments:`")
    _check_keys(origin, data, _TOP_KEYS)
    root = path.parent
    raw_envs = data.get("environments")
    if raw_envs is None:
        raw_envs = {"staging": {"auto_apply": True}, "production": {"auto_apply": False}}
    if not isinstance(raw_envs, dict) or not raw_envs:
        raise ConfigError(f"{origin}: `environments:` must map environment names to their settings")
    environments: dict[str, EnvironmentPolicy] = {}
    for name, settings in raw_envs.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{origin}: environments: {name!r} is not a valid environment name")
        environments[name] = _parse_policy(name, settings, origin)
    raw_sources = data.get("sources") or []
    if not isinstance(raw_sources, list):
        raise ConfigError(f"{origin}: `sources:` must be a list")
    sources: dict[str, SourceSpec] = {}
    for index, item in enumerate(raw_sources):
        spec = _parse_source(index, item, root, environments, origin)
        if spec.name in sources:
            raise ConfigError(f"{origin}: source `{spec.name}` is defined twice")
        sources[spec.name] = spec
    terraform_dir = (root / str(data.get("terraform_dir", "terraform"))).resolve()
    return ManagerConfig(path=path, sources=sources, environments=environments, terraform_dir=terraform_dir)


def load_config(path: Path) -> ManagerConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; create manager.yaml or point MANAGER_CONFIG at one") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, path)
