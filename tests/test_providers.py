"""One delivery attempt through each provider (SPEC 1.7), against real servers on 127.0.0.1:
aiosmtpd for SMTP (plain, STARTTLS, AUTH), http.server for HTTP, and servers that refuse, never
answer or trickle. Each failure's `DeliveryError` must name its cause and hide every secret."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from provider_servers import (
    HOST,
    Certificate,
    Credentials,
    Recorder,
    TricklingAfterTls,
    free_port,
    http_receiver,
    self_signed,
    silent_server,
    smtp_server,
    trickling_server,
)

from mockserver import providers
from mockserver.messages import Message
from mockserver.providers import Deadline, DeliveryError, deliver

LINK = "http://127.0.0.1:8080/s/tok3n?responses=W3sicXVlc3Rpb25fa2V5IjoiYSIsImJvZHkiOjV9XQ%3D%3D"
TIMEOUT = 5.0  # for attempts that succeed or fail at once
SHORT = 0.5  # for attempts that must be cut off
PASSWORD = "s3cret-Pa55"
PAYLOAD_KEYS = {
    "to",
    "from",
    "subject",
    "text",
    "html",
    "link",
    "campaign_id",
    "sharing_id",
    "custom_attributes",
    "transactional_data",
}


def message(**changes: Any) -> Message:
    made = Message(
        id=42,
        sharing_id=42,
        campaign_id="735c19a7-ee54-4b03-a84a-93dfe2a94a56",
        channel="email",
        provider="smtp",
        sender="Surveys <surveys@pisano-mock.test>",
        to="ayse@example.com",
        subject="How was your visit?",
        text=f"Hello Ayşe,\nTell us: {LINK}\n",
        html=f'<p>Hello Ayşe,</p><p><a href="{LINK}">Tell us</a></p>',
        link=LINK,
        created_at=1_700_000_000.0,
        custom_attributes={"name": "Ayşe", "tier": 3},
        transactional_data={"Segment": "gold"},
    )
    return dataclasses.replace(made, **changes)


def failure(provider: dict[str, Any], sent: Message | None = None, timeout: float = TIMEOUT) -> str:
    return str(refusal(provider, sent, timeout))


def refusal(
    provider: dict[str, Any], sent: Message | None = None, timeout: float = TIMEOUT
) -> DeliveryError:
    with pytest.raises(DeliveryError) as raised:
        deliver(sent or message(), provider, timeout)
    return raised.value


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls(certificate: Certificate) -> ssl.SSLContext:
    return certificate.context


@pytest.fixture
def trusted(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The certificate served, and trusted by this process's clients (OpenSSL's SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.path))
    return certificate.context


# --- outbox and unknown types --------------------------------------------------------------------


def test_outbox_sends_nothing_and_does_not_fail() -> None:
    deliver(message(provider="outbox"), {"type": "outbox"}, TIMEOUT)


def test_an_unknown_provider_type_is_named() -> None:
    assert failure({"type": "pigeon"}) == "provider type 'pigeon' is not one of outbox, smtp, http"


# --- smtp: what arrives ---------------------------------------------------------------------------


def test_smtp_delivers_one_message_with_its_envelope_headers_and_link() -> None:
    with smtp_server() as server:
        deliver(message(), server.provider(), TIMEOUT)
    (got,) = server.received
    assert (got.mail_from, got.rcpt_tos) == ("surveys@pisano-mock.test", ["ayse@example.com"])
    assert got.email["To"] == "ayse@example.com"
    assert got.email["From"] == "Surveys <surveys@pisano-mock.test>"
    assert got.email["Subject"] == "How was your visit?"
    assert LINK in got.part("plain") and "Ayşe" in got.part("plain")
    assert f'href="{LINK}"' in got.part("html")
    assert not got.tls and got.login is None


def test_smtp_without_a_subject_sends_none() -> None:
    # The seed: the channel's subject is used unless the provider manages it.
    with smtp_server() as server:
        deliver(message(subject=None), server.provider(), TIMEOUT)
    assert "Subject" not in server.received[0].email


def test_smtp_one_transaction_per_message() -> None:
    with smtp_server() as server:
        for n in range(3):
            deliver(message(id=n, to=f"r{n}@example.com"), server.provider(), TIMEOUT)
    assert [got.rcpt_tos for got in server.received] == [[f"r{n}@example.com"] for n in range(3)]


def test_smtp_starttls_encrypts_the_transaction(tls: ssl.SSLContext) -> None:
    with smtp_server(tls_context=tls, require_starttls=True) as server:
        deliver(message(), server.provider(starttls=True), TIMEOUT)
    assert server.received[0].tls


def test_smtp_a_server_that_requires_starttls_refuses_a_plain_transaction(
    tls: ssl.SSLContext,
) -> None:
    with smtp_server(tls_context=tls, require_starttls=True) as server:
        said = failure(server.provider())
    assert said.startswith("smtp: 530 ") and "STARTTLS" in said, said
    assert server.received == []


def test_smtp_a_server_that_trickles_after_starttls_is_cut_off_at_the_timeout(
    tls: ssl.SSLContext,
) -> None:
    with smtp_server(TricklingAfterTls(), tls_context=tls) as server:
        said, took = timed_failure(server.provider(starttls=True))
    assert said == f"smtp {HOST}:{server.port}: no answer within 0.5 s"
    assert took < SHORT + 2


def test_smtp_starttls_asked_of_a_server_without_it_is_named() -> None:
    with smtp_server() as server:
        said = failure(server.provider(starttls=True))
    assert said == f"smtp {HOST}:{server.port}: STARTTLS is not offered by the server"


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_smtp_logs_in_after_starttls(tls: ssl.SSLContext, mechanism: str) -> None:
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    authenticator = Credentials("surveys", PASSWORD)
    options = {"tls_context": tls, "authenticator": authenticator, "auth_required": True}
    with smtp_server(auth_exclude_mechanism=[other], **options) as server:
        deliver(message(), server.provider(starttls=True, username="surveys", password=PASSWORD), 5)
    (got,) = server.received
    assert (got.tls, got.login, got.mechanism) == (True, "surveys", mechanism)


def test_smtp_a_refused_login_names_code_and_text_never_the_password(
    tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # This server even echoes the password it was sent in its refusal.
    authenticator = Credentials("surveys", "right", echo_on_refusal=True)
    with smtp_server(tls_context=tls, authenticator=authenticator, auth_required=True) as server:
        provider = server.provider(starttls=True, username="surveys", password=PASSWORD)
        said = failure(provider)
    where = f"smtp {HOST}:{server.port}"
    assert said == (
        f"{where}: authentication refused: 535 5.7.8 Authentication credentials invalid "
        "(you sent ****)"
    )
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    assert not [line for line in ours if PASSWORD in line] and server.received == []


def test_smtp_login_asked_of_a_server_without_auth_is_named() -> None:
    with smtp_server() as server:
        said = failure(server.provider(username="surveys", password=PASSWORD))
    assert said == (
        f"smtp {HOST}:{server.port}: the server offers no AUTH "
        "(before STARTTLS: set starttls = true?)"
    )


# --- smtp: refusals -------------------------------------------------------------------------------


def test_smtp_a_refused_recipient_is_named_with_the_servers_words() -> None:
    recorder = Recorder(refuse_rcpt={"ayse@example.com": "550 5.1.1 No such user here"})
    with smtp_server(recorder) as server:
        said = failure(server.provider())
    assert said == "smtp: 550 <ayse@example.com> refused: 5.1.1 No such user here"
    assert server.received == []


def test_smtp_refused_data_is_named() -> None:
    with smtp_server(Recorder(refuse_data="554 5.6.0 Content rejected")) as server:
        said = failure(server.provider())
    assert said == "smtp: 554 message refused: 5.6.0 Content rejected"


def test_smtp_a_server_refusing_service_in_its_greeting_is_named() -> None:
    with trickling_server(b"554 5.3.2 No service here today\r\n", b"") as port:
        said = failure({"type": "smtp", "host": HOST, "port": port})
    assert said == "smtp: 554 greeting refused: 5.3.2 No service here today"


def test_smtp_a_server_that_is_down_is_named() -> None:
    port = free_port()
    said = failure({"type": "smtp", "host": HOST, "port": port})
    assert said == f"smtp {HOST}:{port}: connection refused"


def test_smtp_a_line_break_in_an_address_fails_before_connecting() -> None:
    # Nothing listens there: had the provider connected, the error would say "connection refused".
    provider = {"type": "smtp", "host": HOST, "port": free_port()}
    said = failure(provider, message(to="ayse@example.com\r\nRCPT TO:<all@example.com>"))
    assert said.startswith("smtp: to address 'ayse@example.com\\r\\nRCPT") and "line break" in said


def test_smtp_a_non_ascii_address_needs_smtputf8() -> None:
    sent = message(to="ayşe@örnek.example")
    with smtp_server(enable_SMTPUTF8=False) as server:
        said = failure(server.provider(), sent)
    assert said == (
        f"smtp {HOST}:{server.port}: 'ayşe@örnek.example' is not ASCII "
        "and the server does not offer SMTPUTF8"
    )
    with smtp_server(enable_SMTPUTF8=True) as server:
        deliver(sent, server.provider(), TIMEOUT)
    assert server.received[0].rcpt_tos == ["ayşe@örnek.example"]


# --- smtp: servers that do not answer in time ----------------------------------------------------


def timed_failure(provider: dict[str, Any]) -> tuple[str, float]:
    started = time.monotonic()
    said = failure(provider, timeout=SHORT)
    return said, time.monotonic() - started


def test_smtp_a_server_that_never_greets_is_cut_off_at_the_timeout() -> None:
    with silent_server() as port:
        said, took = timed_failure({"type": "smtp", "host": HOST, "port": port})
    assert said == f"smtp {HOST}:{port}: no answer within 0.5 s"
    assert took < SHORT + 2  # not the 30 s a sender would otherwise hang


def test_smtp_a_timeout_is_said_as_one_when_the_watchdog_is_late(monkeypatch) -> None:
    # On a loaded machine the socket's own timeout can come first; smtplib says it "closed".
    monkeypatch.setattr(providers.WATCHDOG, "watch", lambda deadline, at: None)
    with silent_server() as port:
        said, _ = timed_failure({"type": "smtp", "host": HOST, "port": port})
    assert said == f"smtp {HOST}:{port}: no answer within 0.5 s"


def test_smtp_a_server_that_trickles_is_cut_off_at_the_timeout() -> None:
    # Each greeting line comes well within the socket's timeout; the greeting never ends.
    with trickling_server(b"220-pisano\r\n", b"220-still here\r\n") as port:
        said, took = timed_failure({"type": "smtp", "host": HOST, "port": port})
    assert said == f"smtp {HOST}:{port}: no answer within 0.5 s"
    assert took < SHORT + 2


def test_a_deadline_due_before_the_one_being_waited_for_is_kept_in_time() -> None:
    # One thread keeps every deadline: it must wake for a sooner one added while it waits.
    with Deadline(30):
        cut_off(Deadline(0.05))  # now the thread waits for the 30 s one
        took = cut_off(Deadline(SHORT))
    assert took < SHORT + 2


def cut_off(deadline: Deadline) -> float:
    """How long a read that never gets an answer takes under `deadline`."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)  # without the deadline, this read fails in 5 s instead
    with ours, theirs, deadline:
        deadline.watch(ours)
        started = time.monotonic()
        assert ours.recv(1) == b""  # shut: the read ends
    assert deadline.expired
    return time.monotonic() - started


