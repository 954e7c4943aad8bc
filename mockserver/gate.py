"""SPEC 1.4 rows 2-4 before every emulated endpoint: forced entries, scripted faults, throttle.

Like Rack::Attack, this runs before authentication. A forced entry or a fault that answers comes
before the throttle and is not counted by it (SPEC 2.4).
"""

from __future__ import annotations

import contextlib
import math
import socket
from http import HTTPStatus

import orjson
from flask import Response, g, request

from .auth import token_from_header
from .catalogue import CATALOGUE, PisanoError
from .clock import Clock
from .context import Emulator
from .faults import Fault, delay
from .headers import FORCE_ERROR
from .throttle import TierCount, Verdict

RACK_ATTACK_BODY = b"Retry later\n"


def guard(emulator: Emulator) -> Response | None:
    """Rows 2-4 for the current request: an answer that replaces the endpoint's, or None.

    The throttle reads its own instant under its lock, and the journal entry takes it (SPEC 1.3
    Exactness)."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # once: each proxy use costs
    forced = req.headers.get(FORCE_ERROR)
    if forced is not None:
        raise forced_error(forced)
    header = req.headers.get("Authorization")
    token = token_from_header(header, emulator.settings.fidelity.auth_forms)
    fault = None
    if g.faults_held:  # none held when the request began: no round trip to look (Redis)
        view_args = req.view_args or {}
        target = view_args.get("campaign_id") or view_args.get(
            "link_channel_id"
        )  # match.campaign_id
        fault = emulator.store.take_fault(req.path, token, target)
    if fault is not None:
        answer = apply_fault(fault, emulator.clock)
        if answer is not None:
            return answer
    return apply_throttle(emulator, token or header)


def forced_error(value: str) -> PisanoError:
    try:
        code = int(value.strip())
    except ValueError:
        code = 0
    if code not in CATALOGUE:
        return PisanoError(13028, f"{FORCE_ERROR}: {value!r} is not a catalogue code")
    return PisanoError(code, f"{FORCE_ERROR}: {code} forced")


def apply_fault(fault: Fault, clock: Clock) -> Response | None:
    """Row 3. Delays and `drop: after` let the request go on; the other kinds answer here."""
    g.journal["fault"] = {"id": fault.id, "kind": fault.kind}
    label = f"fault #{fault.id}"
    if fault.delay_ms is not None:
        # Slow on purpose, but never past the fault's life nor the server's: clearing faults, a
        # reset or a graceful stop ends it.
        delay(fault.cleared, fault.delay_ms / 1000)
        return None
    if fault.drop is not None:
        g.drop_connection = fault.drop  # carried out once the journal entry is complete
        if fault.drop == "after":
            return None
        g.journal["reason"] = f"{label}: connection closed before the request was processed"
        return Response(b"", 200)  # never sent
    if fault.error is not None:
        raise PisanoError(fault.error, f"{label}: error {fault.error}")
    g.journal["reason"] = f"{label}: status {fault.status}"
    return status_response(fault.status or 500, fault.retry_after)


def status_response(status: int, retry_after: int | None) -> Response:
    """A scripted HTTP status: 429 as the throttle answers it, others with their reason phrase."""
    body = RACK_ATTACK_BODY if status == 429 else f"{_phrase(status)}\n".encode()
    response = Response(body, status, content_type="text/plain")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def apply_throttle(emulator: Emulator, token: str | None) -> Response | None:
    """Row 4: count the request; answer 429 when a tier is exceeded."""
    throttle = emulator.throttle
    client_ip = request.remote_addr or "unknown"
    tiers = throttle.tiers_for(client_ip)
    if not tiers:
        return None
    verdict = throttle.hit(throttle.bucket(token, client_ip), tiers)
    g.throttle_verdict = verdict
    # The request's instant is the one it was counted at (SPEC 1.3): the journal's `time` too.
    g.now = g.journal["time"] = verdict.now
    if verdict.allowed:
        return None
    exceeded = verdict.exceeded
    assert exceeded is not None
    g.journal["reason"] = (
        f"throttle: tier {exceeded.tier} exceeded ({exceeded.count} requests in the window "
        f"ending at {exceeded.window_end:.0f})"
    )
    g.journal["throttle"] = {"tier": str(exceeded.tier), "window_end": exceeded.window_end}
    return throttled_response(emulator, exceeded, verdict.now)


def throttled_response(emulator: Emulator, exceeded: TierCount, now: float) -> Response:
    if emulator.settings.throttle.profile != "rich":
        # Rack::Attack's default throttled responder, exactly (SPEC 1.3).
        return Response(RACK_ATTACK_BODY, 429, content_type="text/plain")
    retry_after = seconds_until(exceeded.window_end, now, emulator.clock)
    body = {
        "status": "too_many_requests",
        "message": "Retry later",
        "tier": str(exceeded.tier),
        "retry_after": retry_after,
    }
    response = Response(orjson.dumps(body), 429, content_type="application/json")
    response.headers["Retry-After"] = str(retry_after)
    return response


def rate_limit_headers(verdict: Verdict, clock: Clock) -> dict[str, str]:
    """The rich profile's RateLimit-* headers: the tier closest to refusing."""
    if not verdict.counts:
        return {}
    tightest = min(verdict.counts, key=lambda c: (c.remaining, c.window_end))
    return {
        "RateLimit-Limit": str(tightest.tier.limit),
        "RateLimit-Remaining": str(tightest.remaining),
        "RateLimit-Reset": str(seconds_until(tightest.window_end, verdict.now, clock)),
    }


def seconds_until(window_end: float, now: float, clock: Clock) -> int:
    """Whole seconds a client should wait: REAL seconds while the clock runs (at any rate), the
    emulator's seconds while it is frozen (README, "Throttle")."""
    left = window_end - now
    real = clock.real_seconds(left)
    return max(math.ceil(real if real is not None else left), 0)


def drop_connection() -> None:
    """Close the client's connection so that it receives no answer (`drop` faults)."""
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # the client may have gone already
            sock.shutdown(socket.SHUT_RDWR)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
