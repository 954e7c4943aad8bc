"""Who may use the admin API (SPEC 2.6), checked before anything else under `/__mock/`.

Loopback callers are answered when no admin token is set; with one, only callers carrying it. On
top, drive-by protection against web pages the integrator happens to open: a request from another
origin, a `Host` that is not this emulator's (DNS rebinding), a write whose body is not JSON (what
a page may send without a CORS preflight) — each refused, whatever the token. The emulated API is
not guarded here: it answers like Pisano, whoever calls (README, "Fidelity").
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Response, request
from werkzeug.exceptions import MethodNotAllowed

from .admin import AdminError, render_admin_error
from .context import current_emulator
from .headers import ADMIN_TOKEN, ascii_header
from .settings import Access

JSON = ("application/json",)
# Admin writes that take a body other than JSON, by path: SPEC 1.8's CSV upload.
WRITE_CONTENT_TYPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"/__mock/campaigns/[^/]+/csv\Z"), ("text/csv", "multipart/form-data")),
)
# curl's `-d` sends a form Content-Type: the most common first stumble (issue 7). The hint says
# what the write at hand takes.
CURL_HINTS = {
    "application/json": " (with curl: -H 'Content-Type: application/json')",
    "text/csv": " (with curl: -H 'Content-Type: text/csv' --data-binary @FILE, or -F file=@FILE)",
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A browser cannot send a Bearer header when it navigates: the inspector page (SPEC 2.7) asks for
# HTTP Basic credentials instead (the password is the admin token), as Mailpit's UI does; the
# browser then sends them with the page's own requests too. Other paths keep the Bearer challenge.
CHALLENGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/__mock/ui(/|\Z)"), 'Basic realm="pisano-mock"'),
    (re.compile(r"/"), 'Bearer realm="pisano-mock admin"'),
)


def guard_admin() -> Response | None:
    """before_request: refuse what may not reach the admin API; None lets the request go on."""
    if request.path != "/__mock" and not request.path.startswith("/__mock/"):
        return None
    access = current_emulator().settings.access
    try:
        for check in ADMIN_CHECKS:
            check(access)
    except AdminError as error:
        return render_admin_error(error)
    return None


def check_host(access: Access) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1 still sends `Host: evil.example`."""
    name = host_name(request.host)
    if name in accepted_host_names(access) or is_loopback(name):
        return
    # Named as received: request.host is empty for a Host werkzeug finds malformed.
    hint = f"; start it with --allowed-host {name} to accept that name" if name else ""
    raise AdminError(
        403,
        f"Host: {shown_header(request.headers.get('Host', ''))} is not this emulator's "
        f"(localhost, a loopback address or the serving address){hint}",
    )


def check_origin(access: Access) -> None:
    """A browser names the page that sent a request; only the emulator's own pages may. A GET a
    page makes without CORS carries no Origin, but a browser says it is cross-site: refused too,
    so no other site learns even an opaque answer's size or timing."""
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    if origin is not None and origin.lower() != own.lower():
        shown = shown_header(origin)
        raise AdminError(403, f"Origin: {shown} is not this emulator's own origin ({own})")
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        raise AdminError(403, "Sec-Fetch-Site: 'cross-site': another site's page sent this")


SHOWN_HEADER_LENGTH = 100


def shown_header(value: str) -> str:
    """A request header named in a reason: quoted, ASCII (non-ASCII escaped), bounded."""
    text = ascii_header(value, limit=len(value) * 12)  # escaped in full, then cut
    if len(text) > SHOWN_HEADER_LENGTH:
        text = text[:SHOWN_HEADER_LENGTH] + "..."
    return f"'{text}'"


def check_caller(access: Access) -> None:
    if access.admin_token:
        check_admin_token(access.admin_token)
    elif not (access.insecure_admin or is_loopback(request.remote_addr or "")):
        raise AdminError(
            403,
            f"caller {request.remote_addr}: without an admin token only loopback callers are "
            "answered; start the emulator with --admin-token T and send 'Authorization: Bearer T'",
        )


def check_admin_token(expected: str) -> None:
    """Either header carrying the admin token is enough: the other may carry the API's token
    (a client's session default), so a wrong value there refuses nothing (README)."""
    presented = presented_admin_tokens()
    # Constant time, every candidate compared: how much of a guess matched must not show.
    verdicts = [hmac.compare_digest(token, expected.encode()) for token in presented]
    if any(verdicts):
        return
    shown = "wrong" if presented else "malformed" if malformed_basic() else "absent"
    raise AdminError(
        401,
        f"admin token {shown}: send 'Authorization: Bearer <admin token>', "
        f"'{ADMIN_TOKEN}: <admin token>' or HTTP Basic credentials whose password is the "
        "admin token (any user name)",
        {"WWW-Authenticate": challenge(request.path)},
    )


