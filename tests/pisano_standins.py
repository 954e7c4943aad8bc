"""Stand-ins for a real Pisano: the emulator's own app (`create_app`), each changed in exactly one
way, served on 127.0.0.1 by a real server. `pisano-mock proxy --upstream <stand-in>` must then
name that one difference and nothing else; the `matching` stand-in is the emulator unchanged, so
"every pair is the same" against it is an honest result, not a coincidence of two fakes.

    python tests/pisano_standins.py NAME [--port 0] [--no-throttle]

serves one on `mockserver.serving` (gunicorn, the production server `serve` runs on: the bench's
upstream) and prints `pisano-standin NAME http://HOST:PORT` first. Tests start one the same way
(`StandInProcess`), each in its own process, so a burst's speed does not depend on the test's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flask import Flask

from mockserver.app import create_app
from mockserver.catalogue import ERROR_CONTENT_TYPE, render_body
from mockserver.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
Environ = dict[str, Any]
Headers = list[tuple[str, str]]
Answer = tuple[str, Headers, bytes]  # status line, headers, body
# A change to one answer: the answer as the stand-in sends it, or None to leave it untouched.
Change = Callable[[Environ, Answer], Answer | None]


class ChangeAnswers:
    """WSGI middleware: each answer of the wrapped app, held whole, offered to `change`; an answer
    it leaves alone goes out exactly as the app made it (Content-Length included)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], change: Change) -> None:
        self.app, self.change = app, change

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        held: dict[str, Any] = {}

        def hold(status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
            held["status"], held["headers"] = status, headers
            return lambda data: None  # the emulator never uses write()

        parts = self.app(environ, hold)
        try:
            body = b"".join(parts)
        finally:
            getattr(parts, "close", lambda: None)()
        original: Answer = (held["status"], held["headers"], body)
        status, headers, body = self.change(environ, original) or original
        if (status, headers, body) != original:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


def _with_content_type(headers: Headers, content_type: str) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != "content-type"] + [
        ("Content-Type", content_type)
    ]


# -- the one change each stand-in makes ----------------------------------------------------------

OCCURRED = b'{"status":"bad_request","code":13000,"message":"An error occurred"}'


def respelled_13000(environ: Environ, answer: Answer) -> Answer | None:
    """13000's message spelled correctly ("occurred"): as if Pisano fixed its typo one day."""
    status, headers, body = answer
    return (status, headers, OCCURRED) if body == render_body(13000) else None


def missing_token_is_13001(environ: Environ, answer: Answer) -> Answer | None:
    """No Authorization header at all answered 401 13001 (an empty or odd one stays 13030)."""
    _, headers, body = answer
    if "HTTP_AUTHORIZATION" in environ or body != render_body(13030):
        return None
    return "401 UNAUTHORIZED", headers, render_body(13001)


JSON_429 = b'{"status":"too_many_requests","message":"Retry later"}'


def json_429(environ: Environ, answer: Answer) -> Answer | None:
    """The throttle's 429 with a JSON body (and its Content-Type), not text/plain "Retry later"."""
    status, headers, _ = answer
    if not status.startswith("429"):
        return None
    return status, _with_content_type(headers, ERROR_CONTENT_TYPE), JSON_429


def renamed_sharings(environ: Environ, answer: Answer) -> Answer | None:
    """The email endpoint's 200 body with `sharings` named `sharing_ids` (same place, same ids)."""
    status, headers, body = answer
    if not status.startswith("200") or not environ["PATH_INFO"].endswith("/email_sharings"):
        return None
    renamed = {("sharing_ids" if k == "sharings" else k): v for k, v in json.loads(body).items()}
    return status, headers, json.dumps(renamed, separators=(",", ":")).encode()


@dataclass(frozen=True)
class StandIn:
    """One stand-in: the emulator with one change, either to its answers or to its settings."""

    name: str
    differs: str  # the one difference, in words
    change: Change | None = None
    throttle: bool = True


STANDINS = {
    s.name: s
    for s in (
        StandIn("matching", "nothing: the emulator itself"),
        StandIn("respelled", "13000's message spelled 'occurred'", change=respelled_13000),
        StandIn("missing-token-401", "no Authorization: 401 13001", change=missing_token_is_13001),
        StandIn("no-throttle", "no throttle at all", throttle=False),
        StandIn("json-429", "429 with a JSON body", change=json_429),
        StandIn("renamed-200", "email's 200: sharings named sharing_ids", change=renamed_sharings),
    )
}


def standin_settings(standin: StandIn, throttle: bool = True) -> Settings:
    settings = load_settings(storage="memory://")
    if standin.throttle and throttle:
        return settings
    return settings.with_changes(throttle=replace(settings.throttle, enabled=False))


def standin_app(name: str, *, throttle: bool = True) -> Flask:
    """The emulator as the stand-in `name` serves it; `throttle=False` for the bench."""
    standin = STANDINS[name]
    app = create_app(standin_settings(standin, throttle))
    if standin.change is not None:
        app.wsgi_app = ChangeAnswers(app.wsgi_app, standin.change)  # type: ignore[method-assign]
    return app


class StandInProcess:
    """A stand-in in a child process on a free port: `with StandInProcess.start(name) as s:`."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process, self.base_url = process, base_url

    @classmethod
    def start(cls, name: str, *flags: str) -> StandInProcess:
        command = [sys.executable, str(Path(__file__)), name, "--port", "0", *flags]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith(f"pisano-standin {name} http://"):
            process.kill()
            raise RuntimeError(f"stand-in {name} did not start: {line!r}")
        return cls(process, line.split()[2])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> StandInProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    from mockserver.server import serve_links_at
    from mockserver.serving import base_url, hold_stop_signals, listen, serve

    parser = argparse.ArgumentParser(description="Serve a Pisano stand-in on 127.0.0.1.")
    parser.add_argument("name", choices=sorted(STANDINS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-throttle", action="store_true", help="for the bench: never 429")
    args = parser.parse_args()
    app = standin_app(args.name, throttle=not args.no_throttle)
    listener = listen("127.0.0.1", args.port)
    serve_links_at(app, base_url(listener))
    hold_stop_signals()
    print(f"pisano-standin {args.name} {base_url(listener)}", flush=True)
    serve(app, listener)


if __name__ == "__main__":
    main()
