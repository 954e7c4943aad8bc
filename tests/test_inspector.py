"""The inspector page without a browser (SPEC 2.7, issue 12): who may open it (SPEC 2.6), what
`POST /__mock/ui/poll` answers (filters, answers rebuilt, secrets masked), that it is whole and
self-contained (no asset from elsewhere, under 200 KB) and that the wheel carries it."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import Api

from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import Access, load_settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mockserver" / "inspector"
ADMIN_TOKEN = "admin-secret-token"
OTHER = "other-account-token"


def poll(base_url: str, **journal: object) -> dict:
    answer = requests.post(f"{base_url}/__mock/ui/poll", json={"journal": journal}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def ids(answer: dict) -> list[int]:
    return [entry["id"] for entry in answer["journal"]["entries"]]


def rid(response: requests.Response) -> int:
    """The journal id of a request (ids go on across resets)."""
    return int(response.headers["X-Pisano-Mock-Request-Id"])


# -- access (SPEC 2.6) ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    """An emulator started with an admin token."""
    settings = load_settings().with_changes(access=Access(admin_token=ADMIN_TOKEN))
    with LiveServer(create_app(settings)) as server:
        yield server.base_url


def basic(user: str, password: str | bytes) -> dict[str, str]:
    raw = password if isinstance(password, bytes) else password.encode()
    return {"Authorization": "Basic " + base64.b64encode(user.encode() + b":" + raw).decode()}


def test_without_the_admin_token_the_page_asks_for_basic_credentials(guarded):
    answer = requests.get(f"{guarded}/__mock/ui")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="pisano-mock"'
    assert ADMIN_TOKEN not in answer.text
    # The rest of the admin API keeps its Bearer challenge: a script is told what to send.
    other = requests.get(f"{guarded}/__mock/health")
    assert other.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        basic("anyone", ADMIN_TOKEN),
        basic("", ADMIN_TOKEN),
        {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        {"X-Pisano-Mock-Admin-Token": ADMIN_TOKEN},
    ],
)
def test_the_admin_token_opens_the_page_basic_or_bearer(guarded, headers):
    assert requests.get(f"{guarded}/__mock/ui", headers=headers).status_code == 200
    assert requests.get(f"{guarded}/__mock/ui/static/inspector.js", headers=headers).ok
    # Basic credentials work on every admin route: the page's own requests carry them.
    assert requests.post(f"{guarded}/__mock/ui/poll", json={}, headers=headers).ok
    assert requests.get(f"{guarded}/__mock/clock", headers=headers).ok


@pytest.mark.parametrize(
    "headers",
    [
        basic("anyone", ADMIN_TOKEN[:-1]),
        basic(ADMIN_TOKEN, ""),  # the token as the user name is not the password
        {"Authorization": "Basic " + base64.b64encode(ADMIN_TOKEN.encode()).decode()},  # no colon
        {"Authorization": "Basic %%%not-base64"},
        {"Authorization": "Basic"},
        basic("anyone", b"\xff\xfe" + ADMIN_TOKEN.encode()),  # not UTF-8
        {"Authorization": "Basic ÿÿÿÿ"},
    ],
)
def test_wrong_or_malformed_basic_credentials_are_401_never_500(guarded, headers):
    answer = requests.get(f"{guarded}/__mock/ui", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["status"] == "unauthorized"


def test_a_stranger_host_is_refused_before_the_page(pisano_mock):
    answer = requests.get(f"{pisano_mock.base_url}/__mock/ui", headers={"Host": "evil.example"})
    assert answer.status_code == 403
    assert "evil.example" in answer.json()["reason"]


@pytest.mark.parametrize("path", ["/__mock/ui/poll", "/__mock/reset", "/__mock/faults"])
def test_the_controls_refuse_a_foreign_origin(pisano_mock, path):
    answer = requests.post(
        pisano_mock.base_url + path,
        json={"status": 503},
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status_code == 403
    assert pisano_mock.call("GET", "/__mock/faults")["faults"] == []


def test_the_pages_own_origin_is_answered(pisano_mock):
    own = pisano_mock.base_url
    answer = requests.post(f"{own}/__mock/ui/poll", json={}, headers={"Origin": own})
    assert answer.status_code == 200


# -- the page itself ------------------------------------------------------------------------------


def page_files() -> dict[str, str]:
    files = [*PACKAGE.glob("templates/*"), *PACKAGE.glob("static/*")]
    assert files, "the inspector's templates and static files are missing"
    return {path.name: path.read_text(encoding="utf-8") for path in files}


# What would fetch something from elsewhere: an absolute or scheme-relative URL, an import.
EXTERNAL = re.compile(r"""(https?:)?//[\w.-]+\.\w|@import|url\(\s*['"]?(https?:|//)""")


