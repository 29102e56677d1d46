"""Onboarding a source in one step (`add-source`), and its inverse (`remove-source`).

manager.yaml is edited as text, never re-dumped: its comments, blank lines, quoting and order stay
as written. ``add_entry`` inserts one block at the end of the `sources:` list, in the file's own
indentation (and flow style, when its items are ``- {name: ...}``); ``remove_entry`` cuts one item's
lines. Either result is parsed again with config.py's parser and compared with what was meant (the
other sources, the environments and the rest unchanged); only then is it written, atomically (a
temporary file beside it, then a rename), and only if the file did not change meanwhile. Any
problem leaves manager.yaml untouched.

``add_source`` checks everything before it writes: the name, the environments, the repository (its
default branch), the variables file at that branch's head against the contract, and the webhooks
the repository has. Then it writes manager.yaml and, with a token that may, creates the webhook
(signed with a new secret of the source's own: its environment variable's NAME goes into
manager.yaml, the value is printed once, to the operator); otherwise it prints what to paste in
the repository's webhook settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from manager_pipeline.config import (
    _NAME,
    _NAME_RULE,
    _REPO,
    DEFAULT_ENVIRONMENTS,
    DEFAULT_VARIABLES_FILE,
    ManagerConfig,
    SourceSpec,
    parse_config,
)
from manager_pipeline.errors import ConfigError, ContractError, ManagerError, SourceError
from manager_pipeline.yamlfile import YamlDocument, YamlError, parse_yaml, suggest

WEBHOOK_EVENTS = ("push", "pull_request", "issue_comment", "pull_request_review")
# How GitHub's webhook form names them ("Let me select individual events").
EVENT_TITLES = {
    "push": "Pushes",
    "pull_request": "Pull requests",
    "issue_comment": "Issue comments",
    "pull_request_review": "Pull request reviews",
}
ORGANISATION_SECRET = "GITHUB_WEBHOOK_SECRET"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_KEY_LINE = re.compile(r"^( *)(sources|\"sources\"|'sources')[ \t]*:(.*)$")
_EMPTY_VALUES = ("[]", "~", "null", "Null", "NULL")
_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")


class OnboardingError(ManagerError):
    """Bad input to add-source / remove-source: one line, and manager.yaml was not changed."""


class Refused(ManagerError):
    """A request that is understood but not done (removing a source that may still have infrastructure)."""


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


def secret_env_name(name: str, taken: set[str] = frozenset()) -> str:
    """``WEB_WEBHOOK_SECRET`` for source `web`: the receiver's variable holding its own secret."""
    base = re.sub(r"[^A-Z0-9]", "_", name.upper())
    base = f"S_{base}" if base[:1].isdigit() else base
    candidate, count = f"{base}_WEBHOOK_SECRET", 1
    while candidate in taken:
        count += 1
        candidate = f"{base}_{count}_WEBHOOK_SECRET"
    return candidate


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


# --- add-source -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddRequest:
    name: str
    repo: str | None = None
    path: str | None = None
    variables_file: str = DEFAULT_VARIABLES_FILE
    environments: tuple[str, ...] | None = None
    webhook_url: str | None = None
    webhook: bool = True  # False: --no-webhook
    org_secret: bool = False  # sign with GITHUB_WEBHOOK_SECRET instead of a secret of the source's own
    dry_run: bool = False


def check_request(request: AddRequest, config: ManagerConfig, document: YamlDocument) -> tuple[str, ...] | None:
    """Everything wrong with the request that manager.yaml alone tells; the environments given, deduplicated."""
    name = request.name
    if not _NAME.match(name):
        raise OnboardingError(f"{name!r} is not a valid source name ({_NAME_RULE})")
    if name in config.sources:
        index = list(config.sources).index(name)
        place = document.place(("sources", index, "name"))
        where = f"{config.path.name}:{place.line}" if place else config.path.name
        raise OnboardingError(
            f"source `{name}` is already registered ({where}); choose another name, or "
            f"`manager-pipeline remove-source {name}` first"
        )
    if (request.repo is None) == (request.path is None):
        raise OnboardingError("give exactly one of --repo OWNER/NAME (GitHub) or --path FOLDER (a local checkout)")
    if request.repo is not None and not _REPO.match(request.repo):
        raise OnboardingError(f"--repo {request.repo!r} is not a GitHub `owner/name`")
    variables = Path(request.variables_file)
    if not request.variables_file or variables.is_absolute() or ".." in variables.parts:
        raise OnboardingError(
            f"--variables-file {request.variables_file!r} must be a relative path inside the repository"
        )
    if request.repo is not None:
        for spec in config.sources.values():
            if (spec.repo or "").lower() == request.repo.lower() and spec.variables_file == request.variables_file:
                raise OnboardingError(
                    f"{request.repo}:{request.variables_file} is already registered as source `{spec.name}`"
                )
    environments = None
    if request.environments is not None:
        environments = tuple(dict.fromkeys(e.strip() for e in request.environments if e.strip()))
        if not environments:
            raise OnboardingError("--environments names no environment")
        for environment in environments:
            if environment not in config.environments:
                raise OnboardingError(
                    f"unknown environment `{environment}`{suggest(environment, config.environments)} "
                    f"({config.path.name} defines: {', '.join(config.environments)})"
                )
    elif not default_environments(config):
        raise OnboardingError(
            f"{config.path.name} defines none of {', '.join(DEFAULT_ENVIRONMENTS)}; give --environments "
            f"(defined: {', '.join(config.environments)})"
        )
    return environments


