"""The counters behind `GET /__mock/metrics` (SPEC 2.5), and their Prometheus text.

They live where the emulator's state lives: this process's memory, or a Redis hash every worker and
replica adds to (one script per request), so a scrape of any of them shows the total. `Metrics`
is one protocol with those two implementations; `exposition` renders their totals with the store's
counts. Labels are bounded and show no request value (SPEC 2.6): the route template, never the raw
path; a method from a fixed set; status, catalogue code, throttle tier, fault kind. Counters are
monotonic: `POST /__mock/reset` leaves them (Prometheus reads a drop as a restart); the journal
and sharings gauges follow the store.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol
from urllib.parse import urlsplit

import orjson
import redis
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger("pisano_mock")
PREFIX = "pisano_mock_"
REDIS_KEY = "pisano-mock:metrics:counters"  # one hash: one HGETALL per scrape
REDIS_TIMEOUT_SECONDS = 5.0  # a Redis that stops answering delays a request, never hangs it
# Seconds; the emulator answers in about a millisecond, a `delay_ms` fault in up to 60 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the endpoint of a request no route matched (404/13002)
NONE = "none"  # no status (`drop: before`), no catalogue code

Key = tuple[str, ...]  # (series, label values...): the same in memory and in Redis


@dataclass(frozen=True)
class Sample:
    """What one request to the emulated API adds to the counters."""

    endpoint: str
    method: str
    status: int | None
    code: int | None
    seconds: float
    throttled_tier: str | None = None
    recipients: int = 0
    fault_kind: str | None = None


class Metrics(Protocol):
    """Where the counters are kept: `record` once per request, `totals` once per scrape."""

    def record(self, sample: Sample) -> None: ...
    def totals(self) -> dict[Key, float]: ...


def increments(sample: Sample) -> dict[Key, float]:
    """The counters one request adds to, for either store: the one place the rule is said."""
    method = sample.method if sample.method in METHODS else "other"
    labels = (sample.endpoint, method, _shown(sample.status), _shown(sample.code))
    adds: dict[Key, float] = {
        ("requests", *labels): 1,
        ("duration_bucket", sample.endpoint, _bucket(sample.seconds)): 1,
        ("duration_sum", sample.endpoint): sample.seconds,
    }
    if sample.throttled_tier is not None:
        adds[("throttled", sample.endpoint, sample.throttled_tier)] = 1
    if sample.recipients:
        adds[("recipients", sample.endpoint)] = sample.recipients
    if sample.fault_kind is not None:
        adds[("faults", sample.endpoint, sample.fault_kind)] = 1
    return adds


def _shown(value: int | None) -> str:
    return NONE if value is None else str(value)


def _bucket(seconds: float) -> str:
    return floatToGoString(next(le for le in BUCKETS if seconds <= le))


class MemoryMetrics:
    """This process's counters: a lock and a dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[Key, float] = {}

    def record(self, sample: Sample) -> None:
        adds = increments(sample)
        with self._lock:
            for key, amount in adds.items():
                self._totals[key] = self._totals.get(key, 0) + amount

    def totals(self) -> dict[Key, float]:
        with self._lock:
            return dict(self._totals)


# One command per request, atomic (a scrape never sees half a request): it costs what a PING
# costs, a quarter less than a MULTI/EXEC pipeline of HINCRBYs (bench/metrics.py, report of
# issue 9). HINCRBYFLOAT for all: counts stay exact to 2^53.
_RECORD = "for i = 1, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1]) end"


