"""Safe YAML loading shared by manager.yaml and variables.yml.

Only plain data (no Python tags), duplicate keys refused (PyYAML would keep the last one
silently), one document per file, and every error placed at ``file:line:column``.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

import yaml

from manager_pipeline.errors import ManagerError


class YamlError(ManagerError):
    """A YAML file that cannot be read as one plain document."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(  # noqa: B904 - PyYAML reports it with the mark
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    )
                if key in seen:
                    first = seen[key].start_mark
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first defined at line {first.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _where(origin: str, mark: Any) -> str:
    if mark is None:
        return origin
    return f"{origin}:{mark.line + 1}:{mark.column + 1}"


def load_yaml(text: str, origin: str) -> Any:
    """Parse one YAML document of plain data, or raise YamlError saying where and why."""
    try:
        documents = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(f"{_where(origin, mark)}: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{origin}: {exc}") from None
    if len(documents) > 1:
        raise YamlError(f"{origin}: holds {len(documents)} YAML documents; keep exactly one")
    return documents[0] if documents else None


def suggest(name: str, known: Iterable[str]) -> str:
    """' ; did you mean `x`?' when a known name is close to ``name``, else ''."""
    name, known = str(name), list(known)
    prefixed = [k for k in known if len(name) >= 3 and k.startswith(name)]
    match = prefixed[:1] if len(prefixed) == 1 else difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""