def test_nothing_is_fetched_from_elsewhere():
    offenders = {
        name: EXTERNAL.findall(text) for name, text in page_files().items() if EXTERNAL.search(text)
    }
    assert offenders == {}


def test_the_check_for_external_urls_itself_sees_them():
    for sample in ('<script src="https://cdn.example/x.js">', "@import 'x.css'", "//cdn.io/a"):
        assert EXTERNAL.search(sample), sample


HTML_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
)


def test_the_script_puts_data_in_the_page_only_as_text():
    # Every string shown came from a caller: textContent only (an email's HTML goes to a
    # sandboxed iframe's srcdoc, which is not one of these).
    assert HTML_SINKS.findall(page_files()["inspector.js"]) == []
    assert HTML_SINKS.search("td.innerHTML = cell")


def test_the_whole_page_weighs_under_200_kb(pisano_mock):
    base = pisano_mock.base_url
    html = requests.get(f"{base}/__mock/ui")
    assets = re.findall(r'(?:src|href)="(/__mock/ui/static/[^"]+)"', html.text)
    assert len(assets) == 2  # the script and the stylesheet
    total = len(html.content) + sum(len(requests.get(base + a).content) for a in assets)
    assert total < 200_000


def test_the_page_forbids_scripts_and_frames_from_elsewhere(pisano_mock):
    answer = requests.get(f"{pisano_mock.base_url}/__mock/ui")
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "img-src data:;" in policy  # an email's pixels, remote or the emulator's, do not load
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["static/nope.js", "static/../__init__.py", "static/"])
def test_a_file_the_page_lacks_is_the_admin_apis_404(pisano_mock, path):
    answer = requests.get(f"{pisano_mock.base_url}/__mock/ui/{path}")
    assert answer.status_code == 404
    assert answer.json()["status"] == "not_found"


def test_the_page_is_neither_journaled_nor_throttled(pisano_mock):
    for _ in range(3):
        requests.get(f"{pisano_mock.base_url}/__mock/ui")
        poll(pisano_mock.base_url)
    assert pisano_mock.requests() == []


# -- the journal as the page reads it -------------------------------------------------------------


def share(api: Api, email: str, token: str = "test-token", **more: object) -> requests.Response:
    headers = {"Authorization": f"Token token={token}"}
    return api.post({"emails": [email], **more}, headers=headers)


def test_filters_status_code_and_email(api, pisano_mock):
    base = pisano_mock.base_url
    one = rid(share(api, "first@example.com"))
    two = rid(share(api, "Second@Example.com"))
    three = rid(api.post({"emails": "not-a-list@example.com"}))  # 13028
    four = rid(share(api, "x@example.com", token="nope"))  # 13001
    assert ids(poll(base)) == [four, three, two, one]  # newest first
    assert ids(poll(base, status="200")) == [two, one]
    assert ids(poll(base, status="4xx")) == [four, three]
    assert ids(poll(base, code=13028)) == [three]
    assert ids(poll(base, email="second@")) == [two]  # part of an address, any case
    assert ids(poll(base, status="4xx", email="not-a-list")) == [three]


def test_the_token_filter_finds_a_tokens_requests_in_any_form_and_never_shows_it(api, pisano_mock):
    base = pisano_mock.base_url
    one = rid(share(api, "a@example.com"))
    bearer = {"Authorization": "Bearer test-token"}
    two = rid(api.post({"emails": ["b@example.com"]}, headers=bearer))
    three = rid(share(api, "c@example.com", token=OTHER))
    api.post({"emails": ["d@example.com"]}, headers={"Authorization": ""})
    answer = requests.post(
        f"{base}/__mock/ui/poll", json={"journal": {"token": "test-token", "detail": one}}
    )
    assert ids(answer.json()) == [two, one]
    assert answer.json()["journal"]["detail"]["headers"]["Authorization"].endswith("tes****ken")
    assert ids(poll(base, token=OTHER)) == [three]
    assert ids(poll(base, token="test-tokeN")) == []
    assert "test-token" not in answer.text and OTHER not in requests.get(f"{base}/__mock/ui").text
    journal = requests.get(f"{base}/__mock/requests").text
    assert "test-token" not in journal and OTHER not in journal


