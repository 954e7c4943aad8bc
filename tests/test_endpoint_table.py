"""The table of sharing endpoints (api/sharing.py): what every row shares, and share() for callers
that resolved an account and a campaign themselves (CSV uploads, workflows: SPEC 1.8)."""

from __future__ import annotations

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from contracts.pytest_plugin import DEFAULT_CAMPAIGN
from mockserver.api.sharing import BY_CHANNEL, ENDPOINTS, share
from mockserver.app import create_app
from mockserver.catalogue import PisanoError
from mockserver.context import current_emulator
from mockserver.rules import RuleContext, normalised_number
from mockserver.schemas import LinkSharingSchema, SmsSharingSchema
from mockserver.settings import CHANNELS, load_settings
from mockserver.state import Recipient, SharingBatch
from mockserver.storage import open_parts
from mockserver.validation import link_sharing_loader, reference_load, sms_sharing_loader
from tests.conftest import SHARINGS_PATH

SMS_CAMPAIGN = "00000000-0000-4000-8000-000000000501"
LINK_CHANNEL = "00000000-0000-4000-8000-000000000701"
SMS_PATH = f"/v1/sms_campaigns/{SMS_CAMPAIGN}/sms_sharings"
LINK_PATH = f"/external/v1/link_sharings/{LINK_CHANNEL}/generate_link"
# One accepted request per endpoint: (path, body).
ACCEPTED = {
    "email": (SHARINGS_PATH, {"emails": ["a@example.com"]}),
    "sms": (SMS_PATH, {"phone_numbers": ["5321112233"]}),
    "link": (LINK_PATH, {"customer": {"email": "a@example.com"}}),
}
WINDOW_START = 1_000_000_000  # a multiple of 625: every tier's window starts here (SPEC 1.3)


def test_every_campaign_channel_has_its_endpoint():
    assert set(CHANNELS) <= set(BY_CHANNEL)
    assert [endpoint.channel for endpoint in ENDPOINTS] == ["email", "sms", "link"]


def test_every_row_is_routed_for_post_only():
    rules = {rule.rule: rule.methods for rule in create_app().url_map.iter_rules()}
    for endpoint in ENDPOINTS:
        assert rules[endpoint.rule] == {"POST"}


def test_email_sms_and_link_requests_of_one_token_count_in_one_bucket(api, pisano_mock):
    pisano_mock.set_clock(WINDOW_START + 1)  # frozen: the 5 s window cannot end mid-test
    channels = ["email", "sms", "link"] * 7  # 21 requests in one 5 s window: 20 allowed
    answers = [api.post(ACCEPTED[c][1], path=ACCEPTED[c][0]).status_code for c in channels]
    assert answers == [200] * 20 + [429]
    for channel in ("email", "sms"):  # every endpoint is refused now, by the same bucket
        path, body = ACCEPTED[channel]
        assert api.post(body, path=path).content == b"Retry later\n"
    [counter] = [c for c in pisano_mock.throttle()["counters"] if c["tier"] == "20/5 seconds"]
    assert counter["count"] > 20


@pytest.mark.parametrize("channel", ["email", "sms", "link"])
def test_each_endpoint_is_journaled(api, pisano_mock, channel):
    path, body = ACCEPTED[channel]
    accepted = api.post(body, path=path)
    refused = api.post({"nothing": 1}, path=path)
    ok, bad = pisano_mock.requests()
    assert (ok["path"], ok["status"], ok["code"], ok["body"]) == (path, 200, None, body)
    assert ok["id"] == int(accepted.headers["X-Pisano-Mock-Request-Id"])
    assert (bad["status"], bad["code"]) == (400, 13015)
    assert bad["reason"] == refused.headers["X-Pisano-Mock-Reason"]
    assert ok["headers"]["Authorization"] == "Token token=tes****ken"  # masked (SPEC 2.6)


def test_metrics_label_each_route_by_its_template(api, pisano_mock):
    for path, body in ACCEPTED.values():
        api.post(body, path=path)
    api.post({}, path=f"/external/v1/link_sharings/{'x' * 40}/generate_link")
    scraped = requests.get(pisano_mock.base_url + "/__mock/metrics", timeout=10).text
    for endpoint in ENDPOINTS:
        template = endpoint.rule.replace("<", "{").replace(">", "}")
        assert f'endpoint="{template}"' in scraped
    assert SMS_CAMPAIGN not in scraped and LINK_CHANNEL not in scraped and "x" * 40 not in scraped


def test_the_openapi_document_has_a_row_per_endpoint(pisano_mock):
    document = pisano_mock.call("GET", "/openapi.json")
    for endpoint in ENDPOINTS:
        path = endpoint.rule.replace("<", "{").replace(">", "}")
        operation = document["paths"][path]["post"]
        [parameter, _] = operation["parameters"]
        assert parameter["name"] == endpoint.id_name
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith("/" + endpoint.openapi.body)
        assert answer.endswith("/" + endpoint.openapi.answer)
        assert set(endpoint.openapi.schemas) <= set(document["components"]["schemas"])
    sms = document["components"]["schemas"]["SmsSharing"]
    assert sms["required"] == ["phone_numbers"]
    assert document["components"]["schemas"]["LinkSharing"]["required"] == ["customer"]


# -- share(): the pipeline without a request ------------------------------------------------------


@pytest.fixture
def app_context():
    app = create_app()
    with app.app_context():
        yield current_emulator()


def _campaign_and_account(emulator, campaign_id):
    campaign = emulator.store.campaign(campaign_id)
    return emulator.store.account(campaign.account), campaign


