from pathlib import Path

import pytest

from manager_pipeline.intake import watch
from manager_pipeline.config.file import parse_config
from manager_pipeline.intake.watch import LocalWatchState, detect_local_changes


@pytest.fixture(autouse=True)
def revision(monkeypatch):
    """A change's commit comes from git (run for real in tests/integration); here a detached HEAD at c0ffee."""
    monkeypatch.setattr(watch, "git_revision", lambda folder: ("c0ffee", None))


def config_for(tmp_path: Path):
    return parse_config("sources:\n  - {name: web, path: web}\n", tmp_path / "manager.yaml")


def test_first_look_records_then_each_change_is_reported_once(tmp_path):
    variables = tmp_path / "web" / "infra" / "variables.yml"
    variables.parent.mkdir(parents=True)
    variables.write_text("a: 1\n")
    config = config_for(tmp_path)

    changes, state = detect_local_changes(config, LocalWatchState())
    assert changes == [] and "web" in state.seen

    changes, state = detect_local_changes(config, LocalWatchState.from_json(state.to_json()))
    assert changes == []

    variables.write_text("a: 2\n")
    changes, state = detect_local_changes(config, state)
    assert [(c.source, c.sequence, c.sha, c.branch) for c in changes] == [("web", 1, "c0ffee", "main")]
    variables.write_text("a: 1\n")
    changes, state = detect_local_changes(config, state)
    # Back to an earlier content is still a new change, with a new sequence number.
    assert [(c.source, c.sequence) for c in changes] == [("web", 2)]


def test_removed_sources_leave_the_cursor(tmp_path):
    state = LocalWatchState({"gone": ("d", 3)})
    _, state = detect_local_changes(config_for(tmp_path), state)
    assert "gone" not in state.seen