def test_a_refusal_shows_the_catalogues_bytes_and_the_reason(api, pisano_mock):
    sent = api.post({"emails": ["a@example.com", "A@example.com"]})
    detail = poll(pisano_mock.base_url, detail=rid(sent))["journal"]["detail"]
    assert detail["code"] == 13017 and "a@example.com" in detail["reason"].lower()
    assert detail["answer"]["status"] == 400
    assert detail["answer"]["body"] == sent.text  # byte for byte what the API answered
    assert detail["answer"]["content_type"] == sent.headers["Content-Type"]


def test_the_answer_is_rebuilt_as_sent_for_each_kind(api, pisano_mock):
    sent = {
        "forced": api.post({"emails": ["a@example.com"]}, headers={"X-Pisano-Mock-Error": "13012"}),
        "accepted": share(api, "ok@example.com"),
    }
    pisano_mock.add_fault(status=503, times=1)
    sent["fault"] = share(api, "f@example.com")
    pisano_mock.set_clock(1_000_000_000)
    for n in range(21):
        sent["throttled"] = share(api, f"t{n}@example.com")
    assert sent["throttled"].status_code == 429
    answers = {
        kind: poll(pisano_mock.base_url, detail=rid(response))["journal"]["detail"]["answer"]
        for kind, response in sent.items()
    }
    for kind, answer in answers.items():
        assert answer["status"] == sent[kind].status_code, kind
    for kind in ("forced", "throttled"):  # the bytes, as sent
        assert answers[kind]["body"] == sent[kind].text
        assert answers[kind]["content_type"] == sent[kind].headers["Content-Type"]
    assert f"request {rid(sent['accepted'])}" in answers["accepted"]["note"]
    assert "503" in answers["fault"]["note"]


def test_a_poll_reads_only_what_came_after_its_cursor(api, pisano_mock):
    base = pisano_mock.base_url
    one = rid(share(api, "a@example.com"))
    first = poll(base)["journal"]
    assert first["next"] == one and first["first"] == one
    two = rid(share(api, "b@example.com"))
    later = poll(base, since=first["next"])["journal"]
    assert ids({"journal": later}) == [two] and later["next"] == two


def test_after_a_reset_the_page_is_told_nothing_is_held(api, pisano_mock):
    one = rid(share(api, "a@example.com"))
    assert poll(pisano_mock.base_url)["journal"]["first"] == one
    pisano_mock.reset()
    answer = poll(pisano_mock.base_url, since=one)
    assert answer["journal"]["first"] is None
    assert answer["sharings"]["first"] is None and answer["outbox"]["first"] is None


def test_an_entry_still_open_is_pending_then_read_again(api, pisano_mock):
    import threading

    pisano_mock.add_fault(delay_ms=60_000, times=1)  # ended by clearing the faults
    slow = threading.Thread(target=share, args=(api, "slow@example.com"))
    slow.start()
    try:
        answer = {"journal": {"pending": []}}
        while not answer["journal"]["pending"]:  # until the server has opened its entry
            answer = poll(pisano_mock.base_url)
        (opened,) = answer["journal"]["pending"]
        assert answer["journal"]["entries"][0]["open"]
    finally:
        pisano_mock.clear_faults()  # the delay ends now
        slow.join()
    again = poll(pisano_mock.base_url, since=opened, refresh=[opened])["journal"]
    assert again["pending"] == [] and again["entries"][0]["status"] == 200


# -- secrets masked everywhere the page shows -----------------------------------------------------


def test_the_poll_masks_the_throttle_keys_and_fault_tokens(api, pisano_mock):
    share(api, "a@example.com", token=OTHER)
    pisano_mock.add_fault(status=502, match={"token": OTHER})
    text = requests.post(f"{pisano_mock.base_url}/__mock/ui/poll", json={}).text
    assert OTHER not in text
    answer = poll(pisano_mock.base_url)
    assert answer["faults"][0]["match"]["token"] == "oth****ken"
    assert {c["key"] for c in answer["throttle"]["counters"]} == {"token:oth****ken"}


