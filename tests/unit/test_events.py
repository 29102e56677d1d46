from manager_pipeline.events import DispatchEvent


def test_tags_round_trip():
    event = DispatchEvent(
        source="web",
        environment="production",
        sha="a" * 40,
        branch="main",
        pr=42,
        delivery_id="d-1",
        plan_only=True,
        trigger="webhook",
    )
    assert DispatchEvent.from_tags("web", "production", event.to_tags()) == event


def test_missing_tags_mean_a_manual_run_and_backfills_are_named():
    assert DispatchEvent.from_tags("web", "staging", {}) == DispatchEvent("web", "staging")
    assert DispatchEvent.from_tags("web", "staging", {"dagster/backfill": "x"}).trigger == "backfill"
    assert DispatchEvent.from_tags("web", "staging", {"manager/pr": "abc"}).pr is None
