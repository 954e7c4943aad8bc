"""WSGI factories for the benchmarks, so any server's own command line can serve them.

    gunicorn -k gthread --chdir bench 'wsgi_entry:emulator()'
    granian --interface wsgi --factory --working-dir bench wsgi_entry:emulator
    python bench/wsgi_entry.py {emulator|bare} PORT             # today's Werkzeug LiveServer
    python bench/wsgi_entry.py {emulator|bare} PORT WORKERS     # `serve`'s own gunicorn setup

`emulator()` is `create_app` on the default fixture with the throttle off (the benchmarks send
thousands of requests on one token), its storage from $PISANO_MOCK_STORAGE (memory:// when unset);
`bare()` is bench/bare_app.py's parse-only app, the baseline. With WORKERS, the app is served by
`mockserver.serving.serve` (the production server of issue 9, when it is there): the bare app on
the very server, worker class and threads `pisano-mock serve` uses.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bare_app import create_bare_app  # a sibling script, not a package

from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import STORAGE_VARIABLE, load_settings


def emulator() -> Flask:
    settings = load_settings(storage=os.environ.get(STORAGE_VARIABLE) or "memory://")
    return create_app(settings.with_changes(throttle=replace(settings.throttle, enabled=False)))


def bare() -> Flask:
    return create_bare_app()


FACTORIES = {"emulator": emulator, "bare": bare}


def serve_in_production(app: Flask, port: int, workers: int) -> None:
    try:
        from mockserver import serving  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        sys.exit("wsgi_entry: no mockserver/serving.py here: `serve` is not on gunicorn yet")
    listener = serving.listen("127.0.0.1", port)
    serving.serve(app, listener, workers)


if __name__ == "__main__":
    app, port = FACTORIES[sys.argv[1]](), int(sys.argv[2])
    if len(sys.argv) > 3:
        serve_in_production(app, port, int(sys.argv[3]))
    else:
        server = LiveServer(app, port=port)
        print(f"{sys.argv[1]} serving {server.base_url}", flush=True)
        server.serve_forever()
