"""Every problem of a manager.yaml at once, each placed like variables.yml's:
``manager.yaml:LINE:COLUMN: key.path: what to change``."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from manager_pipeline.config.schema import AwsAccessFile, ManagerFile, PolicyFile, SourceFile, TriggerFile
from manager_pipeline.errors import ConfigError, Problem
from manager_pipeline.yamlfile import YamlDocument, suggest


def _dotted(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping of manager.yaml may hold, for did-you-mean."""
    if not loc:
        model: type[BaseModel] = ManagerFile
    elif len(loc) == 2 and loc[0] == "sources":
        model = SourceFile
    elif len(loc) == 2 and loc[0] == "environments":
        model = PolicyFile
    elif len(loc) == 3 and loc[0] == "environments" and loc[2] == "aws":
        model = AwsAccessFile
    elif len(loc) == 4 and loc[0] == "sources" and loc[2] == "triggers":
        model = TriggerFile
    else:
        return []
    return list(model.model_fields)


def _got(value: Any) -> str:
    hint = f' (quote it: "{value}")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"got {value!r}{hint}"


def _explain(error: Mapping[str, Any]) -> tuple[tuple[Any, ...], str, bool]:
    """(where, what to change, placed at the key) for one pydantic error."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    if loc and loc[-1] == "[key]":
        return loc[:-1], error["msg"], True
    if kind == "extra_forbidden":
        return loc, f"unknown key `{loc[-1]}`{suggest(loc[-1], _keys_at(loc[:-1]))}", True
    if kind == "missing":
        return loc[:-1], f"`{loc[-1]}` is required", False
    if kind == "bool_type":
        return loc, f"expected true or false, {_got(value)}", False
    if kind == "int_type":
        return loc, f"expected a whole number, {_got(value)}", False
    if kind == "string_type":
        return loc, f"expected text, {_got(value)}", False
    if kind in ("list_type", "too_short"):
        example = f"; write [{value}]" if isinstance(value, str) and value else ""
        return loc, f"expected a non-empty list of names, got {value!r}{example}", False
    return loc, error["msg"], False


def _duplicates(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Sources registered twice (one name is one partition), each flagged after its first."""
    items = data.get("sources") if isinstance(data, dict) else None
    first: dict[str, int] = {}
    found = []
    for index, item in enumerate(items if isinstance(items, list) else ()):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            message = f"source `{name}` is defined twice (first as sources[{first[name]}])"
            found.append((("sources", index, "name"), message))
        else:
            first[name] = index
    return found


def _trigger_conflicts(data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Trigger repositories that are a source's own repository (its pushes are a source's already), or
    named twice for one source."""
    items = data.get("sources") if isinstance(data, dict) else None
    items = [item if isinstance(item, dict) else {} for item in (items if isinstance(items, list) else ())]
    repos = {str(item["repo"]).lower(): item.get("name") for item in items if isinstance(item.get("repo"), str)}
    found = []
    for index, item in enumerate(items):
        triggers = item.get("triggers")
        seen: set[str] = set()
        for position, trigger in enumerate(triggers if isinstance(triggers, list) else ()):
            repo = trigger.get("repo") if isinstance(trigger, dict) else None
            if not isinstance(repo, str):
                continue
            loc = ("sources", index, "triggers", position, "repo")
            if repo.lower() in repos:
                found.append((loc, f"{repo} is the repository of source `{repos[repo.lower()]}`; a trigger repository "
                                   "holds no variables of its own: remove the trigger or that source"))
            elif repo.lower() in seen:
                found.append((loc, f"{repo} is named twice; give it one entry with all its `branches` and `tags`"))
            seen.add(repo.lower())
    return found


def check_document(document: YamlDocument, origin: str = "manager.yaml") -> ManagerFile:
    """The validated file, or ConfigError listing every problem at its line and column."""
    data = {} if document.data is None else document.data
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], message: str, at_key: bool = False) -> None:
        place = document.place(loc, key=at_key)
        problems.append(
            Problem(_dotted(loc), message, origin, place.line if place else None, place.column if place else None)
        )

    model = None
    try:
        model = ManagerFile.check(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            add(*_explain(error))
    for loc, message in _duplicates(data) + _trigger_conflicts(data):
        add(loc, message)
    if problems:
        raise ConfigError(problems=sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path)))
    assert model is not None
    return model
