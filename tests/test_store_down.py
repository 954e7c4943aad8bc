"""When the shared store (Redis) goes away while the emulator serves: every answer still says what
is wrong, in the right voice (SPEC 2.2: the admin API's errors are ours; the emulated API's are
the catalogue's), and the emulator serves again once the store is back."""

from __future__ import annotations

import requests
from conftest import AUTH, SHARINGS_PATH
from redis_server import free_port, running_redis

from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import load_settings


def test_a_store_that_goes_away_is_a_503_on_the_admin_api_and_13000_on_the_emulated_one():
    port = free_port()
    with running_redis(port) as url:
        app = create_app(load_settings().with_changes(storage=f"{url}/0"))
        with LiveServer(app) as server:
            assert requests.get(f"{server.base_url}/__mock/health", timeout=5).status_code == 200
            stopped_at = server.base_url
    with LiveServer(app) as server:  # the same app, its Redis gone
        for path in ("/__mock/health", "/__mock/metrics", "/__mock/requests"):
            answer = requests.get(server.base_url + path, timeout=30)
            # Before: 400 with Pisano's 13000 body, as if the caller had asked wrongly.
            assert answer.status_code == 503, (path, answer.text)
            body = answer.json()
            assert body["status"] == "service_unavailable"
            assert body["reason"].startswith("storage: cannot reach redis://127.0.0.1:")
        answer = requests.post(
            server.base_url + SHARINGS_PATH,
            json={"emails": ["a@example.com"]},
            headers=AUTH,
            timeout=30,
        )
        assert answer.status_code == 400 and answer.json()["code"] == 13000
        assert answer.headers["X-Pisano-Mock-Reason"].startswith("storage: cannot reach redis://")
    assert stopped_at
    with running_redis(port), LiveServer(app) as server:  # back (empty): serving again
        assert requests.get(f"{server.base_url}/__mock/health", timeout=5).status_code == 200
        # Redis came back empty (no persistence, as docker-compose runs it): the configured
        # fixture is seeded again. Before, the default token was 401 until someone reset.
        answer = requests.post(
            server.base_url + SHARINGS_PATH,
            json={"emails": ["b@example.com"]},
            headers=AUTH,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