# --- http -----------------------------------------------------------------------------------------


def test_http_posts_the_message_as_json_with_the_campaigns_headers() -> None:
    with http_receiver() as receiver:
        provider = {
            "type": "http",
            "url": f"{receiver.base_url}/ok?list=7",
            "headers": {"Authorization": "Bearer k3y", "X-Tenant": "acme"},
        }
        deliver(message(provider="http"), provider, TIMEOUT)
    (post,) = receiver.posts
    assert post.path == "/ok?list=7"
    assert post.headers["Content-Type"] == "application/json"
    assert (post.headers["Authorization"], post.headers["X-Tenant"]) == ("Bearer k3y", "acme")
    body = post.json
    assert set(body) == PAYLOAD_KEYS
    assert body == {
        "to": "ayse@example.com",
        "from": "Surveys <surveys@pisano-mock.test>",
        "subject": "How was your visit?",
        "text": message().text,
        "html": message().html,
        "link": LINK,
        "campaign_id": "735c19a7-ee54-4b03-a84a-93dfe2a94a56",
        "sharing_id": 42,
        "custom_attributes": {"name": "Ayşe", "tier": 3},
        "transactional_data": {"Segment": "gold"},
    }


def test_http_a_null_subject_is_posted_as_null() -> None:
    with http_receiver() as receiver:
        deliver(message(subject=None), {"type": "http", "url": f"{receiver.base_url}/ok"}, 5)
    assert receiver.posts[0].json["subject"] is None


