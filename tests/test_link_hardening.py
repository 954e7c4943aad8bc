"""Survey links and emails after the attack on issue 10: a token shows no id and has one spelling;
a Redis come back empty draws a new secret (ids start again at 1: an old link must not open a new
customer's sharing); replicas on one Redis make the same links; an `.eml` is the same bytes each
time, and what the SMTP server received."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import redis
import requests
from provider_servers import HOST, smtp_server
from test_delivery import config, emulator
from test_shared_state import replica

from mockserver.links import LinkMaker

LINKS = LinkMaker("http://mock.test", b"k" * 32)


def test_a_token_shows_no_sharing_id():
    tokens = [LINKS.token(n) for n in range(1, 200)]
    assert len({token[:8] for token in tokens}) == len(tokens)  # was "AAAAAAAAAA" + the id
    assert all(LINKS.sharing_id(token) == n for n, token in enumerate(tokens, start=1))


def test_a_token_has_one_spelling():
    token = next(t for t in (LINKS.token(n) for n in range(1, 500)) if "-" in t or "_" in t)
    other = token.replace("-", "+").replace("_", "/")  # the same bytes in standard base64
    assert LINKS.sharing_id(token) is not None
    assert LINKS.sharing_id(other) is None
    assert LINKS.sharing_id(token + "=") is None


def test_after_redis_comes_back_empty_an_old_link_opens_no_new_customer(server_with, redis_url):
    with server_with(storage=redis_url) as (api, pisano_mock):
        assert api.post({"emails": ["first@example.com"]}).status_code == 200
        (old,) = pisano_mock.sharings()
        redis.Redis.from_url(redis_url).flushall()  # restarted without persistence
        assert api.post({"emails": ["second@example.com"]}).status_code == 200
        (new,) = pisano_mock.sharings()
        assert new["id"] == old["id"]  # ids start again at 1 in an empty Redis
        assert requests.get(old["link"], timeout=30).status_code == 404  # not second@'s page
        opened = requests.get(new["link"], timeout=30)
        assert opened.status_code == 200 and "second@example.com" in opened.text


def test_replicas_on_one_redis_make_the_same_links(redis_url):
    with ExitStack() as stack:
        first = stack.enter_context(replica(redis_url))
        second = stack.enter_context(replica(redis_url))
        assert first.share("a@example.com") == 200
        links = [one.admin("GET", "sharings")["sharings"][0]["link"] for one in (first, second)]
    assert links[0] == links[1]
    assert links[0].startswith(first.base_url)  # the first replica to serve names the URL


def test_an_eml_is_the_same_bytes_each_time_and_what_smtp_received(tmp_path: Path):
    with smtp_server() as server:
        provider = f'{{ type = "smtp", host = "{HOST}", port = {server.port} }}'
        with emulator(config(tmp_path, provider)) as mock:
            assert mock.share(["a@example.com"]).status_code == 200
            mock.flush()
            (message,) = mock.messages()
            url = f"{mock.base_url}/__mock/outbox/{message['id']}.eml"
            downloads = [requests.get(url, timeout=30).content for _ in range(2)]
    assert downloads[0] == downloads[1]
    (received,) = server.received
    assert received.email["Message-ID"] in downloads[0].decode()
