"""The baseline for bench/throughput.py: a WSGI app that only parses the JSON body with orjson,
served exactly as `pisano-mock serve` serves the emulator (mockserver.serving: gunicorn, our
worker, one worker process)."""

from __future__ import annotations

import sys

import orjson
from flask import Flask, Response, request

from mockserver.serving import base_url, listen, serve


def create_bare_app() -> Flask:
    app = Flask(__name__)

    @app.post("/v1/email_campaigns/<campaign_id>/email_sharings")
    def parse_only(campaign_id: str) -> Response:
        body = orjson.loads(request.get_data())
        return Response(
            orjson.dumps({"count": len(body["emails"])}), 200, content_type="application/json"
        )

    return app


if __name__ == "__main__":
    listener = listen("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"bare serving {base_url(listener)}", flush=True)
    serve(create_bare_app(), listener)