# -- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"journal": {"status": "<script>"}}',
        b'{"journal": {"code": "13028x"}}',
        b'{"journal": {"refresh": [' + b",".join([b"1"] * 1000) + b"]}}",
        b'{"journal": {"email": "' + b"a" * 10_000 + b'"}}',
        b'{"journal": {"since": -1}}',
        b'{"outbox": {"since": 2.5}}',
        b'{"journal": {"code": true}}',
        b'{"sharings": {"refresh": ["1"]}}',
        b'{"journal": ' * 5000 + b"{}" + b"}" * 5000,
        b'{"journal": {"token": "\xff\xfe"}}',
        b'{"throttle": 0}',
        b'{"journal": {"tail": "yes"}}',
    ],
)
def test_a_bad_poll_is_a_400_naming_what_is_wrong(pisano_mock, body):
    answer = requests.post(
        f"{pisano_mock.base_url}/__mock/ui/poll",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"].startswith("body")


def test_a_poll_that_is_not_json_is_415(pisano_mock):
    answer = requests.post(f"{pisano_mock.base_url}/__mock/ui/poll", data={"a": "b"})
    assert answer.status_code == 415


# -- the wheel carries the page -------------------------------------------------------------------


def test_the_wheel_carries_the_templates_and_static_files(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("pisano_mock-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("templates/inspector.html", "static/inspector.js", "static/inspector.css"):
        assert f"mockserver/inspector/{name}" in names


# -- on Redis: every replica reads the same journal the same way ----------------------------------


def test_on_redis_the_token_filter_finds_requests_another_replica_served(redis_url):
    from test_shared_state import replica

    with replica(redis_url) as first, replica(redis_url) as second:
        assert second.share("far@example.com") == 200
        assert first.share("near@example.com", token=OTHER) == 403  # not its campaign: 13013
        found = poll(first.base_url, token=second.token)["journal"]["entries"]
        assert [entry["status"] for entry in found] == [200]
        refused = ids(poll(second.base_url, token=OTHER))
        assert len(refused) == 1 and refused == ids(poll(first.base_url, token=OTHER))


# -- attack12's findings: what the poll answers ---------------------------------------------------


def raw_poll(base_url: str, body: dict) -> dict:
    answer = requests.post(f"{base_url}/__mock/ui/poll", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_epoch_stays_through_a_reset_and_differs_for_another_store(pisano_mock):
    # A restart (another store) must be told apart from a reset (ids go on): finding 1.
    epoch = raw_poll(pisano_mock.base_url, {})["epoch"]
    pisano_mock.reset()
    assert raw_poll(pisano_mock.base_url, {})["epoch"] == epoch
    with LiveServer(create_app(load_settings())) as other:
        assert raw_poll(other.base_url, {})["epoch"] not in (epoch, None)


def test_on_redis_an_emptied_store_has_another_epoch(redis_url):
    import redis
    from test_shared_state import replica

    with replica(redis_url) as first, replica(redis_url) as second:
        epoch = raw_poll(first.base_url, {})["epoch"]
        assert raw_poll(second.base_url, {})["epoch"] == epoch  # one store, one epoch

        redis.Redis.from_url(redis_url).flushall()
        # The replica that finds the store emptied (its next request) draws a new secret at
        # once; the others read it within a second (redis_state.LINK_SECRET_SECONDS).
        assert Api(second.base_url).request("GET", "/v1/nothing-here").status_code == 404
        assert raw_poll(second.base_url, {})["epoch"] != epoch


BIG = "<p>" + "x" * 200_000 + "</p>"


def test_an_email_is_its_own_document_under_its_own_policy(api, pisano_mock):
    pisano_mock.add_fixtures({"campaigns": {"big": {"account": "acme", "html_template": BIG}}})
    api.post({"emails": ["a@example.com"]}, path="/v1/email_campaigns/big/email_sharings")
    (message,) = raw_poll(pisano_mock.base_url, {})["outbox"]["items"]
    assert message["content"] == "html" and "html" not in message  # the poll carries no body
    email = requests.get(f"{pisano_mock.base_url}/__mock/ui/outbox/{message['id']}.html")
    assert email.status_code == 200 and BIG in email.text
    policy = email.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert "style-src 'unsafe-inline'" in policy and "'self'" in policy.split("frame-ancestors")[1]
    assert email.headers["X-Frame-Options"] == "SAMEORIGIN"
    page_policy = requests.get(f"{pisano_mock.base_url}/__mock/ui").headers[
        "Content-Security-Policy"
    ]
    assert "unsafe-inline" not in page_policy  # the page's own styles are its stylesheet
    missing = requests.get(f"{pisano_mock.base_url}/__mock/ui/outbox/99999.html")
    assert missing.status_code == 404 and missing.json()["status"] == "not_found"


def test_an_emails_route_asks_for_the_admin_token(guarded):
    assert requests.get(f"{guarded}/__mock/ui/outbox/1.html").status_code == 401


def test_a_re_check_answers_the_delivery_state_not_the_bodies(api, pisano_mock):
    # Finding 5: a message re-checked at each poll costs bytes, not its email's weight.
    pisano_mock.add_fixtures({"campaigns": {"big": {"account": "acme", "html_template": BIG}}})
    api.post({"emails": ["a@example.com"]}, path="/v1/email_campaigns/big/email_sharings")
    first = raw_poll(pisano_mock.base_url, {})["outbox"]
    (item,) = first["items"]
    body = {"outbox": {"since": first["next"], "refresh": [item["id"]]}}
    answer = requests.post(f"{pisano_mock.base_url}/__mock/ui/poll", json=body, timeout=10)
    assert len(answer.content) < 5_000
    (state,) = answer.json()["outbox"]["states"]
    assert set(state) == {"id", "status", "attempts", "last_error"}


def test_the_first_poll_reads_the_newest_not_the_oldest(api, pisano_mock):
    # Finding 7: the page starts at the tail; what it left out is said (`skipped`).
    responses = [api.post({"emails": "x"}) for _ in range(230)]
    last = rid(responses[-1])
    journal = raw_poll(pisano_mock.base_url, {"journal": {"tail": True}})["journal"]
    assert ids({"journal": journal})[0] == last and journal["next"] == last
    assert journal["skipped"] == last - 200 and not journal["more"]
    assert len(journal["entries"]) == 200
    whole = raw_poll(pisano_mock.base_url, {"journal": {"since": 0}})["journal"]
    assert ids({"journal": whole})[-1] == rid(responses[0]) and whole["more"]


def test_the_throttle_shows_the_busiest_keys_first_and_how_many_it_left_out():
    from mockserver.inspector import busiest

    rows = [
        {"key_id": f"k{n}", "period": period, "count": n}
        for n in range(1, 8)
        for period in ("second", "minute")
    ]
    kept, more = busiest(rows, 3)
    assert [row["key_id"] for row in kept] == ["k7", "k7", "k6", "k6", "k5", "k5"]
    assert [row["period"] for row in kept[:2]] == ["second", "minute"]
    assert more == 4


def test_a_poll_may_leave_the_throttle_out(pisano_mock):
    assert raw_poll(pisano_mock.base_url, {"throttle": False})["throttle"] is None
    assert raw_poll(pisano_mock.base_url, {})["throttle"]["more"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"journal": {"since": 100000000000000000000000000000}}', "since"),
        (b'{"journal": {"since": 1e308}}', "since"),
        (b'{"sharings": {"since": 18446744073709551616}}', "since"),
        (b'{"outbox": {"refresh": [18446744073709551616]}}', "refresh"),
        (b'{"journal": {"detail": 9223372036854775808}}', "detail"),
        (b'{"journal": {"refresh": [' + b",".join([b"1"] * 2_000_000) + b"]}}", "refresh"),
    ],
)
def test_a_poll_out_of_bounds_is_the_admin_apis_400_naming_the_field(pisano_mock, body, field):
    answer = requests.post(
        f"{pisano_mock.base_url}/__mock/ui/poll",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"].startswith("body") and field in answer.json()["reason"]


def test_the_token_filtered_by_has_its_throttle_bucket_shown_first(api, pisano_mock):
    # Finding 6: 50 of many buckets are shown; the token under test is among them, first.
    share(api, "a@example.com")
    for _ in range(3):
        share(api, "b@example.com", token=OTHER)
    body = {"journal": {"token": "test-token"}}
    counters = raw_poll(pisano_mock.base_url, body)["throttle"]["counters"]
    assert counters[0]["key"] == "token:tes****ken" and counters[0]["of_token"] is True
    unfiltered = raw_poll(pisano_mock.base_url, {})["throttle"]["counters"]
    assert unfiltered[0]["key"] == "token:oth****ken"  # otherwise the busiest first


def test_load_older_answers_the_entries_just_before_the_oldest_shown(api, pisano_mock):
    responses = [api.post({"emails": "x"}) for _ in range(5)]
    wanted = [rid(r) for r in responses]
    answer = raw_poll(pisano_mock.base_url, {"journal": {"since": wanted[-1], "older": wanted[3]}})
    older = answer["journal"]["older"]
    assert [entry["id"] for entry in older["entries"]] == wanted[2::-1]
    assert older["skipped"] == max(0, wanted[3] - 1 - 200)
    assert raw_poll(pisano_mock.base_url, {})["journal"]["older"] is None