@pytest.mark.parametrize("path", ["/ok", "/created", "/empty"])
def test_http_any_2xx_is_sent(path: str) -> None:
    with http_receiver() as receiver:
        deliver(message(), {"type": "http", "url": receiver.base_url + path}, TIMEOUT)
    assert len(receiver.posts) == 1


def test_http_a_500_is_named_with_the_start_of_its_body() -> None:
    with http_receiver() as receiver:
        receiver.fail_body = b"<h1>Oops</h1>\n" + b"x" * 1000
        url = f"{receiver.base_url}/fail"
        said = failure({"type": "http", "url": url})
    shown = "<h1>Oops</h1> " + "x" * 186
    assert said == f"http: 500 Internal Server Error from {url}: {shown}…"


def test_http_a_user_and_password_in_the_url_are_sent_as_basic_auth() -> None:
    with http_receiver() as receiver:
        url = receiver.base_url.replace("://", "://hook%40acme:s%3Acret@") + "/ok"
        deliver(message(provider="http"), {"type": "http", "url": url}, TIMEOUT)
    (post,) = receiver.posts
    expected = "Basic " + base64.b64encode(b"hook@acme:s:cret").decode()
    assert post.headers["Authorization"] == expected


def test_http_an_error_never_shows_a_secret_header_or_the_urls_password() -> None:
    # A debugging endpoint that echoes what it was sent, credentials included.
    with http_receiver() as receiver:
        receiver.fail_body = b"got Authorization: Bearer k3y-0f-acme and X-Api-Key: abc123"
        url = receiver.base_url.replace("http://", "http://hook:pa55w0rd@") + "/fail"
        headers = {"Authorization": "Bearer k3y-0f-acme", "X-Api-Key": "abc123"}
        said = failure({"type": "http", "url": url, "headers": headers})
    assert said == (
        f"http: 500 Internal Server Error from http://hook:****@{HOST}:"
        f"{receiver.server_address[1]}/fail: got Authorization: **** and X-Api-Key: ****"
    )


