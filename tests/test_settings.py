"""A config file over the default fixture (SPEC 2.1); config errors as one line naming the key."""

from __future__ import annotations

import pytest

from mockserver.settings import PISANO_TIERS, ConfigError, load_fixture, load_settings

DEFAULT_TOKENS = {
    "test-token",
    "inactive-user-token",
    "locked-account-token",
    "other-account-token",
}


def load(tmp_path, text: str):
    path = tmp_path / "my.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_a_file_of_settings_only_keeps_the_default_fixture(tmp_path):
    settings = load(tmp_path, '[throttle]\nprofile = "rich"\n')
    assert set(settings.fixture["tokens"]) == DEFAULT_TOKENS
    assert "735c19a7-ee54-4b03-a84a-93dfe2a94a56" in settings.fixture["campaigns"]
    assert settings.fixture["accounts"]["acme"]["customer_schema"]["NPS"] == "integer"


def test_a_settings_table_is_merged_key_by_key(tmp_path):
    settings = load(tmp_path, '[throttle]\nprofile = "rich"\n[bounds]\nmax_json_depth = 8\n')
    assert settings.throttle.profile == "rich"
    assert settings.throttle.tiers == PISANO_TIERS  # not given: the default's
    assert settings.throttle.key == "token"
    assert settings.bounds.max_json_depth == 8
    assert settings.bounds.max_form_depth == 100


def test_an_entity_table_replaces_the_defaults(tmp_path):
    settings = load(
        tmp_path,
        '[campaigns.c-1]\naccount = "acme"\n',
    )
    assert list(settings.fixture["campaigns"]) == ["c-1"]
    assert set(settings.fixture["tokens"]) == DEFAULT_TOKENS  # not given: the default's


def test_a_whole_fixture_of_ones_own(tmp_path):
    settings = load(
        tmp_path,
        '[accounts.initech]\n[tokens.tok]\naccount = "initech"\n'
        '[campaigns.c-1]\naccount = "initech"\n',
    )
    assert settings.fixture == {
        "accounts": {"initech": {"locked": False, "customer_schema": {}}},
        "tokens": {"tok": {"account": "initech", "active": True}},
        "link_channels": {},  # the default's named acme, which this file removed
        "campaigns": {
            "c-1": {
                "account": "initech",
                "channel": "email",
                "subject": None,  # left to the provider (SPEC 1.7)
                "flow": True,
                "sender": "surveys@pisano-mock.test",
                "text_template": None,
                "html_template": None,
                "provider": {"type": "outbox"},
            }
        },
    }


def test_no_file_is_the_default_fixture():
    settings = load_settings()
    assert set(settings.fixture["tokens"]) == DEFAULT_TOKENS
    assert settings.throttle.tiers == PISANO_TIERS


# (file text, the dotted key the one-line error must name, a word of what is expected)
BAD_CONFIGS = [
    ('[throttle]\ntiers = "20 per 5s"\n', "throttle.tiers", "seconds"),
    ('[[throttle.overrides]]\ncidr = "10.0.0.300/8"\n', "throttle.overrides[0].cidr", "network"),
    (
        '[[throttle.overrides]]\ncidr = "10.0.0.0/8"\ntiers = "lots"\n',
        "throttle.overrides[0].tiers",
        "seconds",
    ),
    ('[tokens.abc]\naccount = "nobody"\n', "tokens.abc.account", "accounts"),
    ('[campaigns.c-1]\naccount = "nobody"\n', "campaigns.c-1.account", "accounts"),
    ("[accounts.initech]\n", "tokens.test-token.account", "[tokens]"),
    ('[tokens.t]\naccount = "acme"\ncolour = 1\n', "tokens.t.colour", "account, active"),
    ("[throtle]\nenabled = false\n", "throtle", "throttle"),
    ('[throttle]\nprofile = "fast"\n', "throttle.profile", "rack_attack"),
    ('[fidelity]\nauth_forms = ["token", "basic"]\n', "fidelity.auth_forms[1]", "bearer"),
    ("[bounds]\nmax_json_depth = 0\n", "bounds.max_json_depth", "1"),
    ("bounds = 3\n", "bounds", "table"),
    ('[throttle]\nenabled = "yes"\n', "throttle.enabled", "boolean"),
    ("[tokens.t]\n", "tokens.t.account", "required"),
]


@pytest.mark.parametrize(("text", "key", "expected"), BAD_CONFIGS)
def test_a_config_error_is_one_line_naming_the_file_and_key(tmp_path, text, key, expected):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'my.toml'}: {key}: "), message
    assert expected in message
    assert "{" not in message  # no raw dict of marshmallow's messages


def test_a_toml_syntax_error_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"my\.toml: .*line 1"):
        load(tmp_path, "[throttle\n")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("nope.toml", None, "cannot be read: No such file"),
        (".", None, "cannot be read"),
        ("latin1.toml", b"[throttle]\nprofile = '\xe9'\n", "not TOML: 'utf-8' codec"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(raised.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("scale", [-3.0, float("nan"), float("inf"), 1e7])
def test_a_time_scale_outside_the_clocks_rates_is_refused(scale):
    with pytest.raises(ConfigError, match="--time-scale"):
        load_settings(time_scale=scale)


@pytest.mark.parametrize("scale", [0.0, 1.0, 100.0])
def test_a_time_scale_the_admin_api_accepts_is_accepted(scale):
    assert load_settings(time_scale=scale).time_scale == scale


def test_a_provider_names_what_its_type_needs(tmp_path):
    needs_url = r"campaigns\.c-1\.provider\.url: type 'http' needs 'url'"
    with pytest.raises(ConfigError, match=needs_url):
        load(tmp_path, '[campaigns.c-1]\naccount = "acme"\nprovider = { type = "http" }\n')


def test_delivery_and_links_are_settings_tables(tmp_path):
    settings = load(
        tmp_path, '[delivery]\nmax_attempts = 2\n[links]\npublic_url = "http://x.test"\n'
    )
    assert settings.delivery.max_attempts == 2
    assert settings.delivery.backoff_seconds == 1.0  # not given: the default's
    assert settings.links.public_url == "http://x.test"


@pytest.mark.parametrize(
    ("campaign", "refusal"),
    [
        ({"subject": "Hi\r\nBcc: evil@example.com"}, r"subject: holds a line break"),
        ({"from": ""}, r'from: "" is not one email address'),
        ({"from": "not an address"}, r'from: "not an address" is not one email address'),
        ({"from": "a@b.com, c@d.com"}, r'from: "a@b.com, c@d.com" is not one email address'),
        (
            {"provider": {"type": "http", "url": "http://x.test", "headers": {"X-A": "b\nc"}}},
            r"headers\.X-A: holds a line break",
        ),
        (
            {"provider": {"type": "http", "url": "http://x.test", "headers": {"X A": "b"}}},
            r'"X A" is not an HTTP header name',
        ),
    ],
)
def test_a_campaigns_headers_are_checked_when_loaded(campaign, refusal):
    # Attack on issue 10: these were accepted, then broke the .eml or a delivery much later.
    with pytest.raises(ConfigError, match=refusal):
        load_fixture({"campaigns": {"c": {"account": "acme", **campaign}}})


def test_a_sender_with_a_display_name_is_one_address():
    loaded = load_fixture({"campaigns": {"c": {"account": "acme", "from": "Surveys <s@x.test>"}}})
    assert loaded["campaigns"]["c"]["sender"] == "Surveys <s@x.test>"
