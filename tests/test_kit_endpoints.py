"""The kit on the SMS and link endpoints (SPEC 1.5, 1.6, 3): keys, what must arrive, and what the
emulator shows of a link that the kit reads back."""

from __future__ import annotations

from contracts.checks import link_responses

LINK_CHANNEL = "00000000-0000-4000-8000-000000000701"


def test_a_link_sharing_shows_the_link_generate_link_answered(api, pisano_mock):
    # Before: /__mock/sharings typed a link channel's responses with no customer schema (it looked
    # the id up among campaigns only), so an `option` question came back as `body`.
    answer = api.post(
        {"customer": {"external_id": "L-1"}, "built_in_responses": {"Channel": "web"}},
        path=f"/external/v1/link_sharings/{LINK_CHANNEL}/generate_link",
    )
    assert answer.status_code == 200, answer.text
    (sharing,) = pisano_mock.sharings()
    assert link_responses(sharing["link"]) == [{"question_key": "Channel", "option_key": "web"}]
    assert sharing["link"] == answer.json()["link"]
