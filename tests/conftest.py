"""Shared fixtures: the plugin's live emulator (reset per test) and servers with other settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, settings

from contracts.pytest_plugin import DEFAULT_CAMPAIGN, DEFAULT_TOKEN, PisanoMock
from mockserver.app import create_app
from mockserver.postman import Postman
from mockserver.server import LiveServer
from mockserver.settings import Settings, load_settings

pytest_plugins = ["redis_server"]  # redis_server, redis_url: a real redis-server

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def no_sender_outlives_its_test() -> Iterator[None]:
    """Senders of an app a test built must not claim the next test's messages from a shared
    Redis (they would deliver them with that app's settings)."""
    yield
    Postman.stop_all(timeout=2.0)


# SPEC 1.4 rows 5-7, alike on every sharing endpoint: rows of each endpoint's rules table (rule,
# keyword arguments of Api.post, expected code). Each breaks every later rule (its body: not JSON).
AUTH_RULES = [
    ("5 no Authorization", dict(headers={"Authorization": ""}, data=b"{"), 13030),
    ("6 unknown token", dict(headers={"Authorization": "Token token=nope"}, data=b"{"), 13001),
    (
        "7 inactive user",
        dict(headers={"Authorization": "Token token=inactive-user-token"}, data=b"{"),
        13011,
    ),
    (
        "7 locked account",
        dict(headers={"Authorization": "Token token=locked-account-token"}, data=b"{"),
        13036,
    ),
]

AUTH = {"Authorization": f"Token token={DEFAULT_TOKEN}"}
SHARINGS_PATH = f"/v1/email_campaigns/{DEFAULT_CAMPAIGN}/email_sharings"


class Api:
    """A thin HTTP client for the emulated API of one live server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def post(
        self,
        body: Any = None,
        *,
        path: str = SHARINGS_PATH,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
    ) -> requests.Response:
        sent_headers = {**AUTH, **(headers or {})}
        if data is None:
            return self.session.post(self.base_url + path, json=body, headers=sent_headers)
        sent_headers.setdefault("Content-Type", "application/json")
        return self.session.post(self.base_url + path, data=data, headers=sent_headers)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base_url + path, **kwargs)


@pytest.fixture
def api(pisano_mock: PisanoMock) -> Api:
    return Api(pisano_mock.base_url)


@contextmanager
def running(settings: Settings) -> Iterator[tuple[Api, PisanoMock]]:
    with LiveServer(create_app(settings)) as server:
        yield Api(server.base_url), PisanoMock(server.base_url)


@pytest.fixture
def server_with() -> Callable[..., Any]:
    """A live server whose settings differ from the default: `server_with(fidelity=...)`."""

    def start(**changes: Any) -> Any:
        return running(load_settings().with_changes(**changes))

    return start


@pytest.fixture(scope="session")
def live(pisano_mock_server: Any) -> tuple[Api, PisanoMock]:
    """The session's server for hypothesis tests, which reset it themselves per example."""
    return Api(pisano_mock_server.base_url), PisanoMock(pisano_mock_server.base_url)
