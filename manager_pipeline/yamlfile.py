"""Safe YAML loading shared by manager.yaml and variables.yml.

Plain data only: no Python tags, no dates or binary (they stay text or are refused), string
keys. Duplicate keys are refused (PyYAML would keep the last one silently), as are several
documents in one file, files over a size limit, and anchors whose aliases would expand past
a node budget ("billion laughs"). Every error is placed at ``file:line:column``; the
document also keeps the place of each key and value so later checks can point there too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from manager_pipeline.errors import ManagerError

Path = tuple[Any, ...]
DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_NODES = 20_000
_PLAIN = (str, int, float, bool, type(None))


class YamlError(ManagerError):
    """A YAML file that cannot be read as one plain document."""

    def __init__(self, origin: str, message: str, line: int | None = None, column: int | None = None):
        self.origin, self.message, self.line, self.column = origin, message, line, column
        where = f"{origin}:{line}:{column}" if line is not None else origin
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Place:
    line: int
    column: int


@dataclass
class YamlDocument:
    """The data, and where each value (``values``) and each mapping key (``keys``) stands."""

    data: Any
    values: dict[Path, Place] = field(default_factory=dict)
    keys: dict[Path, Place] = field(default_factory=dict)

    def place(self, path: Iterable[Any], key: bool = False) -> Place | None:
        """Where ``path`` stands, or its nearest ancestor when it is not in the file."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get(())


class _StrictLoader(yaml.SafeLoader):
    def construct_undefined(self, node):
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {node.tag} is not allowed: only plain data", node.start_mark
        )


# Dates and times stay text: a schema field that wants a date says so itself.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag in (
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:set",
    "tag:yaml.org,2002:omap",
    "tag:yaml.org,2002:pairs",
):
    _StrictLoader.add_constructor(_tag, _StrictLoader.construct_undefined)
_StrictLoader.add_constructor(None, _StrictLoader.construct_undefined)


_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"


def _check_keys(node: yaml.Node, origin: str) -> None:
    """Keys are text and unique within their mapping (merged-in keys may be overridden)."""
    seen_nodes: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen_nodes:
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key_node, value_node in current.value:
                pending.append(value_node)
                if key_node.tag == _MERGE:
                    continue
                mark = key_node.start_mark
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlError(origin, "a key must be text, not a list or mapping", mark.line + 1, mark.column + 1)
                if key_node.tag != _STR:
                    raise YamlError(
                        origin,
                        f'key `{key_node.value}` is not read as text; quote it ("{key_node.value}")',
                        mark.line + 1,
                        mark.column + 1,
                    )
                if key_node.value in first:
                    line = first[key_node.value].start_mark.line + 1
                    raise YamlError(
                        origin,
                        f"duplicate key '{key_node.value}' (first defined at line {line})",
                        mark.line + 1,
                        mark.column + 1,
                    )
                first[key_node.value] = key_node


def _expanded_size(node: yaml.Node, budget: int, origin: str) -> int:
    """Nodes the document would have with every alias expanded; refuses cycles and bombs."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(current: yaml.Node) -> int:
        key = id(current)
        if key in sizes:
            return sizes[key]
        if key in active:
            mark = current.start_mark
            raise YamlError(origin, "an anchor refers to itself", mark.line + 1, mark.column + 1)
        active.add(key)
        total = 1
        if isinstance(current, yaml.SequenceNode):
            children: Iterable[yaml.Node] = current.value
        elif isinstance(current, yaml.MappingNode):
            children = [child for pair in current.value for child in pair]
        else:
            children = ()
        for child in children:
            total += size(child)
            if total > budget:
                mark = current.start_mark
                raise YamlError(
                    origin,
                    f"expands to more than {budget} values through anchors and aliases; write it out plainly",
                    mark.line + 1,
                    mark.column + 1,
                )
        active.discard(key)
        sizes[key] = total
        return total

    return size(node)


def _record_places(node: yaml.Node, path: Path, document: YamlDocument) -> None:
    document.values.setdefault(path, Place(node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            document.keys.setdefault(child, Place(key_node.start_mark.line + 1, key_node.start_mark.column + 1))
            _record_places(value_node, child, document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_places(item, (*path, index), document)


def _check_plain(data: Any, path: Path, document: YamlDocument, origin: str) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _check_plain(value, (*path, key), document, origin)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _check_plain(value, (*path, index), document, origin)
    elif not isinstance(data, _PLAIN):
        place = document.place(path)
        raise YamlError(
            origin, f"a {type(data).__name__} value is not plain data", place and place.line, place and place.column
        )


def parse_yaml(
    source: str | bytes, origin: str, max_bytes: int = DEFAULT_MAX_BYTES, max_nodes: int = DEFAULT_MAX_NODES
) -> YamlDocument:
    """One YAML document of plain data with the places of its values, or YamlError."""
    raw = source.encode("utf-8") if isinstance(source, str) else source
    if len(raw) > max_bytes:
        raise YamlError(origin, f"is {len(raw)} bytes; the limit is {max_bytes // 1024} KiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlError(origin, f"is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8") from None
    loader = None
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as exc:
            if "expected a single document" in str(exc.context or ""):
                mark = exc.problem_mark
                raise YamlError(
                    origin, "holds more than one YAML document; keep exactly one", mark.line + 1, mark.column + 1
                ) from None
            raise
        if node is None:
            return YamlDocument(None)
        _expanded_size(node, max_nodes, origin)
        _check_keys(node, origin)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "'\\t'" in problem:
            problem += "; indent with spaces, not tabs"
        raise YamlError(origin, problem, mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlError(
            origin, f"character #x{exc.character:04x} is not allowed in YAML; remove it", line, column
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError(origin, str(exc).replace("\n", " ")) from None
    except RecursionError:
        raise YamlError(origin, "nests too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    document = YamlDocument(data)
    _record_places(node, (), document)
    _check_plain(data, (), document, origin)
    return document


def load_yaml(text: str | bytes, origin: str) -> Any:
    """The data of one plain YAML document, or YamlError saying where and why."""
    return parse_yaml(text, origin).data


def suggest(name: str, known: Iterable[str]) -> str:
    """' ; did you mean `x`?' when a known name is close to ``name``, else ''."""
    name, known = str(name), list(known)
    prefixed = [k for k in known if len(name) >= 3 and k.startswith(name)]
    match = prefixed[:1] if len(prefixed) == 1 else difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean `{match[0]}`?" if match else ""