def test_share_records_sharings_and_messages_with_its_trigger(app_context):
    emulator = app_context
    emulator.clock.set(1_700_000_000)
    account, campaign = _campaign_and_account(emulator, DEFAULT_CAMPAIGN)
    body = {
        "emails": ["a@example.com", "b@example.com"],
        "custom_attributes": {"a@example.com": {"name": "Ada"}},
    }
    accepted = share(account, campaign, body, trigger="csv")
    first = accepted.payload["sharings"]["a@example.com"]
    assert accepted.payload == {
        "status": "ok",
        "campaign_id": DEFAULT_CAMPAIGN,
        "count": 2,
        "sharings": {"a@example.com": first, "b@example.com": first + 1},
    }
    assert accepted.response().status_code == 200
    sharings = emulator.store.sharings(0, 10, None, None).items
    assert [(s["trigger"], s["request_id"], s["accepted_at"]) for s in sharings] == [
        ("csv", 0, 1_700_000_000)
    ] * 2
    assert sharings[0]["custom_attributes"] == {"name": "Ada"}
    assert emulator.outbox.statuses().get("captured") == 2


def test_share_takes_the_campaigns_channel_and_its_request_id_when_given(app_context):
    emulator = app_context
    account, campaign = _campaign_and_account(emulator, SMS_CAMPAIGN)
    accepted = share(account, campaign, {"phone_numbers": ["5321112233"]}, "workflow", request_id=9)
    [sharing] = emulator.store.sharings(0, 10, None, None).items
    assert (sharing["channel"], sharing["phone_number"], sharing["request_id"]) == (
        "sms",
        "5321112233",
        9,
    )
    assert accepted.recipients == 1 and sharing["trigger"] == "workflow"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 13015),
        ({"emails": ["a@example.com", "A@example.com"]}, 13017),
        ({"emails": ["nope"]}, 13028),
        ({"phone_numbers": ["5321112233"]}, 13015),  # an email campaign takes emails
    ],
)
def test_share_refuses_as_the_endpoint_would_and_records_nothing(app_context, body, code):
    emulator = app_context
    account, campaign = _campaign_and_account(emulator, DEFAULT_CAMPAIGN)
    with pytest.raises(PisanoError) as refused:
        share(account, campaign, body, trigger="csv")
    assert refused.value.code == code
    assert emulator.store.sharings(0, 10, None, None).items == []


# -- the fast path and marshmallow agree on the new bodies (as test_validation.py for email) ----

CONTEXT = RuleContext(
    customer_schema=load_settings().fixture["accounts"]["acme"]["customer_schema"]
)
_NUMBERS = st.one_of(
    st.sampled_from(["5321112233", "+90 (532) 111-22-33", "905321112233", "", "12a4567", "1" * 16]),
    st.from_regex(r"\+?[0-9 ().-]{5,18}", fullmatch=True),
    st.integers(),
)
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.just([]))
_OBJECTS = st.dictionaries(
    st.sampled_from(["5321112233", "x", "email", "NPS", "Tags"]),
    _VALUES | st.dictionaries(st.text(max_size=3), _VALUES, max_size=2),
    max_size=3,
)


def _loaded(loader, data):
    try:
        loader.load(data, CONTEXT)
    except PisanoError as error:
        return error.code
    return 0


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "phone_numbers": st.lists(_NUMBERS, max_size=3) | _VALUES,
            "custom_attributes": _OBJECTS | _VALUES,
            "transactional_data": _OBJECTS | _VALUES,
            "built_in_responses": _OBJECTS | _VALUES,
        },
    )
)
def test_sms_fast_path_agrees_with_marshmallow(data):
    assert _loaded(sms_sharing_loader, data) == reference_load(SmsSharingSchema, data, CONTEXT)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "customer": _OBJECTS
            | _VALUES
            | st.fixed_dictionaries({}, optional={"email": _VALUES, "name": _VALUES}),
            "transactional_data": _OBJECTS | _VALUES,
            "built_in_responses": _OBJECTS | _VALUES,
            "options": _VALUES,
        },
    )
)
def test_link_fast_path_agrees_with_marshmallow(data):
    assert _loaded(link_sharing_loader, data) == reference_load(LinkSharingSchema, data, CONTEXT)


# -- every channel's sharings read back alike from memory and Redis -------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request):
    storage = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    return open_parts(load_settings(storage=storage)).store


def test_sms_and_link_batches_read_back_with_their_recipient_keys(store):
    numbers = ["+90 532 111 22 33", "5324445566"]
    sms = SharingBatch.of(
        SMS_CAMPAIGN, 3, 1.5, numbers, {"custom_attributes": {numbers[0]: {"name": "Ada"}}},
        channel="sms", trigger="csv",
    )  # fmt: skip
    customer = {"phone_number": "5327778899", "external_id": "7", "Tier": "Gold"}
    link = SharingBatch.of(
        LINK_CHANNEL, 4, 2.5, [""], {"custom_attributes": {"": customer}}, channel="link"
    )
    first = store.record_sharings(sms, sms.nbytes)
    store.record_sharings(link, link.nbytes)
    ada, other, generated = store.sharings(0, 10, None, None).items
    assert (ada["id"], ada["phone_number"], ada["custom_attributes"]) == (
        first, numbers[0], {"name": "Ada"}
    )  # fmt: skip
    assert (ada["channel"], ada["trigger"], "email" in ada) == ("sms", "csv", False)
    assert (other["phone_number"], other["custom_attributes"]) == (numbers[1], {})
    assert generated["email"] is None and generated["channel"] == "link"
    assert generated["customer"] == {"phone_number": "5327778899", "external_id": "7"}
    assert generated["custom_attributes"] == customer and generated["trigger"] == "api"
    wanted = Recipient("phone_number", "905321112233", normalised_number)
    assert store.sharings(0, 10, None, wanted).items == [ada]
    assert store.sharings(0, 10, None, "5324445566").items == []  # an email filter
