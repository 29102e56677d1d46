"""Tell GitHub at once that a delivery was taken: a `pending` "queued" status per run it will start.

The receiver answers GitHub first; announcing runs beside it, on one thread of its own. It asks
the question the dispatch sensor asks (``plan_dispatch``: which sources and environments the
delivery starts), puts one status per run in the outbox, and sends what the outbox holds. A slow
or absent GitHub costs the receiver nothing: the items wait in the outbox for the delivery sensor,
and the run's own statuses, added later, are sent after them (the outbox keeps a repository's order).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.feedback import checks, github_items, trigger_status
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.intake.dispatch import PrTouches, plan_dispatch
from manager_pipeline.intake.inbox import PENDING, InboxEvent
from manager_pipeline.intake.webhooks import Delivery

log = logging.getLogger("manager_pipeline.receiver")

QUEUE_LIMIT = 10_000


def queued_statuses(
    row_id: int, delivery: Delivery, config: ManagerConfig, touches: PrTouches, runs_url: str, check_runs: bool = False
) -> list[FeedbackItem]:
    """The `queued` statuses of the runs the dispatch sensor will start for this delivery (``check_runs``, a
    GitHub App: queued check runs, which those runs take over)."""
    if not delivery.sha or delivery.hold:
        return []
    planned = plan_dispatch([InboxEvent(row_id, delivery, PENDING)], config, touches).runs
    if delivery.trigger_ref is not None:
        # On the application commit, one per infra source and environment.
        return [
            trigger_status.queued(delivery.repo, delivery.sha, run.source, run.environment, runs_url)
            for run in planned
        ]
    if check_runs:
        return [
            checks.queued(
                github_items.queued(delivery.repo, delivery.sha, run.environment, runs_url),
                run.source,
                run.environment,
                delivery.delivery_id,
                runs_url,
            )
            for run in planned
        ]
    return [github_items.queued(delivery.repo, delivery.sha, run.environment, runs_url) for run in planned]


class Announcer:
    """Announces stored deliveries on a thread of its own, in the order they were stored."""

    def __init__(
        self,
        config: Callable[[], ManagerConfig],
        touches: PrTouches,
        enqueue: Callable[[list[FeedbackItem]], object],
        send: Callable[[], object],
        runs_url: str,
        check_runs: bool = False,
    ):
        self._config, self._touches, self._enqueue, self._send = config, touches, enqueue, send
        self._runs_url, self._check_runs = runs_url, check_runs
        self._waiting: queue.Queue[tuple[int, Delivery] | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._work, name="announce-queued", daemon=True)
        self._thread.start()

    def announce(self, row_id: int, delivery: Delivery) -> None:
        """Never blocks the request: with the queue full, the run's own status is the first one seen."""
        try:
            self._waiting.put_nowait((row_id, delivery))
        except queue.Full:
            log.warning("delivery %s: too many waiting to be announced; its run still starts", delivery.delivery_id)

    def close(self, timeout: float = 5.0) -> None:
        self._waiting.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while (job := self._waiting.get()) is not None:
            row_id, delivery = job
            try:
                items = queued_statuses(
                    row_id, delivery, self._config(), self._touches, self._runs_url, self._check_runs
                )
                if items:
                    self._enqueue(items)
                    self._send()
            except Exception as exc:  # noqa: BLE001 - a courtesy status must never stop the receiver
                log.warning("delivery %s: queued status not sent (%s)", delivery.delivery_id, type(exc).__name__)
