"""`GET /__mock/metrics` (SPEC 2.5): Prometheus text, bounded and masked labels (SPEC 2.6), and
counts that are right across workers and replicas: one suite over both stores, memory and a real
redis-server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import requests
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from contracts.pytest_plugin import DEFAULT_CAMPAIGN, PisanoMock
from mockserver.app import create_app
from mockserver.catalogue import CATALOGUE
from mockserver.metrics import (
    BUCKETS,
    REDIS_KEY,
    MemoryMetrics,
    Metrics,
    Sample,
    increments,
    open_metrics,
    route_template,
)
from mockserver.server import LiveServer
from mockserver.settings import Access, ThrottleSettings, load_settings
from tests.conftest import Api

ENDPOINT = "/v1/email_campaigns/{campaign_id}/email_sharings"
TIER = "4/10 seconds"
FROZEN = 1_000_000_000  # a multiple of 10: one throttle window for the whole test
FAULT_TOKEN = "fault-secret-token-0001"
UNKNOWN_TOKEN = "caller-secret-token-0002"
ADMIN_TOKEN = "admin-secret-token-0003"
STORAGES = ["memory", "redis"]

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- the two stores ------------------------------------------------------------------------------


@pytest.fixture(params=STORAGES)
def storage_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def metrics(storage_url: str) -> Metrics:
    return open_metrics(storage_url)


@pytest.fixture
def apps_on(storage_url: str) -> str:
    """`storage_url`, on which `create_app` starts: memory, or the real Redis store."""
    return storage_url


@contextmanager
def emulator(storage_url: str, **changes: Any) -> Iterator[tuple[Api, PisanoMock]]:
    settings = load_settings().with_changes(
        storage=storage_url, throttle=ThrottleSettings(tiers=TIER), **changes
    )
    with LiveServer(create_app(settings)) as server:
        yield Api(server.base_url), PisanoMock(server.base_url)


@pytest.fixture
def served(apps_on: str) -> Iterator[tuple[Api, PisanoMock]]:
    with emulator(apps_on) as pair:
        pair[1].set_clock(FROZEN)
        yield pair


def scrape(base_url: str, **headers: str) -> str:
    response = requests.get(base_url + "/__mock/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version="), response.headers
    return response.text


def series(text: str) -> Series:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Series, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def requests_total(found: Series, status: int | str, code: int | None, **labels: str) -> float:
    shown_code = "none" if code is None else str(code)
    wanted = {"endpoint": ENDPOINT, "method": "POST", "status": str(status), "code": shown_code}
    return value(found, "pisano_mock_requests_total", **{**wanted, **labels})


# -- the counters, per store ---------------------------------------------------------------------


def sample(**changes: Any) -> Sample:
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "method": "POST",
        "status": 200,
        "code": None,
        "seconds": 0.003,
        **changes,
    }
    return Sample(**fields)


def test_each_record_adds_its_increments(metrics):
    metrics.record(sample(recipients=2))
    metrics.record(sample(recipients=3, seconds=0.02))
    metrics.record(sample(status=429, throttled_tier=TIER, seconds=0.0004))
    metrics.record(sample(status=503, fault_kind="status", method="BREW"))
    totals = metrics.totals()
    assert totals[("requests", ENDPOINT, "POST", "200", "none")] == 2
    assert totals[("requests", ENDPOINT, "POST", "429", "none")] == 1
    assert totals[("requests", ENDPOINT, "other", "503", "none")] == 1  # methods are bounded
    assert totals[("recipients", ENDPOINT)] == 5
    assert totals[("throttled", ENDPOINT, TIER)] == 1
    assert totals[("faults", ENDPOINT, "status")] == 1
    assert totals[("duration_bucket", ENDPOINT, "0.005")] == 2
    assert totals[("duration_bucket", ENDPOINT, "0.025")] == 1
    assert totals[("duration_bucket", ENDPOINT, "0.001")] == 1
    assert totals[("duration_sum", ENDPOINT)] == pytest.approx(0.003 + 0.02 + 0.0004 + 0.003)


def test_concurrent_records_are_all_counted(metrics):
    def record_many() -> None:
        for _ in range(100):
            metrics.record(sample(recipients=1))

    threads = [threading.Thread(target=record_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = metrics.totals()
    assert totals[("requests", ENDPOINT, "POST", "200", "none")] == 800
    assert totals[("recipients", ENDPOINT)] == 800


def test_a_duration_past_every_finite_bucket_lands_in_inf():
    assert increments(sample(seconds=61.0))[("duration_bucket", ENDPOINT, "+Inf")] == 1
    assert BUCKETS[-1] == float("inf")


def test_route_templates_name_the_variable_never_its_value():
    assert route_template("/v1/email_campaigns/<campaign_id>/email_sharings") == ENDPOINT
    assert route_template("/x/<int:n>/<path:rest>") == "/x/{n}/{rest}"


def test_memory_metrics_are_the_default_store():
    assert isinstance(open_metrics("memory://"), MemoryMetrics)


# -- over HTTP, per store ------------------------------------------------------------------------


def known_sequence(api: Api, mock: PisanoMock) -> dict[str, requests.Response]:
    """Each kind of answer once (three accepted), with admin calls between them."""
    mock.add_fault(status=503, times=1, match={"token": FAULT_TOKEN})
    sent = {
        "accepted 2": api.post({"emails": ["a@example.com", "b@example.com"]}),
        "accepted 1": api.post({"emails": ["c@example.com"]}),
        "bad body": api.post({"emails": "not a list"}),
        "accepted 1 more": api.post({"emails": ["d@example.com"]}),
        "throttled": api.post({"emails": ["e@example.com"]}),
        "forced": api.post({"emails": ["f@example.com"]}, headers={"X-Pisano-Mock-Error": "13036"}),
        "unknown token": api.post(
            {"emails": ["g@example.com"]}, headers={"Authorization": f"Token token={UNKNOWN_TOKEN}"}
        ),
        "fault": api.post(
            {"emails": ["h@example.com"]}, headers={"Authorization": f"Token token={FAULT_TOKEN}"}
        ),
        "no route": api.request("GET", "/v1/nothing/here"),
    }
    mock.call("GET", "/__mock/health")
    mock.requests()
    return sent


def test_a_known_sequence_is_counted_as_answered(served):
    api, mock = served
    sent = known_sequence(api, mock)
    statuses = {what: response.status_code for what, response in sent.items()}
    assert statuses == {
        "accepted 2": 200,
        "accepted 1": 200,
        "bad body": 400,
        "accepted 1 more": 200,
        "throttled": 429,
        "forced": CATALOGUE[13036].http_status,
        "unknown token": 401,
        "fault": 503,
        "no route": 404,
    }
    found = series(scrape(mock.base_url))
    assert requests_total(found, 200, None) == 3
    assert requests_total(found, 400, 13028) == 1
    assert requests_total(found, 429, None) == 1
    assert requests_total(found, 403, 13036) == 1
    assert requests_total(found, 401, 13001) == 1
    assert requests_total(found, 503, None) == 1
    assert requests_total(found, 404, 13002, endpoint="unmatched", method="GET") == 1
    assert value(found, "pisano_mock_throttled_requests_total", endpoint=ENDPOINT, tier=TIER) == 1
    assert value(found, "pisano_mock_recipients_accepted_total", endpoint=ENDPOINT) == 4
    assert value(found, "pisano_mock_faults_fired_total", endpoint=ENDPOINT, kind="status") == 1
    # Admin calls are not counted: every request sample is one of the nine above.
    counted = sum(v for (name, _), v in found.items() if name == "pisano_mock_requests_total")
    assert counted == len(sent)


def test_dropped_connections_count_as_journaled(served):
    mock = served[1]
    for drop in ("before", "after"):
        mock.add_fault(drop=drop, times=1)
        with pytest.raises(requests.ConnectionError):
            Api(mock.base_url).post({"emails": ["a@example.com"]})  # a fresh connection each
    found = series(scrape(mock.base_url))
    assert requests_total(found, "none", None) == 1  # `before`: never answered
    assert requests_total(found, 200, None) == 1  # `after`: accepted, then closed
    assert value(found, "pisano_mock_recipients_accepted_total", endpoint=ENDPOINT) == 1
    assert value(found, "pisano_mock_faults_fired_total", endpoint=ENDPOINT, kind="drop") == 2


def test_durations_form_a_histogram_of_every_request(served):
    api, mock = served
    known_sequence(api, mock)
    found = series(scrape(mock.base_url))
    buckets = [
        value(found, "pisano_mock_request_duration_seconds_bucket", endpoint=ENDPOINT, le=le)
        for le in ("0.001", "0.01", "0.1", "1.0", "10.0", "+Inf")
    ]
    assert buckets == sorted(buckets)
    count = value(found, "pisano_mock_request_duration_seconds_count", endpoint=ENDPOINT)
    assert buckets[-1] == count == 8  # the nine but the unmatched one
    assert 0 < value(found, "pisano_mock_request_duration_seconds_sum", endpoint=ENDPOINT) < 8 * 5


def test_counters_survive_reset_while_the_journal_gauges_follow_the_store(served):
    api, mock = served
    known_sequence(api, mock)
    before = series(scrape(mock.base_url))
    assert value(before, "pisano_mock_journal_entries") == 9
    assert value(before, "pisano_mock_sharings") == 4
    mock.reset()
    after = series(scrape(mock.base_url))
    assert requests_total(after, 200, None) == 3
    assert value(after, "pisano_mock_recipients_accepted_total", endpoint=ENDPOINT) == 4
    assert value(after, "pisano_mock_journal_entries") == 0
    assert value(after, "pisano_mock_sharings") == 0


def test_the_build_is_shown_with_the_storage_kind_never_its_url(served, storage_url):
    found = series(scrape(served[1].base_url))
    builds = {labels: v for (name, labels), v in found.items() if name == "pisano_mock_build_info"}
    [(labels, one)] = builds.items()
    assert one == 1
    assert dict(labels)["storage"] == storage_url.split(":")[0]
    assert dict(labels)["version"]


def test_no_token_or_request_value_is_a_label(served):
    api, mock = served
    known_sequence(api, mock)
    mock.add_fault(error=13011, times=1, match={"token": "test-token"})
    api.post({"emails": ["i@example.com"]})
    text = scrape(mock.base_url)
    for secret in (FAULT_TOKEN, UNKNOWN_TOKEN, "test-token", DEFAULT_CAMPAIGN, "@example.com"):
        assert secret not in text
        assert secret[:3] + "****" not in text  # not even masked: no token is a label at all
    assert ENDPOINT in text


def test_every_family_has_help_text(served):
    for family in text_string_to_metric_families(scrape(served[1].base_url)):
        assert family.name.startswith("pisano_mock_") and len(family.documentation) > 10, family


def test_openmetrics_when_the_scraper_asks_for_it(served):
    api, mock = served
    api.post({"emails": ["a@example.com"]})
    response = requests.get(
        mock.base_url + "/__mock/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=10,
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(response.text)}
    assert families["pisano_mock_requests"].type == "counter"
    assert [s.value for s in families["pisano_mock_requests"].samples] == [1]


def test_metrics_are_never_journaled_and_take_no_query(served):
    mock = served[1]
    scrape(mock.base_url)
    refused = requests.get(mock.base_url + "/__mock/metrics?x=1", timeout=10)
    assert refused.status_code == 400 and "query" in refused.json()["reason"]
    assert mock.requests() == []


def test_with_an_admin_token_a_scrape_needs_it(apps_on):
    with emulator(apps_on, access=Access(admin_token=ADMIN_TOKEN)) as (_, mock):
        refused = requests.get(mock.base_url + "/__mock/metrics", timeout=10)
        assert refused.status_code == 401
        assert "pisano_mock_" not in refused.text
        scrape(mock.base_url, Authorization=f"Bearer {ADMIN_TOKEN}")


# -- across workers and replicas -----------------------------------------------------------------


@pytest.mark.parametrize("storage_url", ["redis"], indirect=True)
def test_two_apps_on_one_redis_show_the_sum_from_either(apps_on):
    with emulator(apps_on) as (one, one_admin), emulator(apps_on) as (two, two_admin):
        one_admin.set_clock(FROZEN)
        one.post({"emails": ["a@example.com", "b@example.com"]})
        two.post({"emails": "not a list"})
        two.post({"emails": ["c@example.com"]})
        for admin in (one_admin, two_admin):
            found = series(scrape(admin.base_url))
            assert requests_total(found, 200, None) == 2
            assert requests_total(found, 400, 13028) == 1
            assert value(found, "pisano_mock_recipients_accepted_total", endpoint=ENDPOINT) == 3


def test_a_memory_emulator_counts_only_its_own():
    with emulator("memory://") as (one, _), emulator("memory://") as (_, two_admin):
        one.post({"emails": ["a@example.com"]})
        assert requests_total(series(scrape(two_admin.base_url)), 200, None) == 0


def test_the_openapi_document_states_the_scrape(served):
    document = served[1].call("GET", "/openapi.json")
    answer = document["paths"]["/__mock/metrics"]["get"]["responses"]["200"]
    assert set(answer["content"]) == {"text/plain", "application/openmetrics-text"}


def test_counts_redis_refused_go_with_the_next_request_it_takes(redis_url, caplog):
    metrics = open_metrics(redis_url)
    client = redis.Redis.from_url(redis_url)
    client.set(REDIS_KEY, "trampled")  # not a hash: every HINCRBYFLOAT fails, as in an outage
    metrics.record(sample(recipients=2))
    metrics.record(sample(recipients=1))
    assert caplog.text.count("metrics: Redis refused") == 1  # once, not once per request
    client.delete(REDIS_KEY)
    metrics.record(sample(recipients=4))
    totals = metrics.totals()
    assert totals[("requests", ENDPOINT, "POST", "200", "none")] == 3
    assert totals[("recipients", ENDPOINT)] == 7