def test_http_a_redirect_is_not_followed_and_says_so() -> None:
    with http_receiver() as receiver:
        url = f"{receiver.base_url}/moved"
        said = failure({"type": "http", "url": url})
    assert said == (
        f"http: 302 Found from {url}: a redirect to {receiver.base_url}/ok, not followed "
        "(give the final URL)"
    )
    assert [post.path for post in receiver.posts] == ["/moved"]


def test_http_a_server_that_is_down_is_named() -> None:
    url = f"http://{HOST}:{free_port()}/hooks/pisano"
    assert failure({"type": "http", "url": url}) == f"http: connection refused from {url}"


def test_http_a_host_not_found_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # No DNS here (loopback only): the resolver's own failure, as getaddrinfo raises it.
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    url = "http://hooks.nowhere.test/pisano"
    said = failure({"type": "http", "url": url})
    assert said == f"http: host not found (Name or service not known) from {url}"


def test_https_verifies_the_servers_certificate(tls: ssl.SSLContext) -> None:
    # Unlike STARTTLS (smtplib's default: encrypted, not verified), as urllib and requests do.
    with http_receiver(tls=tls) as receiver:
        url = f"{receiver.base_url}/ok"
        said = failure({"type": "http", "url": url})
    assert said == f"http: TLS failed (CERTIFICATE_VERIFY_FAILED) from {url}"
    assert url.startswith("https://") and receiver.posts == []


def test_https_posts_to_a_server_whose_certificate_is_trusted(trusted: ssl.SSLContext) -> None:
    with http_receiver(tls=trusted) as receiver:
        deliver(message(), {"type": "http", "url": f"{receiver.base_url}/ok"}, TIMEOUT)
    assert receiver.base_url.startswith("https://") and len(receiver.posts) == 1


def test_https_a_server_that_trickles_is_cut_off_at_the_timeout(trusted: ssl.SSLContext) -> None:
    # After the handshake, on the TLS socket that replaced the plain one.
    drip = (b"HTTP/1.1 200 OK\r\n", b"X-Wait: more\r\n")
    with trickling_server(*drip, tls=trusted) as port:
        url = f"https://{HOST}:{port}/hooks"
        said, took = timed_failure({"type": "http", "url": url})
    assert said == f"http: no answer within 0.5 s from {url}"
    assert took < SHORT + 2


def test_http_a_header_http_cannot_carry_fails_before_posting_and_hides_its_value() -> None:
    with http_receiver() as receiver:
        headers = {"Authorization": "Bearer k3y\r\nX-Injected: 1"}
        said = failure({"type": "http", "url": f"{receiver.base_url}/ok", "headers": headers})
    assert said == (
        "http: header 'Authorization': its value holds a line break or a character beyond Latin-1"
    )
    assert receiver.posts == []


