"""`POST /__mock/campaigns/<id>/csv` (SPEC 1.8): a file's rows shared as an API call would be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mockserver.settings import Bounds

EMAIL_CAMPAIGN = "735c19a7-ee54-4b03-a84a-93dfe2a94a56"
SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"
NO_FLOW = "00000000-0000-4000-8000-000000013005"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "csv"
CSV = {"Content-Type": "text/csv"}


def upload(api: Any, campaign: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
    path = f"/__mock/campaigns/{campaign}/csv"
    return api.request("POST", path, data=data, headers=headers or CSV)


def journal(api: Any) -> list[dict[str, Any]]:
    return api.request("GET", "/__mock/requests").json()["requests"]


def test_rows_are_shared_as_the_api_shares_them(api: Any) -> None:
    answer = upload(api, EMAIL_CAMPAIGN, (FIXTURES / "customers.csv").read_bytes())
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    body = answer.json()
    assert (body["status"], body["campaign_id"], body["count"]) == ("ok", EMAIL_CAMPAIGN, 3)
    emails = ["ayse@example.com", "bob@example.com", "can@example.com"]
    assert list(body["sharings"]) == emails
    sharings = api.request("GET", "/__mock/sharings").json()["sharings"]
    assert [s["email"] for s in sharings] == emails
    assert {s["trigger"] for s in sharings} == {"csv"}
    assert {s["request_id"] for s in sharings} == {journal(api)[-1]["id"]}
    assert sharings[0]["custom_attributes"] == {
        "name": "Ayşe",
        "Segment": "gold",
        "Location": "İstanbul",
    }
    assert sharings[2]["custom_attributes"] == {"Segment": "gold", "Location": ""}


def test_the_upload_is_journaled_with_its_trigger_and_not_throttled(api: Any) -> None:
    data = b"email\na@example.com\n"
    answers = [upload(api, EMAIL_CAMPAIGN, data) for _ in range(25)]  # over 20 / 5 s
    assert {a.status_code for a in answers} == {200}
    entries = journal(api)
    assert len(entries) == 25
    assert {(e["trigger"], e["status"], e["path"]) for e in entries} == {
        ("csv", 200, f"/__mock/campaigns/{EMAIL_CAMPAIGN}/csv")
    }


def test_multipart_field_file(api: Any) -> None:
    files = {"file": ("c.csv", b"email;name\na@example.com;A\n", "text/csv")}
    path = f"/__mock/campaigns/{EMAIL_CAMPAIGN}/csv"
    answer = api.request("POST", path, files=files)
    assert answer.status_code == 200, answer.text
    assert answer.json()["count"] == 1


def test_multipart_without_the_field_is_an_admin_400(api: Any) -> None:
    files = {"other": ("c.csv", b"email\na@example.com\n", "text/csv")}
    answer = api.request("POST", f"/__mock/campaigns/{EMAIL_CAMPAIGN}/csv", files=files)
    assert answer.status_code == 400
    assert answer.json()["reason"].startswith("file: absent")
    assert journal(api)[-1]["status"] == 400


@pytest.mark.parametrize(
    ("files", "said"),
    [
        (
            [("file", ("a.csv", b"email\na@example.com\n")), ("file", ("b.csv", b"email\n"))],
            "file: 2 files given",
        ),
        ({"file": (None, b"email\na@example.com\n")}, "file: given as a text field, not a file"),
    ],
)
def test_multipart_says_what_is_wrong_with_its_file(api: Any, files: Any, said: str) -> None:
    # A second file was ignored silently; a text field was said "absent" (attack on issue 11).
    answer = api.request("POST", f"/__mock/campaigns/{EMAIL_CAMPAIGN}/csv", files=files)
    assert answer.status_code == 400
    assert answer.json()["reason"].startswith(said)


def test_sms_campaign_takes_phone_numbers(api: Any) -> None:
    answer = upload(api, SMS_CAMPAIGN, (FIXTURES / "phones.tsv").read_bytes())
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["sharings"]) == ["+90 532 123 45 67", "(0212) 555-0101"]


def test_windows_1254_is_shared_with_a_warning(api: Any) -> None:
    answer = upload(api, EMAIL_CAMPAIGN, (FIXTURES / "turkish-excel.csv").read_bytes())
    assert answer.status_code == 200, answer.text
    assert "Windows-1254" in answer.headers["X-Pisano-Mock-Warning"]
    sharings = api.request("GET", "/__mock/sharings").json()["sharings"]
    assert sharings[0]["custom_attributes"]["Şehir"] == "İstanbul"
    assert journal(api)[-1]["warnings"][0].startswith("the file is not UTF-8")


# (file, campaign, status, code, reason)
REFUSALS = [
    (b"", EMAIL_CAMPAIGN, 400, 13037, "line 1: the file is empty"),
    (b"email\n", EMAIL_CAMPAIGN, 400, 13037, "line 1: a header and no rows"),
    (
        b'email,name\na@example.com,"A\n',
        EMAIL_CAMPAIGN,
        400,
        13037,
        "line 2: a quoted field is never closed (unterminated quote)",
    ),
    (b"email\n\x00\xff\n", EMAIL_CAMPAIGN, 400, 13037, "line 2: not text: "),
    (b"email,name\n,A\n,B\n", EMAIL_CAMPAIGN, 400, 13038, "rows 2, 3"),
    (b"email\na@example.com\n", SMS_CAMPAIGN, 400, 13038, "rows 2"),
    (b"email\nnope\n", EMAIL_CAMPAIGN, 400, 13028, 'line 2: email "nope" is not'),
    (b"email\na@x.com\nA@x.com\n", EMAIL_CAMPAIGN, 400, 13017, 'line 3: email "A@x.com" repeats'),
    (b"email\na@example.com\n", "unknown", 404, 13002, "campaign_id: 'unknown' is unknown"),
    (b"email\na@example.com\n", NO_FLOW, 404, 13005, "campaign_id: "),
]


@pytest.mark.parametrize(("data", "campaign", "status", "code", "reason"), REFUSALS)
def test_refusals_are_catalogue_answers_naming_the_line(
    api: Any, data: bytes, campaign: str, status: int, code: int, reason: str
) -> None:
    answer = upload(api, campaign, data)
    assert (answer.status_code, answer.json()["code"]) == (status, code)
    assert answer.headers["X-Pisano-Mock-Reason"].startswith(reason)
    entry = journal(api)[-1]
    assert (entry["trigger"], entry["code"], entry["status"]) == ("csv", code, status)
    assert answer.headers["X-Pisano-Mock-Request-Id"] == str(entry["id"])
    assert api.request("GET", "/__mock/sharings").json()["sharings"] == []


def test_ten_megabytes_in_one_cell_within_the_body_bound(server_with: Any) -> None:
    data = b"email,note\na@example.com," + b"y" * 10_000_000 + b"\n"
    with server_with(bounds=Bounds(max_body_bytes=11_000_000)) as (api, _):
        answer = upload(api, EMAIL_CAMPAIGN, data)
        assert (answer.status_code, answer.json()["code"]) == (400, 13037)
        assert answer.headers["X-Pisano-Mock-Reason"] == "line 2: longer than 1048576 characters"


def test_a_body_over_max_body_bytes_is_13000_413(server_with: Any) -> None:
    with server_with(bounds=Bounds(max_body_bytes=1000)) as (api, _):
        answer = upload(api, EMAIL_CAMPAIGN, b"email\n" + b"a@example.com\n" * 100)
        assert (answer.status_code, answer.json()["code"]) == (413, 13000)
        assert journal(api)[-1]["status"] == 413


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_other_content_types_are_415(api: Any, content_type: str) -> None:
    answer = upload(api, EMAIL_CAMPAIGN, b"email\na@example.com\n", {"Content-Type": content_type})
    assert answer.status_code == 415
    assert "text/csv or multipart/form-data" in answer.json()["reason"]


def test_a_form_upload_is_told_how_curl_sends_csv_not_json(api: Any) -> None:
    # curl -d @file sends a form Content-Type; the hint said to send JSON (new-user finding).
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    reason = upload(api, EMAIL_CAMPAIGN, b"email\na@example.com\n", form).json()["reason"]
    assert "-H 'Content-Type: text/csv' --data-binary @FILE" in reason
    assert "application/json" not in reason


def test_on_redis_the_upload_is_shared_and_journaled_alike(
    server_with: Any, redis_url: str
) -> None:
    with server_with(storage=redis_url) as (api, _):
        answer = upload(api, SMS_CAMPAIGN, b"phone_number;name\n5321234567;A\n")
        assert answer.status_code == 200, answer.text
        (entry,) = journal(api)
        assert (entry["trigger"], entry["status"]) == ("csv", 200)
        (sharing,) = api.request("GET", "/__mock/sharings").json()["sharings"]
        assert (sharing["trigger"], sharing["request_id"]) == ("csv", entry["id"])
        refused = upload(api, SMS_CAMPAIGN, b"phone_number\n12\n")
        assert refused.json()["code"] == 13028
        assert journal(api)[-1]["reason"] == 'line 2: phone_number "12" is not a phone number'