class RedisMetrics:
    """Counters in one Redis hash, shared by every worker and replica on that database.

    A request is answered even when its increments cannot reach Redis: a client told 13000
    after its recipients were recorded would send them again. They wait in this process and go
    with the next request that reaches Redis (bounded: the keys are)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._record = client.register_script(_RECORD)
        self._lock = threading.Lock()
        self._pending: dict[Key, float] = {}
        self._failing = False

    def record(self, sample: Sample) -> None:
        adds = increments(sample)
        with self._lock:
            if self._pending:
                adds = _added(self._pending, adds)
                self._pending = {}
        arguments: list[bytes | float] = []
        for key, amount in adds.items():
            arguments += (_field(key), amount)
        try:
            self._record(keys=[REDIS_KEY], args=arguments)
        except redis.RedisError as error:
            self._keep(adds, error)
        else:
            self._failing = False

    def _keep(self, adds: dict[Key, float], error: redis.RedisError) -> None:
        with self._lock:
            if not self._failing:  # once per outage, not once per request
                log.warning("metrics: Redis refused the counters, kept for later: %s", error)
            self._failing = True
            self._pending = _added(self._pending, adds)

    def totals(self) -> dict[Key, float]:
        held = self._client.hgetall(REDIS_KEY)
        return {tuple(orjson.loads(field)): float(amount) for field, amount in held.items()}


def _added(totals: dict[Key, float], adds: dict[Key, float]) -> dict[Key, float]:
    return {**totals, **{key: totals.get(key, 0) + amount for key, amount in adds.items()}}


@cache
def _field(key: Key) -> bytes:
    # JSON: unambiguous whatever a label holds, and readable in redis-cli. Keys are few (bounded).
    return orjson.dumps(key)


OPENERS: dict[str, Callable[[str], Metrics]] = {
    "memory": lambda _: MemoryMetrics(),
    "redis": lambda url: RedisMetrics(
        redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
    ),
}


def open_metrics(storage: str) -> Metrics:
    """The counters for `--storage` (memory:// or redis://...), where the rest of the state is."""
    return OPENERS[urlsplit(storage).scheme](storage)


# -- the Prometheus text ---------------------------------------------------------------------------

# (series, metric name, help, label names): the counters, one row each.
COUNTERS = (
    (
        "requests",
        "requests",
        "Requests answered by the emulated API (admin calls not counted), by route template, "
        "method, HTTP status and catalogue code (none: no code, or no answer for `drop: before`).",
        ("endpoint", "method", "status", "code"),
    ),
    (
        "throttled",
        "throttled_requests",
        "Requests refused by the throttle (429), by the tier exceeded.",
        ("endpoint", "tier"),
    ),
    (
        "recipients",
        "recipients_accepted",
        "Recipients accepted (recorded as sharings).",
        ("endpoint",),
    ),
    (
        "faults",
        "faults_fired",
        "Scripted faults (POST /__mock/faults) that fired, by kind.",
        ("endpoint", "kind"),
    ),
)
# (store.counts() key, metric name, help): these follow the store, reset included.
GAUGES = (
    ("requests", "journal_entries", "Requests held in the journal."),
    ("requests_dropped", "journal_dropped", "Journal entries dropped (oldest first) since reset."),
    ("sharings", "sharings", "Sharings (one per recipient) held."),
    ("sharings_dropped", "sharings_dropped", "Sharings dropped (oldest first) since reset."),
)


@cache
def package_version() -> str:
    try:
        return version("pisano-mock")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


@dataclass(frozen=True)
class Snapshot(Collector):
    """One scrape: the counters' totals and the store's counts, as metric families."""

    totals: Mapping[Key, float]
    counts: Mapping[str, int]
    storage: str
    outbox: Mapping[str, int]  # messages by status (outbox.STATUSES: five labels), and dropped

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield self._durations()
        for count, name, help_text in GAUGES:
            yield GaugeMetricFamily(PREFIX + name, help_text, value=self.counts.get(count, 0))
        yield from self._outbox()
        build = {"version": package_version(), "storage": urlsplit(self.storage).scheme}
        yield InfoMetricFamily(PREFIX + "build", "The emulator's version and storage.", build)

    def _outbox(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            PREFIX + "outbox_messages", "Messages held in the outbox, by status.", labels=["status"]
        )
        for status, n in self.outbox.items():
            if status != "dropped":
                family.add_metric([status], n)
        yield family
        yield GaugeMetricFamily(
            PREFIX + "outbox_dropped",
            "Outbox messages dropped (oldest sent, failed or captured first) since reset.",
            value=self.outbox.get("dropped", 0),
        )

    def _series(self, series: str) -> Iterator[tuple[Key, float]]:
        return ((key[1:], value) for key, value in sorted(self.totals.items()) if key[0] == series)

    def _counters(self) -> Iterator[Metric]:
        for series, name, help_text, labels in COUNTERS:
            family = CounterMetricFamily(PREFIX + name, help_text, labels=labels)
            for values, total in self._series(series):
                family.add_metric(list(values), total)
            yield family

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            PREFIX + "request_duration_seconds",
            "Time to answer a request of the emulated API, by route template.",
            labels=("endpoint",),
        )
        sums = dict(self._series("duration_sum"))
        for (endpoint,), total in sorted(sums.items()):
            family.add_metric([endpoint], self._buckets(endpoint), total)
        return family

    def _buckets(self, endpoint: str) -> list[tuple[str, float]]:
        counts = {le: n for (where, le), n in self._series("duration_bucket") if where == endpoint}
        cumulative, buckets = 0.0, []
        for le in map(floatToGoString, BUCKETS):
            cumulative += counts.get(le, 0)
            buckets.append((le, cumulative))
        return buckets


def exposition(
    metrics: Metrics,
    counts: Mapping[str, int],
    storage: str,
    accept: str | None,
    outbox: Mapping[str, int],
) -> tuple[bytes, str]:
    """The body and content type of a scrape: Prometheus text, or OpenMetrics when asked for."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(Snapshot(metrics.totals(), counts, storage, outbox)), content_type


_ROUTE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@cache
def route_template(rule: str) -> str:
    """A Werkzeug rule as OpenAPI writes it: `/v1/email_campaigns/{campaign_id}/email_sharings`."""
    return _ROUTE_VARIABLE.sub(r"{\1}", rule)
