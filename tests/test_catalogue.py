"""Every row of the seed's error table, forced through X-Pisano-Mock-Error on a live server.

SEED_ROWS is copied from Pisano's page by hand, NOT imported from mockserver.catalogue, so a typo in
the code's table fails here; and it is held against the page's own error table, shipped verbatim as
fixtures/seed-error-table.txt (the "API Response Codes" part of Pisano's Email Sharing API page).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mockserver.catalogue import CATALOGUE

# (HTTP status, status word, code, message) exactly as the seed prints them, typos included.
SEED_ROWS = [
    (400, "bad_request", 13000, "An error occured"),
    (401, "unauthorized", 13001, "Wrong authentication token"),
    (404, "NOT_FOUND", 13002, "Requested resource not found!"),
    (404, "not_found", 13003, "Reset Token not found"),
    (404, "not_found", 13005, "This node, nor any of their parent has any flow"),
    (403, "forbidden", 13007, "It's not allowed to update Pisano node"),
    (400, "bad_request", 13008, "Record could not be deleted"),
    (400, "bad_request", 13009, "Updated question already has responses"),
    (404, "not_found", 13010, "User not found"),
    (401, "unauthorized", 13011, "User is inactive"),
    (409, "conflict", 13012, "Password does not match the old password"),
    (403, "forbidden", 13013, "Permission denied"),
    (400, "bad_request", 13014, "Wrong activation code"),
    (400, "bad_request", 13015, "Required field not present in params!"),
    (404, "not_found", 13016, "Token not found"),
    (400, "bad_request", 13017, "Duplicate value"),
    (404, "not_found", 13018, "Response not found"),
    (404, "not_found", 13019, "Activation token not found"),
    (400, "bad_request", 13020, "You selected a reserved node type. Please choose another one."),
    (400, "bad_request", 13024, "Multiple responses given for a non-multiple choice question"),
    (400, "bad_request", 13026, "Captcha is invalid"),
    (400, "bad_request", 13028, "Invalid parameters"),
    (400, "bad_request", 13029, "Invalid security hash"),
    (400, "bad_request", 13030, "Invalid authentication token"),
    (400, "bad_request", 13031, "Invalid proxy server parameters"),
    (409, "conflict", 13032, "Wrong credentials"),
    (400, "bad_request", 13033, "Invalid SDK credentials"),
    (400, "bad_request", 13034, "Invalid Flow"),
    (404, "not_found", 13035, "Node not found"),
    (403, "forbidden", 13036, "Account locked"),
    (400, "bad_request", 13037, "Malformatted CSV"),
    (400, "bad_request", 13038, "Required customer identitiy keys not present in params!"),
]

SEED_TABLE = Path(__file__).resolve().parents[1] / "fixtures" / "seed-error-table.txt"


@pytest.mark.parametrize(("http_status", "status", "code", "message"), SEED_ROWS)
def test_forced_entry_is_byte_exact(api, http_status, status, code, message):
    response = api.post({"emails": ["a@example.com"]}, headers={"X-Pisano-Mock-Error": str(code)})
    expected = f'{{"status":"{status}","code":{code},"message":"{message}"}}'
    assert response.status_code == http_status
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == expected.encode()


def test_catalogue_has_exactly_the_seed_rows():
    assert len(SEED_ROWS) == 32
    assert {code for _, _, code, _ in SEED_ROWS} == set(CATALOGUE)


def test_seed_rows_match_pisanos_page():
    cells = [c.strip() for c in re.split(r"\|", SEED_TABLE.read_text(encoding="utf-8"))]
    cells = [c for c in cells if c]
    rows = []
    for index, cell in enumerate(cells):
        if re.fullmatch(r"130\d\d", cell):
            rows.append((int(cells[index - 2]), cells[index - 1], int(cell), cells[index + 1]))
    assert rows == SEED_ROWS


def test_forced_code_outside_the_catalogue_is_13028(api):
    response = api.post({"emails": ["a@example.com"]}, headers={"X-Pisano-Mock-Error": "13004"})
    assert response.status_code == 400
    assert response.json()["code"] == 13028
    assert "13004" in response.headers["X-Pisano-Mock-Reason"]


def test_forcing_comes_before_authentication_and_is_journaled(api, pisano_mock):
    response = api.post(
        {"emails": []}, headers={"Authorization": "Basic nope", "X-Pisano-Mock-Error": "13036"}
    )
    assert response.json()["code"] == 13036
    [entry] = pisano_mock.requests()
    assert (entry["status"], entry["code"]) == (403, 13036)
    assert pisano_mock.sharings() == []
