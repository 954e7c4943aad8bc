"""pytest plugin (entry point `pytest11`): a live emulator per session, reset before each test.

def test_my_client(pisano_mock):
    my_client.send(pisano_mock.base_url, pisano_mock.token, pisano_mock.campaign_id, customers)
    assert {s["email"] for s in pisano_mock.sharings()} == {c["email"] for c in customers}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .admin_client import AdminClient
from .expectations import DEFAULT_CAMPAIGN, DEFAULT_TOKEN


class PisanoMock(AdminClient):
    """A running emulator: where it is, the default credentials, and its admin API."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.token = DEFAULT_TOKEN
        self.campaign_id = DEFAULT_CAMPAIGN

    @property
    def email_sharings_url(self) -> str:
        return f"{self.base_url}/v1/email_campaigns/{self.campaign_id}/email_sharings"


@pytest.fixture(scope="session")
def pisano_mock_server() -> Iterator[Any]:
    """The session's emulator, started in-process on a free port with the default fixture."""
    from mockserver.app import create_app
    from mockserver.server import LiveServer

    with LiveServer(create_app()) as server:
        yield server


@pytest.fixture
def pisano_mock(pisano_mock_server: Any) -> PisanoMock:
    """The session's emulator, reset: empty journal and sharings, clock back to real time."""
    mock = PisanoMock(pisano_mock_server.base_url)
    mock.reset()
    return mock


@pytest.fixture
def pisano_contract(pisano_mock_server: Any) -> Callable[..., Any]:
    """Run the client suite against a Python callable on the session's emulator; fail the test
    with the kit's report when a check does not hold. Returns the suite's result. With
    `endpoint="sms"` or `"link"` the callable gets the SMS campaign or the link channel in place
    of the campaign, and the customers of that endpoint."""
    from .client_suite import run_client_suite
    from .report import text_report
    from .runner import CallableClient, Target

    def check(
        deliver: Callable[[str, str, str, list[dict[str, Any]]], int | None],
        *,
        max_examples: int = 10,
        seed: int = 0,
        shrink_seconds: float = 30.0,
        scenarios: tuple[str, ...] | None = None,
        endpoint: str = "email",
    ) -> Any:
        result = run_client_suite(
            Target(pisano_mock_server.base_url, DEFAULT_TOKEN, DEFAULT_CAMPAIGN),
            CallableClient(deliver),
            max_examples=max_examples,
            seed_value=seed,
            shrink_seconds=shrink_seconds,
            scenarios=scenarios,
            progress=None,
            endpoint=endpoint,
        )
        if not result.passed:
            pytest.fail(text_report(result, rerun_hint="seed={seed}"), pytrace=False)
        return result

    return check
