"""Editing manager.yaml in place, for add-source and remove-source.

manager.yaml is edited as text, never re-dumped: its comments, blank lines, quoting and order stay
as written. ``add_entry`` inserts one block at the end of the `sources:` list, in the file's own
indentation (and flow style, when its items are ``- {name: ...}``); ``remove_entry`` cuts one item's
lines. Either result is parsed again with manager.yaml's own parser and compared with what was meant (the
other sources, the environments and the rest unchanged); only then is it written, atomically (a
temporary file beside it, then a rename), and only if the file did not change meanwhile. Any
problem leaves manager.yaml untouched.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from manager_pipeline.config.file import parse_config
from manager_pipeline.config.model import DEFAULT_ENVIRONMENTS, DEFAULT_VARIABLES_FILE, ManagerConfig, SourceSpec
from manager_pipeline.errors import ConfigError, ManagerError
from manager_pipeline.onboarding.errors import OnboardingError
from manager_pipeline.yamlfile import YamlDocument, YamlError, parse_yaml

_KEY_LINE = re.compile(r"^( *)(sources|\"sources\"|'sources')[ \t]*:(.*)$")
_EMPTY_VALUES = ("[]", "~", "null", "Null", "NULL")
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


# --- the new entry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSource:
    """A source to register; fields left at their defaults are not written."""

    name: str
    repo: str | None = None
    path: str | None = None
    variables_file: str = DEFAULT_VARIABLES_FILE
    environments: tuple[str, ...] | None = None
    default_branch: str = "main"
    webhook_secret_env: str | None = None

    def fields(self) -> list[tuple[str, str]]:
        """(key, value as YAML text) in the order manager.yaml's examples use."""
        pairs = [("name", _scalar(self.name))]
        if self.repo is not None:
            pairs.append(("repo", _scalar(self.repo)))
        if self.path is not None:
            pairs.append(("path", _scalar(self.path)))
        if self.variables_file != DEFAULT_VARIABLES_FILE:
            pairs.append(("variables_file", _scalar(self.variables_file)))
        if self.environments is not None:
            pairs.append(("environments", "[" + ", ".join(_scalar(e) for e in self.environments) + "]"))
        if self.default_branch != "main":
            pairs.append(("default_branch", _scalar(self.default_branch)))
        if self.webhook_secret_env is not None:
            pairs.append(("webhook_secret_env", _scalar(self.webhook_secret_env)))
        return pairs

    def spec(self, config: ManagerConfig) -> SourceSpec:
        """The SourceSpec manager.yaml should yield for this entry (what the edit is checked against)."""
        return SourceSpec(
            name=self.name,
            environments=self.environments if self.environments is not None else default_environments(config),
            variables_file=self.variables_file,
            path=(config.path.parent / self.path).resolve() if self.path is not None else None,
            repo=self.repo,
            default_branch=self.default_branch,
            webhook_secret_env=self.webhook_secret_env,
        )


def default_environments(config: ManagerConfig) -> tuple[str, ...]:
    return tuple(e for e in DEFAULT_ENVIRONMENTS if e in config.environments)


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as this very text (plain when it safely can be)."""
    if _PLAIN.match(value):
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


# --- manager.yaml as lines --------------------------------------------------------------------


@dataclass
class _Lines:
    bom: str
    lines: list[str]  # each with its line ending
    newline: str

    @classmethod
    def of(cls, text: str) -> _Lines:
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        lines = text[len(bom) :].splitlines(keepends=True)
        first = next((line for line in lines if line.endswith("\n")), "\n")
        return cls(bom, lines, "\r\n" if first.endswith("\r\n") else "\n")

    def text(self) -> str:
        return self.bom + "".join(self.lines)

    def end_last_line(self) -> None:
        if self.lines and not self.lines[-1].endswith(("\n", "\r")):
            self.lines[-1] += self.newline


def _bare(line: str) -> str:
    return line.rstrip("\r\n")


def _indent(line: str) -> int:
    bare = _bare(line)
    return len(bare) - len(bare.lstrip(" "))


def _blank(line: str) -> bool:
    return not line.strip()


def _comment(line: str) -> bool:
    return line.strip().startswith("#")


@dataclass
class _SourcesList:
    """Where the `sources:` list stands in the lines (indexes are 0-based)."""

    key_line: int | None  # None: the file has no `sources:` key
    key_indent: int
    dash_indent: int
    offset: int  # columns from an item's dash to its keys
    flow_items: bool  # items written `- {name: ...}`
    items: list[int]  # the dash line of each item
    last: int  # the last line that belongs to the list (the key's line when it is empty)
    spaced: bool  # blank lines between its items
    empty_value: str | None = None  # the key line without its `[]` / `~`, when it has one


def _indent_unit(lines: list[str], above: int) -> int:
    """The file's own indentation step: the smallest indentation of a content line, else 2."""
    steps = [
        _indent(line) - above for line in lines if not _blank(line) and not _comment(line) and _indent(line) > above
    ]
    return min(steps) if steps else 2


