"""The order the suite's modules are handed to `make test`'s workers: costliest first.

xdist's ``loadscope`` gives each worker whole modules (their fixtures are per module), and by default it
queues the modules with the most tests first: the many quick unit modules went out first and the few long
integration modules (a twenty-partition Celery backfill, the UI walk over eight pages) were handed out last,
so the run ended with one or two workers busy and the others done. Here the modules go out longest first
(the longest-processing-time rule for a schedule's end), by the worker-seconds each took in a full run,
kept in ``tests/durations.json``; `make durations` rewrites that file from a run of the whole suite.
A module the file does not know is costed at its folder's mean per test, times its number of tests.
The order changes when each module starts, nothing about what it runs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help="write tests/durations.json (seconds per test module) from this run, for the order of later runs",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", "no") == "loadscope":
        config.option.loadscopereorder = False  # the order below, not xdist's by number of tests


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def read_costs(path: Path = DURATIONS) -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def costliest_first(nodeids: list[str], costs: dict[str, float]) -> list[str]:
    """The modules of ``nodeids``, longest first; equal costs keep their collection order."""
    counts: dict[str, int] = defaultdict(int)
    for nodeid in nodeids:
        counts[module_of(nodeid)] += 1
    # Seconds per test in each folder, over the modules the file knows (of those collected now).
    folder_seconds: dict[str, float] = defaultdict(float)
    folder_tests: dict[str, int] = defaultdict(int)
    for module, count in counts.items():
        if module in costs:
            folder_seconds[str(Path(module).parent)] += costs[module]
            folder_tests[str(Path(module).parent)] += count

    def cost(module: str) -> float:
        if module in costs:
            return costs[module]
        folder = str(Path(module).parent)
        mean = folder_seconds[folder] / folder_tests[folder] if folder_tests[folder] else 1.0
        return mean * counts[module]

    return sorted(counts, key=lambda module: -cost(module))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    by_module: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        by_module[module_of(item.nodeid)].append(item)
    order = costliest_first([item.nodeid for item in items], read_costs())
    items[:] = [item for module in order for item in by_module[module]]


_took: dict[str, float] | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _took
    # Each worker process sees its own tests; the controller (or a run without xdist) sees them all.
    _took = None if hasattr(session.config, "workerinput") else defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _took is not None:
        _took[module_of(report.nodeid)] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With --store-durations: this run's modules replace their entries; the others stay, if their file does."""
    if session.config.getoption("store_durations") and _took:
        root = session.config.rootpath
        seconds = {module: took for module, took in read_costs().items() if (root / module).is_file()}
        seconds.update({module: round(took, 1) for module, took in _took.items()})
        DURATIONS.write_text(json.dumps(dict(sorted(seconds.items())), indent=1) + "\n")
