"""The house's shape, held against the code's own imports: floors that only import downward, no
circles, Dagster's public API only, and Dagster only in the Dagster layer (and the commands over it).

The floors (the ground first): a package may import its own modules and anything on a lower floor,
never a package on its own floor or above. Every import counts: one inside a function (a late import up a
floor is still one), and one under ``if TYPE_CHECKING:`` (an annotation that names a type from a floor above
ties the two as surely as a call).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "manager_pipeline"

FLOORS: list[set[str]] = [
    # The ground: the vocabulary and helpers every stage may use.
    {"errors", "files"},
    {"events", "redact", "yamlfile", "durations"},
    {"markdown", "settings"},
    # The policy engine knows only the ground: manager.yaml's environments hold its settings.
    {"policy", "signing"},
    {"config", "db"},
    {"contract", "sources"},
    {"aws", "terraform"},
    {"plans"},
    # How a run ended (its plan, its status): what the feedback tells.
    {"outcome"},
    # Boundaries to the outside: GitHub, then what the manager tells GitHub and Slack.
    {"github"},
    {"feedback"},
    # THE data path as plain functions.
    {"pipeline"},
    # One folder per feature, each walking the data path.
    {"intake", "drift", "fleet", "destroy", "handoff"},
    {"onboarding"},
    # The Dagster layer, then the commands.
    {"defs"},
    {"doctor"},
    {"cli"},
]
FLOOR_OF = {unit: number for number, units in enumerate(FLOORS) for unit in units}
# The Dagster layer, and the commands and checks that drive a Dagster instance.
DAGSTER_UNITS = {"defs", "cli", "doctor"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue  # Alembic revisions: code Alembic loads, not part of the house
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, modules: frozenset[str] = frozenset()) -> list[str]:
    """What ``path`` imports; ``from package import module`` names the module (of ``modules``), not the
    package's face."""
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            if all(name in modules for name in submodules):
                names += submodules
            else:
                names.append(node.module)
    return names


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    known = frozenset(modules)
    for name, path in modules.items():
        for imported in _imports(path, known):
            if imported in modules and imported != name:
                graph[name].add(imported)
    return graph


def test_every_package_has_a_floor():
    units = {_unit(name) for name in _modules()} - {"manager_pipeline"}
    assert units - set(FLOOR_OF) == set(), "give each new package or ground-floor module a floor in FLOORS"


def test_no_import_runs_up_a_floor_or_across_one():
    wrong = []
    for module, imported in _graph().items():
        for target in imported:
            here, there = _unit(module), _unit(target)
            if here == there or "manager_pipeline" in (here, there):
                continue
            if FLOOR_OF[there] >= FLOOR_OF[here]:
                wrong.append(f"{module} (floor {FLOOR_OF[here]}) imports {target} (floor {FLOOR_OF[there]})")
    assert wrong == []


def test_no_circles_of_modules():
    graph = _graph()
    # Tarjan's strongly connected components: any of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_dagster_is_imported_by_its_public_api_only_and_only_in_the_dagster_layer():
    private, outside = [], []
    for name, path in _modules().items():
        for imported in _imports(path):
            root = imported.split(".")[0]
            if root.startswith("dagster") and any(part.startswith("_") for part in imported.split(".")):
                private.append(f"{name}: {imported}")
            if root.startswith("dagster") and _unit(name) not in DAGSTER_UNITS:
                outside.append(f"{name}: {imported}")
    assert private == []
    assert outside == [], "the stages stay plain Python: Dagster belongs in defs/ (or the commands over it)"


def test_the_check_itself_sees_an_upward_import(tmp_path):
    """The floor check reads real imports: a stage that imported the Dagster layer would be caught."""
    source = "from manager_pipeline.defs.stage import say\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert "manager_pipeline.defs.stage" in _imports(path)
    assert FLOOR_OF["defs"] > FLOOR_OF["pipeline"]
