"""What GitHub says of a source's repository itself: renamed or transferred, the App removed from it,
its webhook deleted. Recorded per source (``source_repositories``), so that deliveries keep arriving
under a new name and ``manager-pipeline sources`` says which source cannot be reached, and why.

A source's repository is known by its GitHub id as well as its name: the id is recorded when the
receiver first takes a delivery of it (every delivery names ``repository.id``). A delivery under a
name manager.yaml does not have, for a recorded id, is taken for that id's sources with a warning
(``known_by_id``), until manager.yaml names the repository as GitHub now does.

``read_lifecycle`` is plain data in, plain data out: which sources a lifecycle delivery concerns and
what to record for them; ``Repositories`` is the store.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from manager_pipeline.config.model import ManagerConfig, SourceSpec
from manager_pipeline.db.migrate import upgraded_engine
from manager_pipeline.db.tables import repositories_table

# GitHub's events about a repository or the manager's access to it; each is answered 2xx and recorded.
LIFECYCLE_EVENTS = ("repository", "installation", "installation_repositories", "github_app_authorization", "meta")


@dataclass(frozen=True)
class Change:
    """What one lifecycle delivery says of sources: ``renamed_to`` a new name, ``unreachable`` and
    why (None: reachable again), or only ``note`` (nothing for a source changes)."""

    sources: tuple[str, ...]
    note: str
    renamed_to: str | None = None
    unreachable: str | None = None
    reachable_again: bool = False


def _name(value: Any) -> str | None:
    name = value.get("full_name") if isinstance(value, dict) else None
    return name if isinstance(name, str) and "/" in name else None


def _id(value: Any) -> int | None:
    number = value.get("id") if isinstance(value, dict) else None
    return number if type(number) is int else None


def claimed_repository_id(body: bytes) -> int | None:
    """``repository.id`` as the body says it (signed or not: it only chooses, as the name does)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return _id(payload.get("repository")) if isinstance(payload, dict) else None


class Repositories:
    """The store of each GitHub source's repository id and state (``source_repositories``)."""

    def __init__(self, url: str | None = None, engine: Engine | None = None):
        self.engine = engine if engine is not None else upgraded_engine(url)
        self._remembered: set[tuple[str, int]] = set()

    def remember(self, sources: tuple[str, ...], repo_id: int | None, full_name: str) -> None:
        """Record ``repo_id`` for ``sources`` the first time (later deliveries cost no write)."""
        if repo_id is None:
            return
        new = [s for s in sources if (s, repo_id) not in self._remembered]
        if not new:
            return
        with self.engine.begin() as connection:
            have = {row.source: row for row in connection.execute(select(repositories_table))}
            for source in new:
                row = have.get(source)
                if row is None:
                    connection.execute(
                        repositories_table.insert().values(
                            source=source, repo_id=repo_id, full_name=full_name, changed_at=time.time()
                        )
                    )
                elif row.repo_id is None:
                    connection.execute(
                        update(repositories_table).where(repositories_table.c.source == source).values(repo_id=repo_id)
                    )
        self._remembered.update((s, repo_id) for s in new)

    def sources_of(self, repo_id: int | None) -> list[str]:
        """The sources whose repository has GitHub id ``repo_id``."""
        if repo_id is None:
            return []
        with self.engine.connect() as connection:
            query = select(repositories_table.c.source).where(repositories_table.c.repo_id == repo_id)
            return sorted(row.source for row in connection.execute(query))

    def record(self, change: Change, said_by: str, names: dict[str, str]) -> None:
        """Write what ``change`` says of its sources (``names``: each source's repository in manager.yaml)."""
        values: dict[str, Any] = {"said_by": said_by[:140], "changed_at": time.time()}
        if change.renamed_to is not None:
            values["renamed_to"] = change.renamed_to
        if change.unreachable is not None:
            values["unreachable"] = f"{change.unreachable} ({said_by[:140]})"
        elif change.reachable_again:
            values["unreachable"] = None
        with self.engine.begin() as connection:
            for source in change.sources:
                row = {"source": source, "full_name": names.get(source, ""), **values}
                dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
                statement = dialect.insert(repositories_table).values(**row)
                connection.execute(statement.on_conflict_do_update(index_elements=["source"], set_=values))

    def states(self) -> dict[str, dict[str, Any]]:
        """Per source: repo_id, full_name, renamed_to, unreachable, said_by, changed_at."""
        with self.engine.connect() as connection:
            return {row.source: dict(row._mapping) for row in connection.execute(select(repositories_table))}


def _sources_named(config: ManagerConfig, names: list[str]) -> list[SourceSpec]:
    wanted = {name.lower() for name in names}
    return [spec for spec in config.sources.values() if spec.repo and spec.repo.lower() in wanted]


def _concerned(config: ManagerConfig, known: Repositories, repositories: list[Any]) -> tuple[str, ...]:
    """The sources of the repositories a payload lists, by id (recorded) or by name."""
    found = {spec.name for spec in _sources_named(config, [n for n in map(_name, repositories) if n])}
    for repository in repositories:
        found.update(known.sources_of(_id(repository)))
    return tuple(sorted(found))