def test_http_a_server_that_never_answers_is_cut_off_at_the_timeout() -> None:
    with http_receiver() as receiver:
        url = f"{receiver.base_url}/hang"
        said, took = timed_failure({"type": "http", "url": url})
    assert said == f"http: no answer within 0.5 s from {url}"
    assert took < SHORT + 2


def test_http_a_server_that_trickles_is_cut_off_at_the_timeout() -> None:
    with trickling_server(b"HTTP/1.1 200 OK\r\n", b"X-Wait: more\r\n") as port:
        url = f"http://{HOST}:{port}/hooks"
        said, took = timed_failure({"type": "http", "url": url})
    assert said == f"http: no answer within 0.5 s from {url}"
    assert took < SHORT + 2


def test_http_a_url_with_spaces_and_non_ascii_is_escaped() -> None:
    with http_receiver() as receiver:
        deliver(message(), {"type": "http", "url": f"{receiver.base_url}/ok?to=Ayşe Y"}, 5)
    assert receiver.posts[0].path == "/ok?to=Ay%C5%9Fe%20Y"


@pytest.fixture(autouse=True)
def one_deadline_thread() -> Iterator[None]:
    """Every attempt's deadline is kept by one thread, however many attempts ran."""
    yield
    watchdogs = [t for t in threading.enumerate() if t.name == "pisano-mock deadlines"]
    assert len(watchdogs) <= 1, watchdogs


# --- what is worth trying again ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        *((302, True), (400, True), (401, True), (404, True)),
        *((408, False), (429, False), (500, False), (502, False), (503, False)),
    ],
)
def test_http_a_4xx_is_permanent_but_a_timeout_throttle_or_5xx_may_pass(
    status: int, permanent: bool
) -> None:
    with http_receiver() as receiver:
        error = refusal({"type": "http", "url": f"{receiver.base_url}/status/{status}"})
    assert str(error).startswith(f"http: {status} ") and error.permanent is permanent


@pytest.mark.parametrize(("code", "permanent"), [(550, True), (553, True), (450, False)])
def test_smtp_a_5xx_refusal_is_permanent_a_4xx_may_pass(code: int, permanent: bool) -> None:
    recorder = Recorder(refuse_rcpt={"ayse@example.com": f"{code} mailbox says no"})
    with smtp_server(recorder) as server:
        error = refusal(server.provider())
    assert str(error).startswith(f"smtp: {code} ") and error.permanent is permanent
    with smtp_server(Recorder(refuse_data=f"{code} content says no")) as server:
        error = refusal(server.provider())
    assert str(error).startswith(f"smtp: {code} message") and error.permanent is permanent


def test_a_server_down_or_silent_may_pass_a_setting_that_cannot_work_will_not() -> None:
    down = {"type": "smtp", "host": HOST, "port": free_port()}
    assert not refusal(down).permanent
    assert not refusal({"type": "http", "url": f"http://{HOST}:{free_port()}/x"}).permanent
    with silent_server() as port:
        assert not refusal({"type": "smtp", "host": HOST, "port": port}, timeout=0.1).permanent
    assert refusal(down, message(to="a@example.com\nb")).permanent
    with smtp_server() as server:
        assert refusal(server.provider(starttls=True)).permanent
        assert refusal(server.provider(username="u", password="p")).permanent
    assert refusal({"type": "pigeon"}).permanent
    bad_header = {"type": "http", "url": f"http://{HOST}:1/x", "headers": {"X-A": "1\n2"}}
    assert refusal(bad_header).permanent


def test_a_refused_login_is_permanent(tls: ssl.SSLContext) -> None:
    authenticator = Credentials("surveys", "right")
    with smtp_server(tls_context=tls, authenticator=authenticator, auth_required=True) as server:
        provider = server.provider(starttls=True, username="surveys", password="wrong")
        error = refusal(provider)
    assert "535" in str(error) and error.permanent


def test_a_forked_worker_keeps_its_own_deadlines() -> None:
    # `serve` builds the app, then gunicorn forks: the parent's watchdog thread is not the child's.
    cut_off(Deadline(0.05))  # the watchdog thread runs here
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            took = cut_off(Deadline(SHORT))
            os.write(write, b"ok" if took < SHORT + 2 else b"late")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as said:
        answer = said.read()
    os.waitpid(child, 0)
    assert answer == b"ok"