def _locate(text: _Lines, document: YamlDocument) -> _SourcesList:
    lines = text.lines
    place = document.keys.get(("sources",))
    if place is None:
        tops = [p.column - 1 for path, p in document.keys.items() if len(path) == 1]
        key_indent = min(tops) if tops else 0
        unit = _indent_unit(lines, key_indent)
        return _SourcesList(None, key_indent, key_indent + unit, 2, False, [], len(lines) - 1, False)
    key_line = place.line - 1
    match = _KEY_LINE.match(_bare(lines[key_line])) if key_line < len(lines) else None
    if match is None or len(match.group(1)) != place.column - 1:
        raise OnboardingError(
            "manager.yaml's `sources:` is not a block mapping key on its own line; add the source by hand"
        )
    key_indent = len(match.group(1))
    rest = match.group(3).strip()
    value, _, comment = rest.partition(" #") if not rest.startswith("#") else ("", "", rest[1:])
    value = value.strip()
    empty_value = None
    if value:
        if value.replace(" ", "") not in _EMPTY_VALUES:
            raise OnboardingError(
                "manager.yaml's `sources:` is written on one line (a flow list or an alias); write it as a block "
                "list (`- name: ...`), or add the source by hand"
            )
        empty_value = f"{match.group(1)}{match.group(2)}:" + (f" #{comment}" if comment else "")
    items: list[int] = []
    dash_indent: int | None = None
    last = key_line
    index = key_line + 1
    while index < len(lines):
        line = lines[index]
        indent = _indent(line)
        if _blank(line):
            pass
        elif _comment(line):
            # Indented comments are the list's (a commented-out source); those at the key's
            # indentation belong to what follows, unless another item comes after them.
            if indent > key_indent:
                last = index
        elif indent > key_indent or (indent == key_indent and line.lstrip(" ").startswith("-")):
            if line.lstrip(" ").startswith("-") and (dash_indent is None or indent == dash_indent):
                if dash_indent is None:
                    dash_indent = indent
                if indent == dash_indent:
                    items.append(index)
            last = index
        else:
            break
        index += 1
    found = document.data.get("sources") if isinstance(document.data, dict) else None
    if len(items) != len(found or ()):
        raise OnboardingError(
            f"cannot tell where each of manager.yaml's {len(found or ())} sources starts (found {len(items)} "
            "`- ` items); add the source by hand"
        )
    if not items:
        unit = _indent_unit(lines, key_indent)
        return _SourcesList(key_line, key_indent, key_indent + unit, 2, False, [], last, False, empty_value)
    first = _bare(lines[items[0]])[dash_indent + 1 :]
    content = first.lstrip(" ")
    offset = 1 + len(first) - len(content) if content and not content.startswith("#") else 2
    spaced = any(_blank(lines[i]) for i in range(items[0] + 1, last))
    return _SourcesList(
        key_line, key_indent, dash_indent, offset, content.startswith("{"), items, last, spaced, empty_value
    )


def _render(entry: NewSource, where: _SourcesList, newline: str) -> list[str]:
    pairs = entry.fields()
    dash = " " * where.dash_indent + "-" + " " * (where.offset - 1)
    if where.flow_items:
        return [dash + "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}" + newline]
    inner = " " * (where.dash_indent + where.offset)
    return [f"{dash if i == 0 else inner}{key}: {value}{newline}" for i, (key, value) in enumerate(pairs)]