def webhook_url(given: str | None, environ: Mapping[str, str]) -> str | None:
    """The receiver's public URL: --webhook-url, else MANAGER_WEBHOOK_URL; a bare host gets /webhooks/github."""
    from manager_pipeline.intake.receiver import PATH

    url = (given or environ.get("MANAGER_WEBHOOK_URL") or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OnboardingError(f"webhook URL {url!r} is not an http(s) URL such as https://manager.example.com{PATH}")
    return url.rstrip("/") + PATH if parts.path in ("", "/") else url


@dataclass(frozen=True)
class _Variables:
    where: str
    warnings: tuple[str, ...]


def _check_variables(raw: bytes, origin: str, spec: SourceSpec, config: ManagerConfig) -> _Variables:
    """The contract's verdict on the file, for every environment the source deploys to."""
    from manager_pipeline.contract import check_document, contract_warnings, parse_variables, resolve
    from manager_pipeline.sources.document import decode_variables

    try:
        text = decode_variables(spec, raw)
    except SourceError as exc:
        raise OnboardingError(str(exc)) from None
    document = parse_variables(text, origin)
    data = check_document(document, list(config.environments), origin)
    problems = []
    for environment in spec.environments:
        try:
            resolve(data, environment, spec.name, origin)
        except ContractError as exc:
            problems += exc.problems
    if problems:
        raise ContractError(problems)
    return _Variables(origin, tuple(str(w) for w in contract_warnings(data, origin, document)))


def _github_failure(what: str, exc) -> OnboardingError:
    if exc.status in (401, 403):
        return OnboardingError(f"GitHub refused {what} ({exc.reason}); check the manager's GitHub credentials")
    return OnboardingError(f"{what} failed: GitHub answered {exc.status} ({exc.reason})")


def _check_repository(client, request: AddRequest, spec: SourceSpec, config: ManagerConfig):
    """(repository, head sha, verdict on its variables file); OnboardingError for an unknown repo or no file."""
    from manager_pipeline.github.client import GitHubError, NotAFile

    repo = request.repo
    try:
        info = client.repository(repo)
    except GitHubError as exc:
        if exc.not_found:
            raise OnboardingError(
                f"unknown repository `{repo}` on GitHub (or the manager's GitHub credentials cannot read it); "
                "check --repo"
            ) from None
        raise _github_failure(f"reading repository {repo}", exc) from None
    try:
        head = client.head_sha(repo, info.default_branch)
    except GitHubError as exc:
        raise _github_failure(f"reading branch `{info.default_branch}` of {repo}", exc) from None
    where = f"{repo}@{head[:12]}:{request.variables_file}"
    try:
        raw = client.file_at(repo, request.variables_file, head)
    except NotAFile:
        raise OnboardingError(f"{where} is a folder, not a variables file; check --variables-file") from None
    except GitHubError as exc:
        if exc.not_found:
            raise OnboardingError(
                f"{repo} has no {request.variables_file} at the head of `{info.default_branch}` ({head[:12]}); "
                "commit it there first, or give --variables-file"
            ) from None
        raise _github_failure(f"reading {where}", exc) from None
    spec = dataclasses.replace(spec, default_branch=info.default_branch)
    return info, head, _check_variables(raw, where, spec, config)


@dataclass
class _Webhook:
    """What add-source does about the repository's webhook."""

    url: str | None
    secret_env: str | None  # the variable whose value signs it
    own_secret: bool  # a new secret of the source's own (its NAME goes into manager.yaml)
    existing: object | None = None  # a Hook already sending to the URL
    cannot_manage: str | None = None  # why the token cannot create it (then: what to paste)


def _plan_webhook(client, request: AddRequest, config: ManagerConfig, environ: Mapping[str, str]) -> _Webhook:
    from manager_pipeline.github.client import GitHubError

    url = webhook_url(request.webhook_url, environ)
    if request.org_secret:
        plan = _Webhook(url, ORGANISATION_SECRET, own_secret=False)
    else:
        taken = {s.webhook_secret_env for s in config.sources.values() if s.webhook_secret_env}
        plan = _Webhook(url, secret_env_name(request.name, taken | {ORGANISATION_SECRET}), own_secret=True)
    if url is None:
        plan.cannot_manage = "no webhook URL: give --webhook-url or set MANAGER_WEBHOOK_URL to have it created"
        return plan
    try:
        hooks = client.hooks(request.repo)
    except GitHubError as exc:
        if exc.status in (403, 404):
            plan.cannot_manage = (
                f"the manager's GitHub token may not manage webhooks of {request.repo} (GitHub answered {exc.status})"
            )
        else:
            plan.cannot_manage = (
                f"listing the webhooks of {request.repo} failed (GitHub answered {exc.status}: {exc.reason})"
            )
        return plan
    same = [h for h in hooks if h.url.rstrip("/") == url.rstrip("/")]
    if same:
        plan.existing, plan.secret_env, plan.own_secret = same[0], None, False
    elif request.org_secret and not request.dry_run and not environ.get(ORGANISATION_SECRET):
        raise OnboardingError(
            f"--org-secret: {ORGANISATION_SECRET} is not set here, so the webhook cannot be given it; set it, or "
            "leave out --org-secret for a secret of the source's own"
        )
    return plan


def _events_text(events) -> str:
    return ", ".join(events)


def _paste(out: Callable[[str], None], plan: _Webhook, repo: str, html_url: str) -> None:
    settings = f"{html_url.rstrip('/')}/settings/hooks/new" if html_url else f"the settings of {repo}, Webhooks"
    out(f"{plan.cannot_manage}; add it by hand at {settings}:")
    from manager_pipeline.intake.receiver import PATH

    out(f"  Payload URL:       {plan.url or 'https://<the receiver, reachable from GitHub>' + PATH}")
    out("  Content type:      application/json")
    out(f"  Secret:            the value of {plan.secret_env}" + (" (below)" if plan.own_secret else ""))
    out("  SSL verification:  enabled")
    out(f"  Events:            Let me select individual events: {', '.join(EVENT_TITLES[e] for e in WEBHOOK_EVENTS)}")
    out("  Active:            yes")


def add_source(
    request: AddRequest,
    config_path: Path,
    github: Callable[[], object] | None,
    out: Callable[[str], None] = print,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Register a source, check its repository and variables file, set up its webhook; see the module doc.

    ``github``: builds the ``GitHubClient`` (None: no credentials). Bad input raises OnboardingError
    (manager.yaml untouched); an invalid variables file raises ContractError.
    """
    environ = os.environ if environ is None else environ
    original, text, config = read_manager(config_path)
    environments = check_request(request, config, parse_yaml(text, config_path.name))
    path = None
    if request.path is not None:
        folder = Path(request.path).absolute()
        path = os.path.relpath(folder, config.path.parent.absolute())
    entry = NewSource(request.name, request.repo, path, request.variables_file, environments)
    spec = entry.spec(config)
    plan = None
    if request.repo is not None:
        if github is None:
            raise OnboardingError(
                "add-source --repo reads the repository through GitHub: set GITHUB_TOKEN, or GITHUB_APP_ID, "
                "GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID"
            )
        client = github()
        info, head, verdict = _check_repository(client, request, spec, config)
        out(f"{request.repo}: default branch `{info.default_branch}` at {head[:12]}")
        entry = dataclasses.replace(entry, default_branch=info.default_branch)
        if request.webhook:
            plan = _plan_webhook(client, request, config, environ)
            if plan.own_secret:
                entry = dataclasses.replace(entry, webhook_secret_env=plan.secret_env)
    else:
        from manager_pipeline.sources import LocalSource

        try:
            LocalSource(spec).check_readable()
        except SourceError as exc:
            raise OnboardingError(str(exc)) from None
        local = LocalSource(spec).variables_path
        verdict = _check_variables(local.read_bytes(), str(local), spec, config)
    for warning in verdict.warnings:
        out(f"warning: {warning}")
    spec = entry.spec(config)
    out(f"{verdict.where} is valid for {', '.join(spec.environments)}")

    new_text = add_entry(text, entry, config_path.name)
    check_added(new_text, config, entry)
    partitions = ", ".join(f"{e}|{entry.name}" for e in spec.environments)
    if request.dry_run:
        out(diff(text, new_text, config_path.name).rstrip("\n"))
        out(f"dry run: would add source `{entry.name}` ({spec.location}; partitions {partitions}) to {config_path}")
        if plan is not None:
            _describe_webhook(out, plan, request.repo, dry_run=True)
        return
    write_atomically(config_path, original, new_text)
    out(f"added source `{entry.name}` ({spec.location}; partitions {partitions}) to {config_path}")
    if request.repo is None:
        out("a local checkout: no webhook (runs read its working tree, or a commit given with --sha)")
        return
    if plan is None:
        out("no webhook (--no-webhook): deliveries come from a workflow, or polling (MANAGER_POLLING=on)")
        return
    secret = secrets.token_hex(32) if plan.own_secret else environ.get(ORGANISATION_SECRET, "")
    if plan.existing is None and plan.cannot_manage is None:
        from manager_pipeline.github.client import GitHubError

        try:
            hook = client.create_hook(request.repo, plan.url, secret, WEBHOOK_EVENTS)
            out(
                f"created webhook {hook.id} on {request.repo}: {plan.url} (application/json; events "
                f"{_events_text(WEBHOOK_EVENTS)}), signed with {plan.secret_env}"
            )
        except GitHubError as exc:
            plan.cannot_manage = (
                f"creating the webhook on {request.repo} failed (GitHub answered {exc.status}: {exc.reason})"
            )
    _describe_webhook(out, plan, request.repo, html_url=info.html_url)
    if plan.own_secret:
        out(
            "Add this line to the webhook receiver's environment and restart it (`serve-webhooks`); until then "
            "the repository's deliveries, GitHub's first `ping` too, are refused (401: redeliver it from the "
            "webhook's settings). The secret is shown this once and kept nowhere else:"
        )
        out(f"  export {plan.secret_env}={secret}")


def _describe_webhook(out, plan: _Webhook, repo: str, dry_run: bool = False, html_url: str = "") -> None:
    if plan.existing is not None:
        hook = plan.existing
        missing = [e for e in WEBHOOK_EVENTS if e not in hook.events and "*" not in hook.events]
        out(
            f"a webhook to {plan.url} already exists on {repo} (id {hook.id}); not creating a second. It signs "
            f"with the secret it was given: {ORGANISATION_SECRET}, or set `webhook_secret_env` on the source to "
            "the variable holding it"
            + (f"; it does not send {', '.join(missing)}: add them in its settings" if missing else "")
        )
    elif dry_run:
        if plan.cannot_manage is not None:
            out(f"would print what to paste in {repo}'s webhook settings ({plan.cannot_manage})")
        else:
            secret = f"a new secret in {plan.secret_env}" if plan.own_secret else plan.secret_env
            out(
                f"would create a webhook on {repo}: {plan.url} (application/json; events "
                f"{_events_text(WEBHOOK_EVENTS)}), signed with {secret}"
            )
    elif plan.cannot_manage is not None:
        _paste(out, plan, repo, html_url)


# --- remove-source ----------------------------------------------------------------------------


def remove_source(
    name: str,
    config_path: Path,
    state_bucket: str,
    force: bool = False,
    dry_run: bool = False,
    out: Callable[[str], None] = print,
) -> None:
    """Unregister a source (with ``force``: its state objects are kept); Refused without it."""
    from manager_pipeline.terraform.workdir import state_key

    original, text, config = read_manager(config_path)
    try:
        spec = config.source(name)
    except ConfigError as exc:
        raise OnboardingError(str(exc)) from None
    states = ", ".join(f"s3://{state_bucket}/{state_key(name, e)}" for e in spec.environments) or "none"
    destroys = ", ".join(f"`manager-pipeline destroy {name} {e}`" for e in spec.environments)
    if not force:
        raise Refused(
            f"source `{name}` may still have infrastructure (its state: {states}); destroy it first ({destroys}, "
            "each approved and applied), or give --destroy to plan those destroys and remove the entry in one step. "
            "To only remove its manager.yaml entry, keeping its state objects (its partitions stay until those "
            "destroys are applied), give --force"
        )
    new_text = remove_entry(text, name, config_path.name)
    check_removed(new_text, config, name)
    if dry_run:
        out(diff(text, new_text, config_path.name).rstrip("\n"))
        out(f"dry run: would remove source `{name}` from {config_path}; its state objects would be kept: {states}")
        return
    write_atomically(config_path, original, new_text)
    out(f"removed source `{name}` from {config_path}")
    out(
        f"its Terraform state objects are kept: {states} (whatever they describe still exists; its partitions "
        f"stay until it is destroyed: {destroys})"
    )
    if spec.repo:
        out(
            f"the receiver now refuses deliveries from {spec.repo} for it; delete the repository's webhook if "
            "nothing else uses it"
            + (f", and {spec.webhook_secret_env} from the receiver's environment" if spec.webhook_secret_env else "")
        )
