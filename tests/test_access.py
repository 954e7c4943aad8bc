"""Who may use the admin API, and how it refuses (SPEC 2.2 admin errors, 2.6 access).

Real requests against live servers, carrying the headers a browser would send; the caller's
address (a non-loopback caller) is the one thing a loopback test cannot send, so those cases use
Flask's test client with another REMOTE_ADDR.
"""

from __future__ import annotations

import pytest
import requests
from browser import CHROMIUM, CHROMIUM_FLAGS, browser_or_skip

from mockserver.access import startup_refusal
from mockserver.app import create_app
from mockserver.settings import Access, load_settings

FAULT = {"status": 503, "times": 1}
ADMIN_TOKEN = "admin-secret-token"


def post_fault(base_url: str, **kwargs) -> requests.Response:
    return requests.post(f"{base_url}/__mock/faults", **kwargs)


def faults(base_url: str) -> list:
    return requests.get(f"{base_url}/__mock/faults").json()["faults"]


# -- admin errors: ours, the reason in the body --------------------------------------------------


def test_a_misspelt_fault_field_is_named_in_the_body(pisano_mock):
    response = post_fault(pisano_mock.base_url, json={"stauts": 503})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "reason"} and body["status"] == "bad_request"
    assert "stauts" in body["reason"]


def test_an_admin_body_that_is_not_json_says_so(pisano_mock):
    response = post_fault(
        pisano_mock.base_url, data=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["reason"].startswith("body: not JSON")


def test_an_unknown_admin_route_is_our_404(pisano_mock):
    response = requests.get(f"{pisano_mock.base_url}/__mock/nothing")
    assert response.status_code == 404
    assert response.json() == {
        "status": "not_found",
        "reason": "no admin route GET /__mock/nothing",
    }


def test_a_method_an_admin_route_lacks_is_405_naming_those_it_has(pisano_mock):
    response = requests.put(f"{pisano_mock.base_url}/__mock/faults", json=FAULT)
    assert response.status_code == 405
    assert response.json()["status"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "DELETE"}


def test_paths_outside_the_api_and_the_admin_api_stay_pisanos_13002(pisano_mock):
    response = requests.get(f"{pisano_mock.base_url}/nothing")
    assert (response.status_code, response.json()["code"]) == (404, 13002)


# -- drive-by protection: Origin, Content-Type, Host ----------------------------------------------


def test_a_hostile_pages_text_plain_post_creates_no_fault(pisano_mock):
    # What fetch(..., {mode: "no-cors", headers: {"Content-Type": "text/plain"}}) sends.
    response = post_fault(
        pisano_mock.base_url,
        data=b'{"status": 503}',
        headers={
            "Content-Type": "text/plain;charset=UTF-8",
            "Origin": "http://evil.example",
            "Sec-Fetch-Mode": "no-cors",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert response.status_code == 403
    assert response.json()["status"] == "forbidden"
    assert "Origin" in response.json()["reason"]
    assert faults(pisano_mock.base_url) == []


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.2:{port}", "https://127.0.0.1:{port}"]
)
def test_a_foreign_origin_is_refused_even_for_reads(pisano_mock, origin):
    port = pisano_mock.base_url.rsplit(":", 1)[1]
    response = requests.get(
        f"{pisano_mock.base_url}/__mock/requests", headers={"Origin": origin.format(port=port)}
    )
    assert response.status_code == 403


def test_the_emulators_own_origin_is_welcome(pisano_mock):
    response = post_fault(
        pisano_mock.base_url, json=FAULT, headers={"Origin": pisano_mock.base_url}
    )
    assert response.status_code == 201
    assert len(faults(pisano_mock.base_url)) == 1


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_an_admin_write_with_a_body_needs_json(pisano_mock, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = requests.Session().send(
        requests.Request(
            "POST",
            f"{pisano_mock.base_url}/__mock/faults",
            data=b'{"status": 503}',
            headers=headers,
        ).prepare()
    )
    assert response.status_code == 415
    assert response.json()["status"] == "unsupported_media_type"
    assert faults(pisano_mock.base_url) == []


def test_curls_form_default_gets_a_hint(pisano_mock):
    # `curl -X POST .../__mock/faults -d '{"status": 503}'`
    response = post_fault(
        pisano_mock.base_url,
        data=b'{"status": 503}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "-H 'Content-Type: application/json'" in response.json()["reason"]


@pytest.mark.parametrize(
    ("path", "accepted"),
    [
        ("/__mock/faults", ("application/json",)),
        ("/__mock/campaigns/c-1/csv", ("text/csv", "multipart/form-data")),
        ("/__mock/campaigns/c-1/csv/x", ("application/json",)),
    ],
)
def test_only_the_csv_upload_takes_another_body(path, accepted):
    from mockserver.access import accepted_content_types

    assert accepted_content_types(path) == accepted


def test_json_with_a_charset_is_json(pisano_mock):
    response = post_fault(
        pisano_mock.base_url,
        data=b'{"status": 503}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_a_bodiless_write_needs_no_content_type(pisano_mock):
    # `curl -X POST .../__mock/reset` and the kit's reset carry no body to misread.
    assert requests.post(f"{pisano_mock.base_url}/__mock/reset").status_code == 200
    assert requests.delete(f"{pisano_mock.base_url}/__mock/faults").status_code == 200
    refused = requests.post(
        f"{pisano_mock.base_url}/__mock/reset", headers={"Content-Type": "text/plain"}
    )
    assert refused.status_code == 415


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "192.0.2.1:{port}"])
def test_a_foreign_host_is_refused_by_the_admin_api(pisano_mock, host):
    port = pisano_mock.base_url.rsplit(":", 1)[1]
    response = requests.get(
        f"{pisano_mock.base_url}/__mock/requests", headers={"Host": host.format(port=port)}
    )
    assert response.status_code == 403
    assert "Host" in response.json()["reason"]


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("127.0.0.1:1@evil.example", "'127.0.0.1:1@evil.example'"),  # one a URL parser refuses
        ("caf\u00e9.example", "'caf\\u00e9.example'"),
        ("x" * 500, "'" + "x" * 100 + "...'"),
    ],
)
def test_a_refused_host_is_named_as_received_ascii_and_bounded(host, shown):
    app = create_app(load_settings())
    response = app.test_client().get("/__mock/health", headers={"Host": host})
    assert response.status_code == 403
    assert response.get_json()["reason"].startswith(f"Host: {shown} is not this emulator's")


@pytest.mark.parametrize(
    "query",
    [
        "/__mock/health?x=1",
        "/__mock/clock?x=1",
        "/__mock/faults?x=1",
        "/__mock/throttle?x=1",
        "/__mock/requests?x=1",
        "/__mock/sharings?x=1",
    ],
)
def test_every_admin_read_refuses_an_unknown_query_parameter_naming_it(pisano_mock, query):
    response = requests.get(pisano_mock.base_url + query)
    assert response.status_code == 400
    assert response.json()["reason"] == "query: x: Unknown field."


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "127.9.9.9", "[::1]:{port}"]
)
def test_loopback_hosts_are_accepted(pisano_mock, host):
    port = pisano_mock.base_url.rsplit(":", 1)[1]
    response = requests.get(
        f"{pisano_mock.base_url}/__mock/health", headers={"Host": host.format(port=port)}
    )
    assert response.status_code == 200