def add_entry(text: str, entry: NewSource, origin: str = "manager.yaml") -> str:
    """``text`` with ``entry`` appended to its `sources:` list, every other byte as it was."""
    document = parse_yaml(text, origin)
    lines = _Lines.of(text)
    where = _locate(lines, document)
    block = _render(entry, where, lines.newline)
    if where.key_line is None:
        lines.end_last_line()
        lines.lines += [" " * where.key_indent + "sources:" + lines.newline, *block]
        return lines.text()
    if where.empty_value is not None:
        ending = lines.lines[where.key_line][len(_bare(lines.lines[where.key_line])) :]
        lines.lines[where.key_line] = where.empty_value + (ending or lines.newline)
    if where.last == len(lines.lines) - 1:
        lines.end_last_line()
    lines.lines[where.last + 1 : where.last + 1] = ([lines.newline] if where.spaced else []) + block
    return lines.text()


def remove_entry(text: str, name: str, origin: str = "manager.yaml") -> str:
    """``text`` without the `sources:` item named ``name`` (its lines, and one blank line before it)."""
    document = parse_yaml(text, origin)
    found = document.data.get("sources") if isinstance(document.data, dict) else None
    names = [item.get("name") if isinstance(item, dict) else None for item in found or ()]
    if name not in names:
        raise OnboardingError(f"no source `{name}` in manager.yaml")
    index = names.index(name)
    lines = _Lines.of(text)
    where = _locate(lines, document)
    start = where.items[index]
    end = where.items[index + 1] - 1 if index + 1 < len(where.items) else where.last
    # Blank lines and comments at the items' indentation after it belong to what follows.
    while end > start and (
        _blank(lines.lines[end]) or (_comment(lines.lines[end]) and _indent(lines.lines[end]) <= where.dash_indent)
    ):
        end -= 1
    if start - 1 > (where.key_line or 0) and _blank(lines.lines[start - 1]):
        start -= 1
    del lines.lines[start : end + 1]
    return lines.text()


# --- checking an edit, writing it -------------------------------------------------------------


def _one_line(exc: ManagerError) -> str:
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        more = len(exc.problems) - 1
        return f"{exc.problems[0]} (and {more} more problem{'s' if more > 1 else ''})"
    return " ".join(str(exc).split())


def read_manager(path: Path) -> tuple[bytes, str, ManagerConfig]:
    """(bytes, text, config) of manager.yaml; OnboardingError (one line) when it cannot be used."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise OnboardingError(f"{path}: no such file; create manager.yaml or point MANAGER_CONFIG at one") from None
    except OSError as exc:
        raise OnboardingError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
        return raw, text, parse_config(raw, path)
    except UnicodeDecodeError:
        raise OnboardingError(f"{path}: not UTF-8 text; nothing was changed") from None
    except (YamlError, ConfigError) as exc:
        raise OnboardingError(f"{_one_line(exc)}; fix manager.yaml first (nothing was changed)") from None


def _reparsed(text: str, config: ManagerConfig) -> ManagerConfig:
    try:
        return parse_config(text.encode("utf-8"), config.path)
    except (YamlError, ConfigError) as exc:
        raise OnboardingError(
            f"manager.yaml would not be valid after the edit ({_one_line(exc)}); nothing was changed"
        ) from None


def _same_apart_from_sources(old: ManagerConfig, new: ManagerConfig) -> bool:
    return old.environments == new.environments and old.terraform_dir == new.terraform_dir


def check_added(text: str, old: ManagerConfig, entry: NewSource) -> ManagerConfig:
    """The config of the edited text, if it is the old one plus exactly ``entry``."""
    new = _reparsed(text, old)
    expected = [*old.sources.values(), entry.spec(old)]
    if list(new.sources.values()) != expected or not _same_apart_from_sources(old, new):
        raise OnboardingError(
            "the edit of manager.yaml did not read back as meant; nothing was changed: add the source by hand"
        )
    return new


def check_removed(text: str, old: ManagerConfig, name: str) -> ManagerConfig:
    new = _reparsed(text, old)
    expected = [spec for spec in old.sources.values() if spec.name != name]
    if list(new.sources.values()) != expected or not _same_apart_from_sources(old, new):
        raise OnboardingError(
            "the edit of manager.yaml did not read back as meant; nothing was changed: remove the source by hand"
        )
    return new


def diff(old: str, new: str, name: str = "manager.yaml") -> str:
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}")
    )


def write_atomically(path: Path, original: bytes, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename, unless it no longer holds ``original``."""
    target = path.resolve()  # a symbolic link stays one: its target is what changes
    if target.read_bytes() != original:
        raise OnboardingError(f"{path.name} changed while this command ran; nothing was changed: run it again")
    mode = stat.S_IMODE(target.stat().st_mode)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
