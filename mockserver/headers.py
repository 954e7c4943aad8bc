"""Our own response headers (SPEC 2.3): ASCII, no control characters, bounded length."""

from __future__ import annotations

REQUEST_ID = "X-Pisano-Mock-Request-Id"
REASON = "X-Pisano-Mock-Reason"
WARNING = "X-Pisano-Mock-Warning"
FORCE_ERROR = "X-Pisano-Mock-Error"
ADMIN_TOKEN = "X-Pisano-Mock-Admin-Token"  # SPEC 2.6: the admin token, besides Bearer

# WSGI environ keys our worker and apps share (worker.py, proxy.py, replay.py).
RAW_HEAD_KEY = "pisano_mock.raw_head"  # the request head as the client wrote it
VERBATIM_KEY = "pisano_mock.verbatim_headers"  # the app's own Server and Date are sent
HEADER_LIMIT = 300

# An answer's hop-by-hop headers (RFC 9110 7.6.1): framing the WSGI server writes itself, never
# passed on from an upstream's answer (proxy.py) or a recorded one (replay.py).
ANSWER_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def ascii_header(text: str, limit: int = HEADER_LIMIT) -> str:
    """`text` as a header value: non-ASCII as \\uXXXX, no control characters, cut to `limit`."""
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            continue
        if code < 0x80:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:  # outside the BMP: a surrogate pair, as JSON spells it
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)[:limit]