def test_a_foreign_host_reaches_the_emulated_api(api):
    # DNS rebinding matters where state can be read or changed: the admin API. The emulated API
    # answers like Pisano, whatever name a client used to reach it (README, Fidelity).
    response = api.post({"emails": ["a@example.com"]}, headers={"Host": "pisano-mock:8080"})
    assert response.status_code == 200


def test_allowed_hosts_names_more_hosts(server_with):
    with server_with(access=Access(allowed_hosts=("pisano-mock",))) as (_, mock):
        ok = requests.get(f"{mock.base_url}/__mock/health", headers={"Host": "pisano-mock:8080"})
        assert ok.status_code == 200
        other = requests.get(f"{mock.base_url}/__mock/health", headers={"Host": "other:8080"})
        assert other.status_code == 403


# -- the admin token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Token token={ADMIN_TOKEN}"},
        {"X-Pisano-Mock-Admin-Token": ADMIN_TOKEN[:-1]},
    ],
)
def test_with_an_admin_token_callers_without_it_are_refused(server_with, headers):
    with server_with(access=Access(admin_token=ADMIN_TOKEN)) as (_, mock):
        response = requests.get(f"{mock.base_url}/__mock/health", headers=headers)
        assert response.status_code == 401
        assert response.json()["status"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert ADMIN_TOKEN not in response.text


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {ADMIN_TOKEN}"}, {"X-Pisano-Mock-Admin-Token": ADMIN_TOKEN}],
)
def test_with_an_admin_token_callers_carrying_it_are_answered(server_with, headers):
    with server_with(access=Access(admin_token=ADMIN_TOKEN)) as (api, mock):
        created = post_fault(mock.base_url, json=FAULT, headers=headers)
        assert created.status_code == 201
        assert api.post({"emails": ["a@example.com"]}).status_code == 503
        # The emulated API never asks for the admin token.


