"""The inspector page in a real browser (issue 12's acceptance): Debian's chromium, headless,
driven by playwright, after real calls to the emulated API over HTTP. One browser per module.

Without chromium or playwright the tests skip saying how to get them; under CI=true they fail
instead (`.ci/run` installs chromium). The screenshot test takes the README's picture:
`make screenshot` writes it to `docs/inspector.png` (PISANO_MOCK_SCREENSHOT names the file; a plain
test run writes it to a temporary directory, so running the tests changes no tracked file).
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip
from conftest import Api
from playwright.sync_api import expect

from mockserver.app import create_app
from mockserver.server import LiveServer
from mockserver.settings import Access, Bounds, load_settings

SCREENSHOT_VARIABLE = "PISANO_MOCK_SCREENSHOT"
WAIT_MS = 10_000
ADMIN_TOKEN = "admin-secret-token"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = browser_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page of the inspector, with whatever it tried to run or say on the side."""

    def __init__(self, browser: Any, base_url: str, **context: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(f"{base_url}/__mock/ui")
        self.page.wait_for_selector("#live.ok", timeout=WAIT_MS)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def wait_text(self, selector: str, text: str) -> None:
        self.page.locator(selector, has_text=text).first.wait_for(timeout=WAIT_MS)

    def polls(self, count: int) -> None:
        """Until `count` more polls were answered (and shown)."""
        for _ in range(count):
            with self.page.expect_response(lambda r: r.url.endswith("/__mock/ui/poll")):
                pass
            self.page.evaluate("() => new Promise((done) => setTimeout(done, 50))")

    def rows(self) -> list[str]:
        return self.page.locator("#journal-rows tr").all_inner_texts()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def inspector(browser: Any, pisano_mock: Any) -> Iterator[Watched]:
    watched = Watched(browser, pisano_mock.base_url)
    yield watched
    watched.close()


def rid(response: requests.Response) -> str:
    return response.headers["X-Pisano-Mock-Request-Id"]


# -- what the API received ------------------------------------------------------------------------


def test_the_page_shows_accepted_addresses_refusals_and_new_requests_live(api, inspector):
    page = inspector.page
    assert api.post({"emails": ["ada@example.com"]}).status_code == 200
    refused = api.post({"emails": ["bob@example.com", "BOB@example.com"]})
    assert refused.status_code == 400
    inspector.wait_text("#sharing-rows", "ada@example.com")
    inspector.wait_text("#outbox-items", "ada@example.com")
    inspector.wait_text("#journal-rows tr", "13017")
    reason = page.locator(f"#journal-rows tr[data-id='{rid(refused)}']").inner_text()
    assert "13017" in reason and "bob@example.com" in reason.lower()
    # A new request, the page left as it is: it appears without a reload.
    later = api.post({"emails": ["cy@example.com"]})
    page.locator(f"#journal-rows tr[data-id='{rid(later)}']").wait_for(timeout=WAIT_MS)
    assert inspector.rows()[0].startswith(rid(later))  # newest first
    # A row opens the request: its reason and the answer as sent, byte for byte.
    page.click(f"#journal-rows tr[data-id='{rid(refused)}']")
    inspector.wait_text("#detail-answer-body", refused.text)
    assert "tes****ken" in page.inner_text("#detail-headers")
    assert "test-token" not in page.content()
    assert inspector.errors == []


def test_the_filters_narrow_the_journal(api, inspector):
    api.post({"emails": ["ada@example.com"]})
    refused = api.post({"emails": "ada@example.com"})
    other = api.post({"emails": ["eve@example.com"]}, headers={"Authorization": "Bearer nope"})
    inspector.wait_text("#journal-rows tr", "13001")
    rows = inspector.page.locator("#journal-rows tr")
    inspector.page.fill("#filter-code", "13028")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-id", rid(refused))
    inspector.page.click("#filter-clear")
    inspector.page.fill("#filter-token", "nope")
    expect(rows.first).to_have_attribute("data-id", rid(other), timeout=WAIT_MS)
    expect(rows).to_have_count(1)
    assert "nope" not in inspector.page.inner_text("body")


# -- the controls ---------------------------------------------------------------------------------


def test_reset_empties_the_view(api, inspector, pisano_mock):
    api.post({"emails": ["ada@example.com"]})
    inspector.wait_text("#sharing-rows", "ada@example.com")
    inspector.page.click("#reset")
    expect(inspector.page.locator("#journal-rows tr")).to_have_count(0, timeout=WAIT_MS)
    assert inspector.page.locator("#sharing-rows tr").count() == 0
    assert pisano_mock.requests() == []


def test_a_reset_made_elsewhere_empties_the_view_too(api, inspector, pisano_mock):
    api.post({"emails": ["ada@example.com"]})
    inspector.wait_text("#sharing-rows", "ada@example.com")
    pisano_mock.reset()
    expect(inspector.page.locator("#journal-rows tr")).to_have_count(0, timeout=WAIT_MS)
    assert inspector.page.locator("#sharing-rows tr").count() == 0


def test_the_clock_is_set_and_advanced_from_the_page(inspector, pisano_mock):
    page = inspector.page
    page.fill("#clock-set", "2030-01-01T00:00:00Z")
    page.click("#clock-set-go")
    inspector.wait_text("#clock-now", "2030-01-01T00:00:00Z")
    page.fill("#clock-advance", "3600")
    page.click("#clock-advance-go")
    inspector.wait_text("#clock-now", "2030-01-01T01:00:00Z")
    assert pisano_mock.clock() == {"now": 1_893_459_600, "rate": 0.0}


def test_faults_are_added_and_deleted_from_the_page(api, inspector, pisano_mock):
    page = inspector.page
    page.fill("#fault-token", "test-token")
    page.select_option("#fault-kind", "status")
    page.fill("#fault-value", "503")
    page.fill("#fault-times", "2")
    page.click("#fault-add")
    inspector.wait_text("#fault-rows", "status 503")
    assert "tes****ken" in page.inner_text("#fault-rows")
    assert "test-token" not in page.inner_text("body")
    (fault,) = pisano_mock.call("GET", "/__mock/faults")["faults"]
    assert (fault["status"], fault["remaining"]) == (503, 2)
    assert api.post({"emails": ["ada@example.com"]}).status_code == 503
    page.click("#fault-clear")
    expect(page.locator("#fault-rows tr")).to_have_count(0, timeout=WAIT_MS)
    assert pisano_mock.call("GET", "/__mock/faults")["faults"] == []


def test_a_refused_control_says_why(inspector):
    inspector.page.fill("#fault-value", "99999")  # not a catalogue code
    inspector.page.click("#fault-add")
    inspector.wait_text("#message.error", "error")


# -- hostile data ---------------------------------------------------------------------------------


class Pixels(http.server.BaseHTTPRequestHandler):
    """A remote image an email points at: counts who fetched it."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Pixels.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def pixel_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Pixels)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Pixels.hits.clear()
    yield f"http://127.0.0.2:{server.server_port}/pixel.gif"
    server.shutdown()


HOSTILE = "<img src=x onerror=\"window.pwned='img'\"><script>window.pwned='script'</script>"


def test_hostile_strings_show_as_text_and_nothing_runs(api, inspector, pisano_mock, pixel_url):
    # Also a relative image and video: an email must not make the browser call the emulator.
    email_html = (
        f"<p>Hello</p><script>parent.pwned='email'</script><img src='{pixel_url}'>"
        "<img src='/v1/from-an-email'><video src='/v1/from-an-email-video'></video>"
        # attack12, finding 2: what the page's own policy let an email fetch from the emulator
        "<link rel='stylesheet' href='/v1/from-an-email-css'>"
        "<style>@import url('/v1/from-an-email-import');</style>"
        "<link rel='prefetch' href='/v1/from-an-email-prefetch'>"
        "<link rel='preload' as='style' href='/v1/from-an-email-preload'>"
        "<iframe src='/v1/from-an-email-iframe'></iframe>"
        f"<link rel='stylesheet' href='{pixel_url}.css'>"
    )
    pisano_mock.add_fixtures(
        {"campaigns": {"hostile": {"account": "acme", "html_template": email_html}}}
    )
    path = "/v1/email_campaigns/hostile/email_sharings"
    attributes = {"ok@example.com": {"name": HOSTILE}}
    api.post({"emails": ["ok@example.com"], "custom_attributes": attributes}, path=path)
    refused = api.post({"emails": [HOSTILE]}, headers={"X-Evil": HOSTILE})
    page = inspector.page
    inspector.wait_text("#journal-rows tr", "13028")
    page.click(f"#journal-rows tr[data-id='{rid(refused)}']")
    inspector.wait_text("#detail-headers", HOSTILE)  # the header, as text
    inspector.wait_text("#detail-body", json.dumps(HOSTILE)[1:-1])  # a string of the JSON
    page.locator("#outbox-items button").first.click()
    frame = page.frame_locator("#outbox-items iframe")
    frame.locator("p", has_text="Hello").wait_for(timeout=WAIT_MS)
    assert page.locator("#outbox-items iframe").get_attribute("sandbox") == ""
    assert "<img src=x onerror=" in page.inner_text("#journal-rows")  # the reason, as text
    assert page.evaluate("window.pwned") is None
    assert inspector.dialogs == []
    assert Pixels.hits == []  # the email's remote pixel did not load (img-src data:)
    page.wait_for_load_state("networkidle")
    inspector.polls(2)  # and it stays so while the email is open
    called = [entry["path"] for entry in pisano_mock.requests()]
    assert not [path for path in called if "from-an-email" in path]  # nor the emulator's own


def test_the_same_email_outside_the_page_would_load_the_pixel(browser, pixel_url):
    # The control: without the page's policy, the same email fetches its pixel; the test above
    # passes because of the Content-Security-Policy, not because chromium fetched nothing.
    context = browser.new_context()
    page = context.new_page()
    page.set_content(f"<iframe sandbox srcdoc=\"<img src='{pixel_url}'>\"></iframe>")
    page.wait_for_load_state("load")
    context.close()
    assert Pixels.hits == ["/pixel.gif"]


# -- access in a browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    settings = load_settings().with_changes(access=Access(admin_token=ADMIN_TOKEN))
    with LiveServer(create_app(settings)) as server:
        yield server.base_url


def test_with_an_admin_token_the_browser_logs_in_with_basic_and_the_controls_work(browser, guarded):
    credentials = {"username": "me", "password": ADMIN_TOKEN}
    inspector = Watched(browser, guarded, http_credentials=credentials)
    try:
        Api(guarded).post({"emails": ["ada@example.com"]})
        inspector.wait_text("#sharing-rows", "ada@example.com")
        inspector.page.click("#reset")  # a control: another admin route than the page's
        expect(inspector.page.locator("#journal-rows tr")).to_have_count(0, timeout=WAIT_MS)
        assert "not" not in inspector.page.inner_text("#message")
    finally:
        inspector.close()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert requests.get(f"{guarded}/__mock/requests", headers=headers).json()["requests"] == []


# -- the screenshot for the README ----------------------------------------------------------------


def test_a_screenshot_of_a_realistic_state(api, inspector, pisano_mock, tmp_path):
    screenshot = Path(os.environ.get(SCREENSHOT_VARIABLE) or tmp_path / "inspector.png")
    pisano_mock.set_clock(1_767_261_600, rate=1.0)  # 2026-01-01 10:00 UTC, running
    customers = {"ada@example.com": {"name": "Ada Lovelace", "external_id": "C-1001"}}
    api.post({"emails": ["ada@example.com"], "custom_attributes": customers})
    api.post({"emails": ["grace@example.com", "linus@example.com"]})
    api.post({"emails": ["bob@example.com", "BOB@example.com"]})
    api.post({"emails": ["x@example.com"]}, headers={"Authorization": "Token token=nope"})
    refused = api.post({"emails": ["no-at-sign"]})
    api.post({"emails": ["eve@example.com"]}, headers={"X-Pisano-Mock-Error": "13012"})
    pisano_mock.add_fault(status=503, times=2, match={"path": "/v1/sms_campaigns"})
    inspector.wait_text("#journal-rows tr", "13012")
    inspector.page.click(f"#journal-rows tr[data-id='{rid(refused)}']")
    inspector.wait_text("#detail-answer-body", refused.text)
    # The throttle's gauges: each token's count per tier (the clock runs from a window start).
    inspector.wait_text("#throttle-buckets .bucket", "token:tes****ken")
    bucket = inspector.page.locator("#throttle-buckets .bucket", has_text="tes****ken")
    # Two accepted, two refused; the forced one is not (the throttle is read every few polls).
    expect(bucket).to_contain_text("4 / 20", timeout=WAIT_MS)
    assert bucket.locator("meter").count() == 4
    inspector.page.locator("#outbox-items button").last.click()
    inspector.page.frame_locator("#outbox-items iframe").locator("a").first.wait_for()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    inspector.page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


# -- across workers and replicas on Redis (SPEC 2.5) ----------------------------------------------


def test_on_redis_a_request_served_by_another_process_appears(browser, redis_url):
    from test_shared_state import replica, worker_pids

    # The page on a server of two gunicorn workers; the request to another replica: whichever
    # worker answers the page's polls, the request was served by some other process.
    with replica(redis_url, "--workers", "2") as shown, replica(redis_url) as other:
        assert len(worker_pids(shown)) == 2
        inspector = Watched(browser, shown.base_url)
        try:
            assert other.share("far@example.com") == 200
            inspector.wait_text("#sharing-rows", "far@example.com")
            inspector.wait_text("#journal-rows tr", "200")
        finally:
            inspector.close()


# -- attack12's findings in the page --------------------------------------------------------------


def test_after_a_restart_on_the_same_port_the_page_forgets_the_old_store(browser):
    # Finding 1: the new process's ids start again at 1, under the old rows' cursors.
    from test_serving import serving

    with serving("--no-throttle") as first:
        inspector = Watched(browser, first.url)
        try:
            for n in range(5):
                Api(first.url).post({"emails": [f"old{n}@example.com"]})
            inspector.wait_text("#sharing-rows", "old4@example.com")
            first.process.terminate()
            first.process.wait(timeout=10)
            inspector.page.wait_for_selector("#live.error", timeout=WAIT_MS)
            with serving("--no-throttle", "--port", str(first.port)) as second:
                Api(second.url).post({"emails": ["new@example.com"]})
                inspector.wait_text("#sharing-rows", "new@example.com")
                rows = inspector.page.locator("#journal-rows tr")
                expect(rows).to_have_count(1, timeout=WAIT_MS)
                assert "old" not in inspector.page.inner_text("main")
                inspector.page.wait_for_selector("#live.ok")
        finally:
            inspector.close()


def test_an_open_email_is_not_loaded_again_at_each_poll(api, inspector):
    # Finding 3: moving an iframe's node reloads it (a flicker, a lost scroll, each second).
    api.post({"emails": ["ada@example.com"]})
    api.post({"emails": ["bob@example.com"]})
    page = inspector.page
    inspector.wait_text("#outbox-items", "bob@example.com")
    page.locator("#outbox-items button").last.click()
    page.frame_locator("#outbox-items iframe").locator("a").first.wait_for(timeout=WAIT_MS)
    page.evaluate(
        "() => { window.loads = 0; document.querySelector('#outbox-items iframe')"
        ".addEventListener('load', () => { window.loads += 1; }); }"
    )
    api.post({"emails": ["cy@example.com"]})  # a new message above it, too
    inspector.wait_text("#outbox-items", "cy@example.com")
    inspector.polls(3)
    assert page.evaluate("window.loads") == 0
    assert page.locator("#outbox-items iframe").count() == 1


def right_edge(locator: Any) -> float:
    box = locator.bounding_box()
    return box["x"] + box["width"]


def test_a_long_path_or_header_keeps_every_column_on_screen(api, inspector):
    # Finding 4: one unbroken string pushed status, code and reason 30,000 px to the right.
    long = api.post(
        {"emails": ["a@example.com"]},
        path="/v1/email_campaigns/" + "A" * 3000 + "/email_sharings",
        headers={"X-" + "B" * 3000: "v"},
    )
    page = inspector.page
    row = page.locator(f"#journal-rows tr[data-id='{rid(long)}']")
    row.wait_for(timeout=WAIT_MS)
    width = page.evaluate("window.innerWidth")
    for column in (4, 5, 6):  # status, code, reason
        assert right_edge(row.locator("td").nth(column)) <= width
    row.click()
    inspector.wait_text("#detail-headers", "BBBB")
    for cell in page.locator("#detail-headers td").all():
        assert right_edge(cell) <= width


BIDI_LETTERS = """(td) => {
    // Where the first and the last letter of the reason's last word sit: left to right, as
    // written, unless a bidi control reversed the run.
    const text = td.firstChild, data = text.data, range = document.createRange();
    const left = (i) => {
        range.setStart(text, i);
        range.setEnd(text, i + 1);
        const box = range.getBoundingClientRect();
        return [box.top, box.left];
    };
    const word = data.lastIndexOf("address");
    return [left(word), left(word + "address".length - 1)];
}"""


def test_a_bidi_control_in_an_address_does_not_reverse_the_emulators_words(api, inspector):
    # Finding 4: U+202E in a caller's string turned the reason's own text right to left.
    refused = api.post({"emails": ["rlo\u202emoc.elpmaxe@live"]})
    assert refused.status_code == 400
    cell = inspector.page.locator(f"#journal-rows tr[data-id='{rid(refused)}'] td").nth(6)
    cell.wait_for(timeout=WAIT_MS)
    first, last = cell.evaluate(BIDI_LETTERS)
    assert first[0] == last[0] and first[1] < last[1]  # "a...s": left to right, one line
    assert "\\u202e" in cell.inner_text()  # the control is shown, not obeyed


def test_controls_say_what_they_did_not_do(browser, pisano_mock):
    # Finding 9: an empty Advance, a zone-less time, a cleared `times`.
    inspector = Watched(browser, pisano_mock.base_url, timezone_id="Europe/Istanbul")
    page = inspector.page
    try:
        page.fill("#clock-advance", "")
        page.click("#clock-advance-go")
        inspector.wait_text("#message.error", "advance")
        assert pisano_mock.clock()["rate"] == 1.0  # not frozen by an advance of 0
        page.fill("#clock-set", "2030-01-01T00:00")
        page.click("#clock-set-go")
        inspector.wait_text("#clock-now", "2030-01-01T00:00:00Z")  # UTC, as the page shows
        page.fill("#fault-times", "")
        page.select_option("#fault-kind", "status")
        page.fill("#fault-value", "503")
        page.click("#fault-add")
        inspector.wait_text("#fault-rows", "status 503")
        (fault,) = pisano_mock.call("GET", "/__mock/faults")["faults"]
        assert fault["remaining"] == 1  # once, as the field shows, never "always"
    finally:
        inspector.close()


def test_a_control_says_when_the_emulator_does_not_answer(browser):
    from test_serving import serving

    with serving("--no-throttle") as server:
        inspector = Watched(browser, server.url)
        try:
            server.process.terminate()
            server.process.wait(timeout=10)
            inspector.page.click("#reset")
            inspector.wait_text("#message.error", "did not answer")
        finally:
            inspector.close()


def test_dropped_entries_are_counted_and_an_open_one_says_dropped(browser):
    # Finding 12: the bounds dropped the entry shown; the page said nothing.
    settings = load_settings().with_changes(bounds=Bounds(journal_max_entries=5))
    with LiveServer(create_app(settings)) as server:
        inspector = Watched(browser, server.base_url)
        try:
            api = Api(server.base_url)
            opened = api.post({"emails": ["a@example.com"]})
            inspector.page.click(f"#journal-rows tr[data-id='{rid(opened)}']")
            inspector.wait_text("#detail-summary", "email_sharings")
            for _ in range(8):
                api.post({"emails": ["b@example.com"]})
            inspector.wait_text("#detail-id", "dropped")
            inspector.wait_text("#journal-note", "dropped")
            assert inspector.page.is_visible("#detail")
        finally:
            inspector.close()


def test_the_page_opens_on_the_newest_and_a_filter_still_finds_an_old_entry(
    browser, api, pisano_mock
):
    # Finding 7: the first load replayed the whole history, oldest first.
    old = api.post({"emails": "ada@example.com"})  # 13028: the only one of its code
    later = [api.post({"emails": ["x"]}) for _ in range(229)]
    inspector = Watched(browser, pisano_mock.base_url)
    try:
        page = inspector.page
        page.locator(f"#journal-rows tr[data-id='{rid(later[-1])}']").wait_for(timeout=WAIT_MS)
        assert page.locator("#journal-rows tr").count() == 200
        skipped = int(rid(later[-1])) - 200
        inspector.wait_text("#journal-note", f"older entries #{rid(old)}–#{skipped} not shown")
        page.click("#journal-older")  # on demand: the 30 left out
        page.locator(f"#journal-rows tr[data-id='{rid(old)}']").wait_for(timeout=WAIT_MS)
        expect(page.locator("#journal-rows tr")).to_have_count(230)
        expect(page.locator("#journal-older")).to_be_hidden()
        inspector.polls(1)
        assert page.locator("#journal-rows tr").count() == 230  # kept: they were asked for
        page.fill("#filter-code", "13028")
        row = page.locator(f"#journal-rows tr[data-id='{rid(old)}']")
        row.wait_for(timeout=WAIT_MS)
        expect(page.locator("#journal-note")).not_to_contain_text("not shown")
    finally:
        inspector.close()