def challenge(path: str) -> str:
    return next(scheme for rule, scheme in CHALLENGES if rule.match(path))


def presented_admin_tokens() -> list[bytes]:
    """The admin tokens a request offers: its X-Pisano-Mock-Admin-Token, its Bearer credentials
    and its Basic password, surrounding whitespace stripped, the scheme in any case (RFC 9110
    §11.1). Bytes: a Basic password need not be UTF-8, and is compared as sent."""
    offered = [as_sent(request.headers.get(ADMIN_TOKEN, "").strip())]
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        offered.append(as_sent(credentials.strip()))
    elif scheme.lower() == "basic":
        offered.append(basic_password(credentials.strip()))
    return [token for token in offered if token]


def as_sent(value: str) -> bytes:
    """A header value's bytes as they came: werkzeug decodes them as Latin-1, so a UTF-8 token
    (`tökén`) compares equal to the admin token's UTF-8, as it does through Basic."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # not from the wire (a test client): its text as UTF-8
        return value.encode()


def malformed_basic() -> bool:
    """Basic credentials were sent but carry no password: say malformed, not absent."""
    authorization = request.headers.get("Authorization", "").strip()
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "basic":
        return not basic_password(credentials.strip())
    return authorization.lower().startswith("basic")  # `Basic<TAB>...`: no SP after the scheme


def basic_password(credentials: str) -> bytes:
    """The password of Basic credentials (`base64(user:password)`, RFC 7617), b"" when they
    are not Basic credentials at all."""
    try:
        decoded = base64.b64decode(credentials.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return b""
    _, colon, password = decoded.partition(b":")
    return password if colon else b""


def check_route(access: Access) -> None:
    """Unknown admin routes are our own 404 (SPEC 1.4 row 1 covers paths outside `/__mock/`)."""
    error = request.routing_exception
    if error is None:
        return
    route = f"{request.method} {request.path}"
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        raise AdminError(405, f"no admin route {route}; it takes {allowed}", {"Allow": allowed})
    raise AdminError(404, f"no admin route {route}")


def check_content_type(access: Access) -> None:
    """Writes with a body need JSON: no page can send that cross-origin without a preflight.
    A write with neither body nor Content-Type (`curl -X POST .../reset`) has nothing to misread."""
    if request.method not in WRITE_METHODS or not (has_body() or request.content_type):
        return
    accepted = accepted_content_types(request.path)
    if request.mimetype not in accepted:
        form = request.mimetype == "application/x-www-form-urlencoded"
        hint = CURL_HINTS.get(accepted[0], "") if form or not request.mimetype else ""
        raise AdminError(
            415,
            f"Content-Type: {request.content_type or 'absent'}; this admin write takes "
            f"{' or '.join(accepted)}{hint}",
        )


def accepted_content_types(path: str) -> tuple[str, ...]:
    """What an admin write to `path` may send: JSON, but for the CSV upload."""
    return next((types for rule, types in WRITE_CONTENT_TYPES if rule.match(path)), JSON)


ADMIN_CHECKS: tuple[Callable[[Access], None], ...] = (
    check_host,
    check_origin,
    check_caller,
    check_route,
    check_content_type,
)


def has_body() -> bool:
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return chunked or bool(request.content_length)


def host_name(host: str) -> str:
    """`[::1]:8080` → `::1`, `LocalHost:80` → `localhost`."""
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:  # e.g. an unbalanced bracket
        return host.lower()


def accepted_host_names(access: Access) -> set[str]:
    """localhost, the names `allowed_hosts` gives, and the address this connection reached."""
    # The wildcard addresses name the serving host too: `serve --host 0.0.0.0` prints
    # http://0.0.0.0:PORT, and no other site can make a browser send `Host: 0.0.0.0`.
    names = {"localhost", "0.0.0.0", "::", *(name.lower() for name in access.allowed_hosts)}
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            names.add(str(sock.getsockname()[0]).lower())
    return names


def is_loopback(name: str) -> bool:
    """`localhost`, 127.0.0.0/8, ::1 and ::ffff:127.x."""
    if name.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def startup_refusal(host: str, access: Access) -> str | None:
    """Why `serve --host HOST` must not start with these access settings, or None (SPEC 2.6)."""
    if access.admin_token or access.insecure_admin or is_loopback(host):
        return None
    return (
        f"refusing to serve on {host} without an admin token: anyone who reaches it could read "
        "the journal and reconfigure the emulator. Give --admin-token T (or set "
        "PISANO_MOCK_ADMIN_TOKEN), or --insecure-admin to serve it open anyway"
    )
