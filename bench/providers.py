"""What one delivery attempt costs (SPEC 1.7), in ONE run: `providers.deliver` against the bare
standard-library transaction it makes (smtplib, http.client: no deadline thread, no checks), to
the same real servers on 127.0.0.1 (aiosmtpd; a threaded http.server).

    python bench/providers.py [--messages 500]

Sequential, one sender: the figure is the time per message; the ratio is deliver's over the bare
one, i.e. what the Deadline (a timer thread per attempt), the address checks and the error
mapping add. Figures taken while other work runs on the machine are indicative only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import smtplib
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from provider_servers import HOST, http_receiver, smtp_server  # the tests' real servers

from mockserver.messages import Message, as_email
from mockserver.providers import EHLO_NAME, deliver, payload

TIMEOUT = 10.0


def message(n: int) -> Message:
    link = f"http://127.0.0.1:8080/s/token{n}"
    return Message(
        id=n,
        sharing_id=n,
        campaign_id="735c19a7-ee54-4b03-a84a-93dfe2a94a56",
        channel="email",
        provider="smtp",
        sender="surveys@pisano-mock.test",
        to=f"customer{n}@example.com",
        subject="How was your visit?",
        text=f"Hello,\nTell us: {link}\n",
        html=f'<p>Hello,</p><p><a href="{link}">Tell us</a></p>',
        link=link,
        created_at=1_700_000_000.0,
    )


def bare_smtp(port: int) -> Callable[[Message], None]:
    def send(sent: Message) -> None:
        with smtplib.SMTP(HOST, port, EHLO_NAME, timeout=TIMEOUT) as smtp:
            smtp.send_message(as_email(sent), from_addr=sent.sender, to_addrs=[sent.to])

    return send


def bare_http(port: int) -> Callable[[Message], None]:
    def send(sent: Message) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        body = json.dumps(payload(sent), ensure_ascii=False).encode()
        connection.request("POST", "/ok", body, {"Content-Type": "application/json"})
        assert connection.getresponse().status == 200
        connection.close()

    return send


def timed(send: Callable[[Message], None], count: int) -> float:
    send(message(-1))  # warm: imports, first connection
    started = time.perf_counter()
    for n in range(count):
        send(message(n))
    return time.perf_counter() - started


def row(name: str, count: int, seconds: float, baseline: float | None) -> str:
    ratio = f"{seconds / baseline:5.2f}×" if baseline else "  1.00×"
    return f"{name:<32} {count:>8} {seconds:>9.2f} {seconds / count * 1000:>10.2f} {ratio:>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    count = parser.parse_args().messages
    print(f"{'row':<32} {'messages':>8} {'seconds':>9} {'ms/message':>10} {'ratio':>8}")
    with smtp_server() as server:
        provider = server.provider()
        bare = timed(bare_smtp(server.port), count)
        ours = timed(lambda m: deliver(m, provider, TIMEOUT), count)
    print(row("smtp: smtplib, bare", count, bare, None))
    print(row("smtp: providers.deliver", count, ours, bare))
    with http_receiver() as receiver:
        port = receiver.server_address[1]
        provider = {"type": "http", "url": f"{receiver.base_url}/ok"}
        bare = timed(bare_http(port), count)
        ours = timed(lambda m: deliver(m, provider, TIMEOUT), count)
    print(row("http: http.client, bare", count, bare, None))
    print(row("http: providers.deliver", count, ours, bare))


if __name__ == "__main__":
    main()
