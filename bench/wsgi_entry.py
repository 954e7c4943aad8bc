"""WSGI factories for the benchmarks, so any server's own command line can serve them.

    gunicorn -k gthread --chdir bench 'wsgi_entry:emulator()'
    granian --interface wsgi --factory --working-dir bench wsgi_entry:emulator
    python bench/wsgi_entry.py {emulator|bare} PORT     # today's Werkzeug LiveServer

`emulator()` is `create_app` on the default fixture with the throttle off (the benchmarks send
thousands of requests on one token), its storage from $PISANO_MOCK_STORAGE (memory:// when unset);
`bare()` is bench/bare_app.py's parse-only app, the baseline.
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

if __name__ == "__main__":
    server = LiveServer(FACTORIES[sys.argv[1]](), port=int(sys.argv[2]))
    print(f"{sys.argv[1]} serving {server.base_url}", flush=True)
    server.serve_forever()