def read_lifecycle(config: ManagerConfig, known: Repositories, event: str, payload: dict[str, Any]) -> Change:
    """What a lifecycle delivery says of the sources it concerns (none: a note only)."""
    action = payload.get("action")
    action = action if isinstance(action, str) else "?"
    github_sources = tuple(sorted(s.name for s in config.sources.values() if s.repo))
    if event == "repository":
        repository = payload.get("repository")
        name, changes = _name(repository), payload.get("changes") or {}
        old = None
        if action == "renamed" and name:
            old_name = (((changes.get("repository") or {}).get("name")) or {}).get("from")
            old = f"{name.split('/')[0]}/{old_name}" if isinstance(old_name, str) else None
        elif action == "transferred" and name:
            owner = ((changes.get("owner") or {}).get("from")) or {}
            login = _login_of(owner.get("user")) or _login_of(owner.get("organization"))
            old = f"{login}/{name.split('/', 1)[1]}" if login else None
        sources = _concerned(config, known, [repository] + ([{"full_name": old}] if old else []))
        if action in ("renamed", "transferred") and name:
            commands = "; ".join(f"source {s}: `repo: {name}`" for s in sources)
            return Change(
                sources,
                f"{old or 'the repository'} was {action} to {name}: set {commands or 'its source'} in manager.yaml "
                "(until then its deliveries are taken by repository id, with a warning)",
                renamed_to=name,
            )
        if action in ("deleted", "archived"):
            why = f"its repository was {action} on GitHub"
            return Change(sources, f"{name} was {action} on GitHub", unreachable=why)
        if action == "unarchived":
            return Change(sources, f"{name} was unarchived", reachable_again=True)
        return Change(sources, f"repository {action}: nothing for the manager to do")
    if event == "installation":
        listed = payload.get("repositories")
        sources = _concerned(config, known, listed) if isinstance(listed, list) else github_sources
        if action in ("deleted", "suspend"):
            why = "the GitHub App was uninstalled" if action == "deleted" else "the GitHub App is suspended"
            return Change(sources, why, unreachable=f"{why}: install it again (or unsuspend it) on the repository")
        if action in ("created", "unsuspend", "new_permissions_accepted"):
            return Change(sources, f"installation {action}", reachable_again=True)
        return Change((), f"installation {action}: nothing for the manager to do")
    if event == "installation_repositories":
        removed = payload.get("repositories_removed")
        added = payload.get("repositories_added")
        if action == "removed" and isinstance(removed, list):
            sources = _concerned(config, known, removed)
            why = "the GitHub App was removed from its repository: add the repository to the App's installation again"
            return Change(sources, "the App was removed from a repository", unreachable=why)
        if action == "added" and isinstance(added, list):
            return Change(_concerned(config, known, added), "the App was added to a repository", reachable_again=True)
        return Change((), f"installation_repositories {action}: nothing for the manager to do")
    if event == "meta":
        repository = payload.get("repository")
        sources = _concerned(config, known, [repository]) if isinstance(repository, dict) else github_sources
        hook = payload.get("hook_id")
        return Change(
            sources,
            f"webhook {hook} was deleted",
            unreachable=(
                f"its webhook ({hook}) was deleted, so no delivery arrives: create it again "
                "(`manager-pipeline add-source` prints what to paste)"
            ),
        )
    # github_app_authorization: a user revoked their authorization of the App. The manager acts with
    # installation tokens, which that does not revoke: recorded, no source changes.
    login = _login_of(payload.get("sender")) or "a user"
    return Change((), f"{login} revoked their authorization of the GitHub App (installation tokens are unaffected)")


def _login_of(value: Any) -> str | None:
    login = value.get("login") if isinstance(value, dict) else None
    return login if isinstance(login, str) else None


def known_by_id(config: ManagerConfig, known: Repositories, repository: Any) -> tuple[list[SourceSpec], str] | None:
    """The sources of a repository manager.yaml does not name but whose id is recorded (it was renamed
    or transferred), and the warning to log; None when the id is not known."""
    name, sources = _name(repository), known.sources_of(_id(repository))
    specs = [config.sources[s] for s in sources if s in config.sources and config.sources[s].repo]
    if not name or not specs:
        return None
    listed = ", ".join(f"{s.name} (`repo: {s.repo}`)" for s in specs)
    return specs, f"{name} is repository id {_id(repository)}, which manager.yaml names {listed}: set `repo: {name}`"


def status_line(state: dict[str, Any] | None) -> str | None:
    """What ``manager-pipeline sources`` says under a source GitHub said something of: unreachable and
    why, or renamed (and the manager.yaml change to make); None when there is nothing to say."""
    if not state:
        return None
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(state["changed_at"]))
    said = f"({state['said_by']}, {when})" if state.get("said_by") else f"({when})"
    lines = []
    if state.get("unreachable"):
        lines.append(f"UNREACHABLE: {state['unreachable']}")
    renamed = state.get("renamed_to")
    if renamed and renamed.lower() != (state.get("full_name") or "").lower():
        lines.append(f"renamed on GitHub to {renamed}: set `repo: {renamed}` in manager.yaml {said}")
    return "; ".join(lines) or None