def test_the_admin_token_does_not_open_the_door_to_a_foreign_origin(server_with):
    with server_with(access=Access(admin_token=ADMIN_TOKEN)) as (_, mock):
        response = post_fault(
            mock.base_url,
            json=FAULT,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Origin": "http://evil.example"},
        )
        assert response.status_code == 403


def test_openapi_document_is_public(server_with):
    with server_with(access=Access(admin_token=ADMIN_TOKEN)) as (_, mock):
        assert requests.get(f"{mock.base_url}/openapi.json").status_code == 200


# -- callers from other machines ------------------------------------------------------------------


def remote_get(access: Access, headers: dict[str, str] | None = None):
    app = create_app(load_settings().with_changes(access=access))
    return app.test_client().get(
        "/__mock/health",
        headers={"Host": "127.0.0.1", **(headers or {})},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )


def test_without_an_admin_token_only_loopback_callers_are_answered():
    response = remote_get(Access())
    assert response.status_code == 403
    assert "10.1.2.3" in response.get_json()["reason"]


def test_insecure_admin_answers_everyone():
    assert remote_get(Access(insecure_admin=True)).status_code == 200


def test_with_an_admin_token_a_remote_caller_carrying_it_is_answered():
    access = Access(admin_token=ADMIN_TOKEN)
    assert remote_get(access).status_code == 401
    assert remote_get(access, {"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"bearer {ADMIN_TOKEN}"},  # a scheme is case-insensitive (RFC 9110)
        {"Authorization": f"BEARER {ADMIN_TOKEN}"},
        {"Authorization": f"  Bearer   {ADMIN_TOKEN}  "},
        {"X-Pisano-Mock-Admin-Token": f" {ADMIN_TOKEN} "},
        {"X-Pisano-Mock-Admin-Token": f"\t{ADMIN_TOKEN}"},
    ],
)
def test_the_admin_token_is_read_as_http_reads_credentials(headers):
    assert remote_get(Access(admin_token=ADMIN_TOKEN), headers).status_code == 200


@pytest.mark.parametrize(
    ("x_header", "authorization"),
    [
        (ADMIN_TOKEN, "Bearer wrong-token"),  # either order: one header carrying it is enough
        ("wrong-token", f"Bearer {ADMIN_TOKEN}"),
        (ADMIN_TOKEN, "Token token=test-token"),  # the API's token beside it changes nothing
    ],
)
def test_with_both_headers_either_carrying_the_admin_token_is_enough(x_header, authorization):
    headers = {"X-Pisano-Mock-Admin-Token": x_header, "Authorization": authorization}
    assert remote_get(Access(admin_token=ADMIN_TOKEN), headers).status_code == 200


def test_with_both_headers_wrong_the_refusal_says_wrong():
    headers = {"X-Pisano-Mock-Admin-Token": "wrong-1", "Authorization": "Bearer wrong-2"}
    response = remote_get(Access(admin_token=ADMIN_TOKEN), headers)
    assert response.status_code == 401
    assert response.get_json()["reason"].startswith("admin token wrong")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"X-Pisano-Mock-Admin-Token": " "},
    ],
)
def test_an_empty_admin_token_is_absent(headers):
    response = remote_get(Access(admin_token=ADMIN_TOKEN), headers)
    assert response.status_code == 401
    assert response.get_json()["reason"].startswith("admin token absent")


# -- refusing to start --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "my-laptop.example"])
def test_serving_beyond_loopback_without_an_admin_token_is_refused(host):
    refusal = startup_refusal(host, Access())
    assert refusal is not None and "--admin-token" in refusal and "--insecure-admin" in refusal
    assert startup_refusal(host, Access(admin_token=ADMIN_TOKEN)) is None
    assert startup_refusal(host, Access(insecure_admin=True)) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "localhost", "::1"])
def test_serving_on_loopback_needs_no_admin_token(host):
    assert startup_refusal(host, Access()) is None


# -- a real browser: a hostile page on another loopback origin ------------------------------------

