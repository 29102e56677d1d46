"""Issue 10 #15: a failing item backs off and is parked dead; work is picked per repository."""

from __future__ import annotations

import sqlite3

import pytest

from manager_pipeline.cli import main
from manager_pipeline.feedback import outbox as outbox_module
from manager_pipeline.feedback.delivery import deliver
from manager_pipeline.feedback.outbox import FeedbackItem, Outbox


class Clock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(outbox_module, "now", clock)
    return clock


class FakeGitHub:
    """Records statuses; a description of "poison" always fails."""

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def create_status(self, repo, sha, context, state, description, target_url):
        if description == "poison":
            raise RuntimeError("422 Validation Failed")
        self.sent.append((repo, description))


def status(repo: str, description: str) -> FeedbackItem:
    return FeedbackItem(
        repo,
        "status",
        {"sha": "a" * 40, "context": "c", "state": "success", "description": description, "target_url": "u"},
    )


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    return Outbox(f"sqlite:///{tmp_path / 'outbox.db'}", max_attempts=4, backoff_s=10, max_backoff_s=25)


def test_a_failing_item_backs_off_exponentially_then_is_parked_dead_with_its_error(outbox, clock):
    github = FakeGitHub()
    [poison] = outbox.add([status("acme/a", "poison")])
    report = deliver(outbox, github)
    assert report.failed and outbox.get(poison).next_attempt_at == clock.now + 10
    # Not due yet: nothing is tried.
    assert deliver(outbox, github).waiting == [poison] and outbox.get(poison).attempts == 1
    delays = []
    for _ in range(2):
        clock.now = outbox.get(poison).next_attempt_at
        deliver(outbox, github)
        delays.append(outbox.get(poison).next_attempt_at - clock.now)
    assert delays == [20, 25]  # doubling, capped
    clock.now = outbox.get(poison).next_attempt_at
    report = deliver(outbox, github)
    assert report.dead == [poison]
    dead = outbox.get(poison)
    assert dead.state == "dead" and dead.attempts == 4 and "422 Validation Failed" in dead.last_error
    assert outbox.undelivered() == [] and [s.id for s in outbox.items("dead")] == [poison]
    clock.now += 10_000
    assert deliver(outbox, github).delivered == [] and outbox.get(poison).attempts == 4


def test_a_later_item_waits_while_an_earlier_one_backs_off_and_goes_once_it_is_dead(outbox, clock):
    github = FakeGitHub()
    outbox.add([status("acme/a", "poison"), status("acme/a", "after"), status("acme/b", "other")])
    deliver(outbox, github)
    assert github.sent == [("acme/b", "other")]  # another repository is not held back
    for _ in range(2):
        clock.now += 100
        deliver(outbox, github)
        assert ("acme/a", "after") not in github.sent  # waits behind the item backing off
    clock.now += 100
    report = deliver(outbox, github)
    assert report.dead == [1] and outbox.get(1).state == "dead"
    assert github.sent == [("acme/b", "other"), ("acme/a", "after")]


def test_an_operator_re_queues_a_dead_item(outbox, clock, tmp_path, monkeypatch, capsys):
    github = FakeGitHub()
    [item] = outbox.add([status("acme/a", "poison")])
    for _ in range(4):
        deliver(outbox, github)
        clock.now += 100
    assert outbox.get(item).state == "dead"
    monkeypatch.setenv("MANAGER_CONFIG", str(tmp_path / "manager.yaml"))
    monkeypatch.setenv("MANAGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.setenv("MANAGER_DATABASE_URL", f"sqlite:///{tmp_path / 'outbox.db'}")
    assert main(["feedback", "--dead"]) == 0
    listed = capsys.readouterr().out
    assert f"{item:<8} dead" in listed and "acme/a" in listed and "422 Validation Failed" in listed
    assert "manager-pipeline feedback --retry ID" in listed
    assert main(["feedback", "--retry", str(item)]) == 0
    assert "re-queued" in capsys.readouterr().out
    again = outbox.get(item)
    assert again.state == "pending" and again.attempts == 0 and again.next_attempt_at is None
    assert main(["feedback", "--dead"]) == 0 and "no dead feedback items" in capsys.readouterr().out
    assert main(["feedback", "--retry", "999"]) == 2


def test_one_repository_cannot_starve_the_others(outbox, clock):
    outbox.add([status("acme/big", f"big {n}") for n in range(120)])
    outbox.add([status("acme/small", "small"), status("acme/tiny", "tiny")])
    picked = outbox.due(per_repo=50)
    assert [s.item.repo for s in picked[:3]] == ["acme/big", "acme/small", "acme/tiny"]
    assert sum(s.item.repo == "acme/big" for s in picked) == 50
    # Within a repository, still oldest first.
    big = [s.item.payload["description"] for s in picked if s.item.repo == "acme/big"]
    assert big == [f"big {n}" for n in range(50)]
    github = FakeGitHub()
    deliver(outbox, github)
    assert github.sent[1:3] == [("acme/small", "small"), ("acme/tiny", "tiny")]


def test_a_blocked_repository_with_a_long_backlog_does_not_hide_the_others(outbox, clock):
    # The old global "first 1000 items" read only the blocked repository's backlog.
    outbox.add([status("acme/big", "poison"), *[status("acme/big", f"big {n}") for n in range(1000)]])
    outbox.add([status("acme/small", "small")])
    github = FakeGitHub()
    report = deliver(outbox, github)
    assert github.sent == [("acme/small", "small")] and len(report.waiting) == 49


def test_an_outbox_made_before_backoff_gets_its_column(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE feedback_outbox (id INTEGER PRIMARY KEY, created_at FLOAT NOT NULL, repo VARCHAR(200) "
            "NOT NULL, kind VARCHAR(32) NOT NULL, payload TEXT NOT NULL, run_id VARCHAR(64), state VARCHAR(16) "
            "NOT NULL, attempts INTEGER NOT NULL, last_error TEXT, claimed_until FLOAT, delivered_at FLOAT)"
        )
        connection.execute(
            "INSERT INTO feedback_outbox (created_at, repo, kind, payload, state, attempts) "
            "VALUES (1, 'acme/a', 'status', '{}', 'pending', 0)"
        )
    outbox = Outbox(f"sqlite:///{path}")
    assert [s.item.repo for s in outbox.due()] == ["acme/a"] and outbox.claim(1)


def test_two_runs_of_one_repository_both_finish_their_feedback_in_their_own_pass(outbox):
    """A run that finds an item held by another run's delivery waits for it, then sends its own."""
    import threading

    first_held = threading.Event()
    release = threading.Event()

    class SlowGitHub(FakeGitHub):
        def create_status(self, repo, sha, context, state, description, target_url):
            if description == "run A":
                first_held.set()
                release.wait(5)
            super().create_status(repo, sha, context, state, description, target_url)

    github = SlowGitHub()
    outbox.add([status("acme/a", "run A")])
    reports = {}
    a = threading.Thread(target=lambda: reports.setdefault("a", deliver(outbox, github)))
    a.start()
    assert first_held.wait(5)
    [mine] = outbox.add([status("acme/a", "run B")])
    threading.Timer(0.3, release.set).start()
    reports["b"] = deliver(outbox, github)  # B meets A's item, held by A, ahead of its own
    a.join(5)
    assert mine in reports["b"].delivered and reports["b"].waiting == []
    assert github.sent == [("acme/a", "run A"), ("acme/a", "run B")]  # in order, once each
