"""The senders (SPEC 1.7): threads that take queued messages from the outbox, render them and
deliver them through the campaign's provider, off the request path, retrying with backoff.

Threads start when there is work (`wake`, on the first add of a non-outbox batch, or `start`) and
stop after a while idle, so that an app that is dropped (tests make many) leaves none behind.
Retries wait in real time (the outbox's clock), `sent_at` reads the emulator's clock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from .clock import Clock
from .links import LinkMaker
from .messages import Message, RenderError, render
from .outbox import UNSENT, HeldMessage, Outbox, Settled
from .providers import DeliveryError, deliver
from .settings import Delivery

log = logging.getLogger("pisano_mock")

Send = Callable[[Message, Mapping[str, Any], float], None]  # providers.deliver's shape
IDLE_POLL_SECONDS = 0.2  # an idle sender looks again this often: work another worker added (Redis)
IDLE_EXIT_SECONDS = 10.0  # then, idle this long, it stops (started again by the next `wake`)
LEASE_MARGIN_SECONDS = 30.0  # a claim outlives one attempt by this: after it, a sender is dead
_RUNNING: weakref.WeakSet[Postman] = weakref.WeakSet()  # every postman of this process: stop_all


class Postman:
    """`delivery.senders` threads delivering what the outbox queues; `flush` waits for them."""

    def __init__(
        self,
        outbox: Outbox,
        links: LinkMaker,
        delivery: Delivery,
        clock: Clock,
        send: Send = deliver,
        shared: bool = False,
    ) -> None:
        self.outbox = outbox
        # Shared storage: work may appear any time (another replica queued it, then died), so one
        # sender always keeps looking; in memory only this process adds work, and wakes us.
        self.shared = shared
        self.links = links
        self.delivery = delivery
        self.clock = clock
        self.send = send
        self.lease_seconds = delivery.attempt_timeout_seconds + LEASE_MARGIN_SECONDS
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # a sender waits here for work
        self._settled = threading.Condition(threading.Lock())  # a flush waits here
        self._senders: set[threading.Thread] = set()
        self._woken = False  # a wake no sender has seen yet: none may stop idle before it does
        self._stopping = False
        self._unreadable = False  # the last claim failed: logged once, not at every poll
        self._pid = os.getpid()
        _RUNNING.add(self)

    def wake(self) -> None:
        """There is work: start the missing senders, and rouse an idle one."""
        self._after_fork()
        with self._lock:
            if self._stopping:
                return
            self._woken = True
            while len(self._senders) < self.delivery.senders:
                self._start_sender()
            self._work.notify_all()

    start = wake  # shared storage: work other workers queued, or a restart left in flight

    def _after_fork(self) -> None:
        """A worker forked from the process that built the app has none of its threads: forget
        them (and their locks), or the senders would never start here."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._settled = threading.Condition(threading.Lock())
        self._senders = set()

    def _start_sender(self) -> None:
        sender = threading.Thread(target=self._run, name="pisano-mock-sender", daemon=True)
        self._senders.add(sender)
        sender.start()

    @staticmethod
    def stop_all(timeout: float = 5.0) -> None:
        """Stop every postman of this process: a worker exiting, or a test ending."""
        for postman in list(_RUNNING):
            postman.stop(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every sender (a message being sent is finished first); a later wake starts
        them again."""
        with self._lock:
            self._stopping = True
            senders = list(self._senders)
            self._work.notify_all()
        for sender in senders:
            sender.join(timeout)
        with self._lock:
            self._stopping = False

    @property
    def senders(self) -> int:
        with self._lock:
            return len(self._senders)

    def flush(self, timeout: float) -> dict[str, int]:
        """Wait until nothing is queued or sending, or `timeout` seconds; the counts by status."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.outbox.statuses()
            left = deadline - time.monotonic()
            if not pending(counts) or left <= 0:
                return counts
            self.wake()
            with self._settled:
                self._settled.wait(min(left, IDLE_POLL_SECONDS))

    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stopping:
            if self._deliver_safely():
                idle_since = time.monotonic()
            elif not self._wait_for_work(idle_since):
                break
        with self._lock:
            self._senders.discard(threading.current_thread())

    def _deliver_safely(self) -> bool:
        try:
            delivered = self.deliver_one()
        except Exception as error:  # the storage went away (Redis): say so once, look again later
            if not self._unreadable:
                log.error("sender: the outbox cannot be read: %s: %s", type(error).__name__, error)
            self._unreadable = True
            return False
        self._unreadable = False
        return delivered

    def _wait_for_work(self, idle_since: float) -> bool:
        """Wait for a wake or the next poll; False when this sender should stop: stopping, or
        idle too long with no wake unseen."""
        with self._lock:
            if self._woken:
                self._woken = False
                return True
            if self._stopping or self._idle_for_good(idle_since):
                # Gone from the set under the same lock: a wake from now on starts a new sender.
                self._senders.discard(threading.current_thread())
                return False
            self._work.wait(IDLE_POLL_SECONDS)
            return not self._stopping

    def _idle_for_good(self, idle_since: float) -> bool:
        """Idle long enough to stop, and nothing anywhere left to deliver: a message still
        `sending` may be another worker's that died, claimable when its lease runs out."""
        if time.monotonic() - idle_since <= IDLE_EXIT_SECONDS:
            return False
        if self.shared and len(self._senders) == 1:
            return False  # the last one stays
        try:
            return not pending(self.outbox.statuses())
        except Exception:  # unreadable now (Redis away): keep looking, as a claim would
            return False

    def deliver_one(self) -> bool:
        """Claim one message and make one attempt; False when none was due."""
        claimed = self.outbox.claim(self.lease_seconds, fair_share(self.delivery.senders))
        if claimed is None:
            return False
        held = claimed.message
        self.outbox.settle(held.id, self.attempt(held))
        with self._settled:
            self._settled.notify_all()
        return True

    def attempt(self, held: HeldMessage) -> Settled:
        """One delivery attempt of a claimed message, and how it ended."""
        try:
            message = render(held.mail, held.index, self.links)
        except RenderError as error:
            return Settled(error=str(error))  # the same template fails every time: no retry
        try:
            self.send(message, held.mail.letterhead.provider, self.delivery.attempt_timeout_seconds)
        except DeliveryError as error:
            if error.permanent:  # a refusal trying again soon cannot change
                return Settled(error=str(error))
            return self.retry_or_fail(held.state.attempts, str(error))
        except Exception as error:  # a provider's bug fails its message, never the sender
            return self.retry_or_fail(held.state.attempts, f"{type(error).__name__}: {error}")
        return Settled(sent_at=self.clock.now())

    def retry_or_fail(self, attempts: int, error: str) -> Settled:
        """Again after `backoff_seconds * 2**(attempts-1)`, or failed after `max_attempts`."""
        if attempts >= self.delivery.max_attempts:
            return Settled(error=error)
        return Settled(error=error, retry_in=self.delivery.backoff_seconds * 2 ** (attempts - 1))


def fair_share(senders: int) -> int:
    """The most senders one campaign may hold at once: another campaign always has one, so a
    provider that hangs slows only its own campaign (issue 10)."""
    return max(1, senders // 2)


def pending(counts: Mapping[str, int]) -> int:
    """How many messages are not yet sent nor failed."""
    return sum(counts.get(status, 0) for status in UNSENT)
