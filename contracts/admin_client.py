"""A small stdlib HTTP client for an emulator's admin API (`/__mock/`), as any user calls it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AdminError(RuntimeError):
    """The admin API answered with an error (`status`), or not at all (`status` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


ADMIN_TOKEN_HEADER = "X-Pisano-Mock-Admin-Token"


class AdminClient:
    def __init__(
        self, base_url: str, timeout: float = 30.0, admin_token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.admin_token = admin_token

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.admin_token:
            headers[ADMIN_TOKEN_HEADER] = self.admin_token
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AdminError(
                f"{method} {path}: {error.code} {error.read()[:300]!r}", error.code
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise AdminError(f"{method} {path}: {error}") from None

    def available(self) -> bool:
        return self.health() is not None

    def health(self) -> dict[str, Any] | None:
        """`/__mock/health` when an emulator or a proxy answers it ok (its `mode` says which)."""
        try:
            health = self.call("GET", "/__mock/health")
        except AdminError:
            return None
        return health if isinstance(health, dict) and health.get("status") == "ok" else None

    def reset(self) -> None:
        self.call("POST", "/__mock/reset")

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._all("requests", f"/__mock/requests?since={since}")

    def sharings(self, **filters: str) -> list[dict[str, Any]]:
        query = "".join(f"&{k}={urllib.parse.quote(v)}" for k, v in filters.items())
        return self._all("sharings", f"/__mock/sharings?since=0{query}")

    def add_fixtures(self, fixture: dict[str, Any]) -> Any:
        return self.call("POST", "/__mock/fixtures", fixture)

    def clock(self) -> dict[str, float]:
        return self.call("GET", "/__mock/clock")

    def set_clock(self, when: float, *, rate: float = 0.0) -> dict[str, float]:
        """Move the emulator's clock to `when`, frozen there unless `rate` is given."""
        return self.call("POST", "/__mock/clock", {"set": when, "rate": rate})

    def advance_clock(self, seconds: float, *, rate: float = 0.0) -> dict[str, float]:
        return self.call("POST", "/__mock/clock", {"advance": seconds, "rate": rate})

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        """Script a fault: add_fault(status=503, times=2, match={"token": "..."})."""
        return self.call("POST", "/__mock/faults", fault)

    def clear_faults(self) -> None:
        self.call("DELETE", "/__mock/faults")

    def throttle(self) -> dict[str, Any]:
        return self.call("GET", "/__mock/throttle")

    def _all(self, key: str, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", path)
            items += page[key]
            if not page.get("more") or not page[key]:
                return items
            last = page[key][-1]["id"]
            path = _with_since(path, last)


def _with_since(path: str, since: int) -> str:
    base, _, query = path.partition("?")
    parts = [p for p in query.split("&") if p and not p.startswith("since=")]
    return f"{base}?since={since}&" + "&".join(parts)
