"""`create_app`: the only place the emulator's parts are wired together."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from . import access, admin, lifecycle, openapi, outbox_admin, workflows_admin
from .access_log import init_app as init_access_log
from .admin import AdminError, render_admin_error
from .api import sharing, survey
from .bodies import BodyTooLarge
from .catalogue import ERROR_CONTENT_TYPE, PisanoError, render_body
from .context import EXTENSION_KEY, Emulator, current_emulator
from .csv_admin import blueprint as csv_admin_blueprint
from .headers import REASON, ascii_header
from .links import LinkMaker
from .metrics import open_metrics
from .postman import Postman
from .replay import Replayer
from .settings import Settings, load_settings
from .storage import STORE_UNAVAILABLE, open_parts, unavailable_reason
from .workflows import Scheduler, open_run_book

log = logging.getLogger("pisano_mock")
_REPEATED_SLASHES = re.compile(r"/{2,}")


class NormalisePath:
    """WSGI middleware: `/v1//x/` routes as `/v1/x` (SPEC 1.1), with no redirect from Werkzeug."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw = environ.get("PATH_INFO", "")
        path = _REPEATED_SLASHES.sub("/", raw)
        if len(path) > 1:
            path = path.rstrip("/")
        environ[lifecycle.RAW_PATH_KEY] = raw
        environ["PATH_INFO"] = path
        return self.app(environ, start_response)


class PlainHttpFlask(Flask):
    """Flask, routing every request as plain HTTP: Werkzeug takes `Connection: Upgrade` with
    `Upgrade: websocket` for a websocket handshake and matches no rule (13002 for a route that
    exists), where Rails ignores the header."""

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        adapter = super().create_url_adapter(request)
        if adapter is not None:
            adapter.websocket = False
        return adapter


def create_app(settings: Settings | None = None, replay: Replayer | None = None) -> Flask:
    """A Flask app emulating Pisano with `settings` (the default fixture when None); `replay`
    answers requests a drift recording holds (serve --replay)."""
    settings = settings or load_settings()
    app = PlainHttpFlask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = settings.bounds.max_body_bytes
    # Rails answers OPTIONS on a POST-only route with 404 (SPEC 1.4 row 1); Flask would say 200.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    parts = open_parts(settings)
    links = LinkMaker(public_url(settings), parts.store.link_secret)
    postman = Postman(parts.outbox, links, settings.delivery, parts.clock, shared=parts.shared)
    app.extensions[EXTENSION_KEY] = Emulator(
        settings=settings,
        store=parts.store,
        clock=parts.clock,
        throttle=parts.throttle,
        links=links,
        outbox=parts.outbox,
        postman=postman,
        metrics=open_metrics(settings.storage),  # where the state is: shared by workers on Redis
        scheduler=Scheduler(
            settings.workflows,
            open_run_book(parts.clock),
            workflows_admin.runner(app, workflows_admin.share_csv),
        ),
    )
    app.wsgi_app = NormalisePath(app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(access.guard_admin)  # first: strangers learn nothing (SPEC 2.6)
    if replay is not None:  # before rows 1-4: what Pisano answered is the answer (replay.py)
        app.before_request(replay.answer)
    app.before_request(lifecycle.begin_request)
    app.after_request(lifecycle.finish_request)
    app.register_error_handler(PisanoError, _render_refusal)
    app.register_error_handler(HTTPException, _render_http_exception)
    for unavailable in STORE_UNAVAILABLE:
        app.register_error_handler(unavailable, _render_store_unavailable)
    app.register_error_handler(Exception, _render_unexpected)
    blueprints = (
        sharing.blueprint,
        survey.blueprint,
        admin.blueprint,
        outbox_admin.blueprint,
        csv_admin_blueprint,
        workflows_admin.blueprint,
        openapi.blueprint,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    init_access_log(app)  # silent unless the CLI configured it (serve without --quiet)
    return app


def public_url(settings: Settings) -> str:
    """Where survey links point (SPEC 1.7): the setting, else where the emulator serves."""
    return (settings.links.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


DEFAULT_PUBLIC_URL = "http://localhost:8080"  # until `serve` says where it listens (issue 10)


def _render_refusal(error: PisanoError) -> Response:
    lifecycle.record_refusal(error)
    status = getattr(error, "http_status", error.entry.http_status)  # 413 for a body too large
    response = Response(render_body(error.code), status)
    response.headers["Content-Type"] = ERROR_CONTENT_TYPE
    if error.reason:
        response.headers[REASON] = ascii_header(error.reason)
    return response


def _render_http_exception(error: HTTPException) -> Response:
    # Routing failures never reach here (begin_request turns them into 13002); what remains is
    # Werkzeug refusing the request itself, e.g. a body over MAX_CONTENT_LENGTH.
    code = 13002 if error.code in (404, 405) else 13000
    kind = BodyTooLarge if error.code == 413 else PisanoError  # an admin body (SPEC 2.5)
    return _render_refusal(kind(code, f"{error.code} {error.name}: {error.description}"))


def _render_store_unavailable(error: Exception) -> Response:
    """The shared store went away: the admin API says 503 in its own voice (a health check or a
    scraper then knows the emulator is unwell), the emulated API Pisano's 13000 with the reason."""
    reason = unavailable_reason(current_emulator().settings.storage, error)
    log.error("%s %s: %s", request.method, request.path, reason)  # one line, no traceback
    if lifecycle.is_admin_path(request.path):
        return render_admin_error(AdminError(503, reason))
    return _render_refusal(PisanoError(13000, reason))


def _render_unexpected(error: Exception) -> Response:
    # Never a 500 (STYLE): a bug of ours is answered as Pisano's generic 13000, and logged.
    log.exception("unexpected error on %s %s", request.method, request.path)
    return _render_refusal(PisanoError(13000, f"emulator error: {type(error).__name__}: {error}"))