HOSTILE_PAGE = """<!doctype html><title>waiting</title><script>
const emulator = "EMULATOR";
const attempts = [
  // what any page may send without a CORS preflight
  () => fetch(emulator + "/__mock/reset", {method: "POST", mode: "no-cors"}),
  () => fetch(emulator + "/__mock/faults", {method: "POST", mode: "no-cors",
              headers: {"Content-Type": "text/plain"}, body: '{"status": 503}'}),
  // what needs a preflight, which must fail
  () => fetch(emulator + "/__mock/faults", {method: "POST", mode: "cors",
              headers: {"Content-Type": "application/json"}, body: '{"status": 502}'}),
  // reading the journal
  () => fetch(emulator + "/__mock/requests").then(r => r.text()),
];
(async () => {
  const outcomes = [];
  for (const attempt of attempts) {  // one after the other: the reset must not undo the fault
    outcomes.push(await attempt().then(() => "fulfilled", () => "rejected"));
  }
  document.title = "done " + outcomes.join(",");
})();
</script>"""


def serve_page(html: str):
    """The hostile page, served from 127.0.0.2: another origin, on loopback."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_hostile_page(emulator_url: str) -> str:
    """Load the page in headless chromium until its fetches settle; the page's final title."""
    sync_playwright = browser_or_skip()
    page_server = serve_page(HOSTILE_PAGE.replace("EMULATOR", emulator_url))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.2:{page_server.server_port}/")
                page.wait_for_function("document.title.startsWith('done')", timeout=20_000)
                return page.title()
            finally:
                browser.close()
    finally:
        page_server.shutdown()


def test_a_hostile_page_in_a_real_browser_changes_nothing(pisano_mock):
    frozen = pisano_mock.set_clock(1_000_000_000)
    title = open_hostile_page(pisano_mock.base_url)
    assert faults(pisano_mock.base_url) == []
    assert pisano_mock.clock() == frozen  # the reset never happened
    # The journal read and the preflighted write were refused by the browser itself (403).
    assert title.split(" ")[1].split(",")[2:] == ["rejected", "rejected"]


def test_the_same_page_does_harm_an_unguarded_emulator():
    # The control: without the access rules, the very same page creates the fault, so the test
    # above passes because of them, not because the browser stopped the requests on its own.
    from mockserver import access
    from mockserver.server import LiveServer

    app = create_app(load_settings())
    app.before_request_funcs[None].remove(access.guard_admin)
    with LiveServer(app) as server:
        open_hostile_page(server.base_url)
        assert [f["status"] for f in faults(server.base_url)] == [503]


# -- attack12's findings 10, 11, 13 -------------------------------------------------------------

UNICODE_TOKEN = "tökén-sécret-ü"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {UNICODE_TOKEN}".encode()},
        {"X-Pisano-Mock-Admin-Token": UNICODE_TOKEN.encode()},
    ],
)
def test_a_non_ascii_admin_token_works_with_every_header_as_with_basic(server_with, headers):
    # On the wire a header is bytes: curl sends the token's UTF-8, as it does inside Basic.
    with server_with(access=Access(admin_token=UNICODE_TOKEN)) as (_, mock):
        url = f"{mock.base_url}/__mock/health"
        assert requests.get(url, auth=("me", UNICODE_TOKEN.encode())).status_code == 200
        assert requests.get(url, headers=headers).status_code == 200
        assert requests.get(url, headers={"Authorization": b"Bearer t\xc3\xb6k"}).status_code == 401


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_the_wildcard_address_serve_prints_is_a_host_of_this_emulator(pisano_mock, host):
    # `serve --host 0.0.0.0` prints http://0.0.0.0:PORT: following it must not be refused.
    port = pisano_mock.base_url.rsplit(":", 1)[1]
    response = requests.get(
        f"{pisano_mock.base_url}/__mock/health", headers={"Host": f"{host}:{port}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!not-base64", "Basic " + "bm8tY29sb24=", "Basic\tbWU6eA=="],
)
def test_malformed_basic_credentials_are_called_malformed_not_absent(authorization):
    response = remote_get(Access(admin_token=ADMIN_TOKEN), {"Authorization": authorization})
    assert response.status_code == 401
    assert response.get_json()["reason"].startswith("admin token malformed")


def test_a_cross_site_request_is_refused_even_a_get_without_origin(pisano_mock):
    # A page elsewhere may GET without CORS (no Origin): the browser still says cross-site.
    url = f"{pisano_mock.base_url}/__mock/requests"
    refused = requests.get(url, headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    assert "Sec-Fetch-Site" in refused.json()["reason"]
    for site in ("same-origin", "none"):  # the page's own calls; a URL typed in
        assert requests.get(url, headers={"Sec-Fetch-Site": site}).status_code == 200
