"""Settings: the only reader of config files. Everything else receives a `Settings` value.

A config file (TOML) and the `/__mock/fixtures` payload (JSON) share one structure, validated here
by marshmallow schemas so that a typo in a config file is a clear error at start-up.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from croniter import croniter
from limits import parse_many
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

AUTH_FORMS = ("token", "token_space", "token_quoted", "bearer", "bare")
SCHEMA_TYPES = ("boolean", "integer", "float", "string", "list", "date", "datetime", "option")
PROVIDER_TYPES = ("outbox", "smtp", "http")  # SPEC 1.7: where a campaign's messages go
# The providers that can carry each channel's messages: SMTP carries email only.
CHANNEL_PROVIDERS = {"email": PROVIDER_TYPES, "sms": ("outbox", "http")}
DEFAULT_SENDER = "surveys@pisano-mock.test"
THROTTLE_PROFILES = ("rack_attack", "rich")
THROTTLE_KEYS = ("token", "ip", "token_and_ip")
PISANO_TIERS = "20/5 seconds; 40/25 seconds; 80/125 seconds; 160/625 seconds"
# A config file's tables of entities replace the default fixture's; its other tables (settings)
# are merged into the default's key by key (SPEC 2.1).
ENTITY_TABLES = ("accounts", "tokens", "campaigns", "link_channels")
# (table, key, table it names): each entity's reference that must resolve within the fixture.
REFERENCES = (
    ("tokens", "account", "accounts"),
    ("campaigns", "account", "accounts"),
    ("link_channels", "account", "accounts"),
)
CHANNELS = ("email", "sms")  # a campaign's channel (SPEC 1.5); links have channels of their own
MAX_CLOCK_RATE = 1_000_000  # the admin API's bound on a clock rate (POST /__mock/clock)


class ConfigError(ValueError):
    """A config file or fixtures payload that does not fit the documented structure."""


@dataclass(frozen=True)
class Fidelity:
    strict_batch_limit: bool = False
    batch_limit: int = 5000
    auth_forms: tuple[str, ...] = AUTH_FORMS
    form_bodies: bool = True


@dataclass(frozen=True)
class Bounds:
    journal_max_entries: int = 10_000
    journal_max_bytes: int = 32 << 20
    sharings_max_recipients: int = 1_000_000
    sharings_max_bytes: int = 64 << 20
    max_body_bytes: int = 64 << 20  # a larger request body is refused with 13000
    max_json_depth: int = 64  # JSON nested deeper is refused with 13000 (SPEC 2.5)
    max_form_depth: int = 100  # form keys nested deeper (a[b][c]...) are 13000, as Rack's limit
    outbox_max_messages: int = 1_000_000  # SPEC 1.7: the oldest sent/failed/captured dropped
    outbox_max_bytes: int = 128 << 20


@dataclass(frozen=True)
class Delivery:
    """How messages leave (SPEC 1.7): off the request path, retried with backoff in real time."""

    max_attempts: int = 5
    backoff_seconds: float = 1.0  # the first retry's wait; each next one doubles it
    attempt_timeout_seconds: float = 10.0  # one SMTP transaction or HTTP POST, connect included
    senders: int = 4  # threads per process delivering messages


@dataclass(frozen=True)
class Links:
    """Survey links (SPEC 1.7): `<public_url>/s/<token>`; empty = the URL the emulator serves."""

    public_url: str = ""


@dataclass(frozen=True)
class Access:
    """Who may use the admin API, and what is never shown in clear (SPEC 2.6)."""

    admin_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    insecure_admin: bool = False
    mask_headers: tuple[str, ...] = ("Cookie", "X-Api-Key")


@dataclass(frozen=True)
class TierOverride:
    cidr: str
    tiers: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class ThrottleSettings:
    enabled: bool = True
    profile: str = "rack_attack"
    tiers: str = PISANO_TIERS
    key: str = "token"
    overrides: tuple[TierOverride, ...] = ()
    max_keys: int = 150_000  # keys whose counts are held: at most ~190 MiB (README Fidelity)


def check_cron(text: str) -> None:
    """Five cron fields (minute hour day month weekday), as croniter reads them."""
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValidationError(f'"{text}" is not a 5-field cron schedule, e.g. "0 9 * * 1-5"')


def check_tiers(text: str) -> None:
    """Tiers are `limits` strings; refused here so that a typo never reaches create_app."""
    try:
        parse_many(text)
    except ValueError:
        raise ValidationError(
            f'"{text}" is not a list of tiers; expected "N/P seconds" items separated by ";", '
            f'e.g. "{PISANO_TIERS}"'
        ) from None


def check_cidr(text: str) -> None:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValidationError(
            f'"{text}" is not a network; expected an IPv4 or IPv6 network such as "10.0.0.0/8"'
        ) from None


class StrictBoolean(fields.Boolean):
    """`true` or `false` only: marshmallow's Boolean also takes "yes", 1 or "off"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class AccountSchema(Schema):
    class Meta:
        unknown = RAISE

    locked = StrictBoolean(load_default=False)
    customer_schema = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.OneOf(SCHEMA_TYPES)),
        load_default=dict,
    )


class TokenSchema(Schema):
    class Meta:
        unknown = RAISE

    account = fields.String(required=True)
    active = StrictBoolean(load_default=True)


# Only parsed here (the syntax is the sandbox's too): a syntax error is named when the config or
# fixture is loaded, never first met by a request (messages.py renders).
_TEMPLATE_SYNTAX = jinja2.Environment()


def check_template(source: str | None) -> None:
    if source is None:
        return
    try:
        _TEMPLATE_SYNTAX.parse(source)
    except jinja2.TemplateSyntaxError as error:
        raise ValidationError(f"line {error.lineno}: {error.message}") from None


class CampaignSchema(Schema):
    class Meta:
        unknown = RAISE

    account = fields.String(required=True)
    channel = fields.String(load_default="email", validate=validate.OneOf(CHANNELS))
    subject = fields.String(load_default=None, allow_none=True)  # None: left to the provider
    flow = StrictBoolean(load_default=True)
    sender = fields.String(data_key="from", load_default=DEFAULT_SENDER)
    text_template = fields.String(load_default=None, allow_none=True, validate=check_template)
    html_template = fields.String(load_default=None, allow_none=True, validate=check_template)
    provider = fields.Nested(lambda: ProviderSchema(), load_default=lambda: {"type": "outbox"})

    @validates_schema
    def check_provider_channel(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind, channel = data["provider"]["type"], data["channel"]
        if kind not in CHANNEL_PROVIDERS[channel]:
            carriers = " or ".join(CHANNEL_PROVIDERS[channel])
            raise ValidationError(f"provider {kind!r} cannot carry channel {channel!r}: {carriers}")


class ProviderSchema(Schema):
    """A campaign's provider (SPEC 1.7): `type` names it; the other keys are its own."""

    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(PROVIDER_TYPES))
    host = fields.String()
    port = fields.Integer(validate=validate.Range(min=1, max=65535))
    starttls = StrictBoolean()
    username = fields.String()
    password = fields.String()
    url = fields.Url(require_tld=False, schemes={"http", "https"})
    headers = fields.Dict(keys=fields.String(), values=fields.String())

    @validates_schema
    def check_needed(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name in PROVIDER_NEEDS[data.get("type", "outbox")]:
            if name not in data:
                raise ValidationError(f"type {data['type']!r} needs {name!r}", name)


# What each provider type cannot do without (the rest have defaults: port 25, no STARTTLS).
PROVIDER_NEEDS: dict[str, tuple[str, ...]] = {"outbox": (), "smtp": ("host",), "http": ("url",)}


class LinkChannelSchema(Schema):
    class Meta:
        unknown = RAISE

    account = fields.String(required=True)


class WorkflowSchema(Schema):
    """A scheduled trigger (SPEC 1.8): `campaign` shares `source`'s rows at each `schedule` time."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1))
    campaign = fields.String(required=True)
    source = fields.String(required=True)  # a CSV file's path (relative: to the config file's)
    schedule = fields.String(required=True, validate=check_cron)  # 5 fields, UTC, emulator clock


class FixtureSchema(Schema):
    """Accounts, tokens and campaigns: the config file's data part and `POST /__mock/fixtures`."""

    class Meta:
        unknown = EXCLUDE

    accounts = fields.Dict(keys=fields.String(), values=fields.Nested(AccountSchema))
    tokens = fields.Dict(keys=fields.String(), values=fields.Nested(TokenSchema))
    campaigns = fields.Dict(keys=fields.String(), values=fields.Nested(CampaignSchema))
    link_channels = fields.Dict(keys=fields.String(), values=fields.Nested(LinkChannelSchema))


class FidelitySchema(Schema):
    class Meta:
        unknown = RAISE

    strict_batch_limit = StrictBoolean(load_default=Fidelity.strict_batch_limit)
    batch_limit = fields.Integer(load_default=Fidelity.batch_limit, validate=validate.Range(min=1))
    auth_forms = fields.List(
        fields.String(validate=validate.OneOf(AUTH_FORMS)), load_default=list(AUTH_FORMS)
    )
    form_bodies = StrictBoolean(load_default=Fidelity.form_bodies)


class BoundsSchema(Schema):
    class Meta:
        unknown = RAISE

    journal_max_entries = fields.Integer(
        load_default=Bounds.journal_max_entries, validate=validate.Range(min=1)
    )
    journal_max_bytes = fields.Integer(
        load_default=Bounds.journal_max_bytes, validate=validate.Range(min=1)
    )
    sharings_max_recipients = fields.Integer(
        load_default=Bounds.sharings_max_recipients, validate=validate.Range(min=1)
    )
    sharings_max_bytes = fields.Integer(
        load_default=Bounds.sharings_max_bytes, validate=validate.Range(min=1)
    )
    max_body_bytes = fields.Integer(
        load_default=Bounds.max_body_bytes, validate=validate.Range(min=1)
    )
    max_json_depth = fields.Integer(
        load_default=Bounds.max_json_depth, validate=validate.Range(min=1, max=1000)
    )
    max_form_depth = fields.Integer(
        load_default=Bounds.max_form_depth, validate=validate.Range(min=1, max=1000)
    )
    outbox_max_messages = fields.Integer(
        load_default=Bounds.outbox_max_messages, validate=validate.Range(min=1)
    )
    outbox_max_bytes = fields.Integer(
        load_default=Bounds.outbox_max_bytes, validate=validate.Range(min=1)
    )


class DeliverySchema(Schema):
    class Meta:
        unknown = RAISE

    max_attempts = fields.Integer(
        load_default=Delivery.max_attempts, validate=validate.Range(min=1, max=100)
    )
    backoff_seconds = fields.Float(
        load_default=Delivery.backoff_seconds, validate=validate.Range(min=0, max=3600)
    )
    attempt_timeout_seconds = fields.Float(
        load_default=Delivery.attempt_timeout_seconds,
        validate=validate.Range(min=0.01, max=600, min_inclusive=True),
    )
    senders = fields.Integer(load_default=Delivery.senders, validate=validate.Range(min=1, max=64))


class LinksSchema(Schema):
    class Meta:
        unknown = RAISE

    public_url = fields.String(load_default="")


class AccessSchema(Schema):
    class Meta:
        unknown = RAISE

    admin_token = fields.String(load_default=None, allow_none=True)
    allowed_hosts = fields.List(fields.String(), load_default=list)
    insecure_admin = StrictBoolean(load_default=False)
    mask_headers = fields.List(fields.String(), load_default=lambda: list(Access.mask_headers))


class OverrideSchema(Schema):
    class Meta:
        unknown = RAISE

    cidr = fields.String(required=True, validate=check_cidr)
    tiers = fields.String(load_default=None, allow_none=True, validate=check_tiers)
    enabled = StrictBoolean(load_default=True)


class ThrottleSchema(Schema):
    class Meta:
        unknown = RAISE

    enabled = StrictBoolean(load_default=True)
    profile = fields.String(
        load_default=ThrottleSettings.profile, validate=validate.OneOf(THROTTLE_PROFILES)
    )
    tiers = fields.String(load_default=ThrottleSettings.tiers, validate=check_tiers)
    key = fields.String(load_default=ThrottleSettings.key, validate=validate.OneOf(THROTTLE_KEYS))
    overrides = fields.List(fields.Nested(OverrideSchema), load_default=list)
    max_keys = fields.Integer(
        load_default=ThrottleSettings.max_keys, validate=validate.Range(min=1)
    )


class ConfigSchema(FixtureSchema):
    class Meta:
        unknown = RAISE

    fidelity = fields.Nested(FidelitySchema, load_default=lambda: FidelitySchema().load({}))
    bounds = fields.Nested(BoundsSchema, load_default=lambda: BoundsSchema().load({}))
    throttle = fields.Nested(ThrottleSchema, load_default=lambda: ThrottleSchema().load({}))
    access = fields.Nested(AccessSchema, load_default=lambda: AccessSchema().load({}))
    delivery = fields.Nested(DeliverySchema, load_default=lambda: DeliverySchema().load({}))
    links = fields.Nested(LinksSchema, load_default=lambda: LinksSchema().load({}))
    workflows = fields.List(fields.Nested(WorkflowSchema), load_default=list)


@dataclass(frozen=True)
class Workflow:
    name: str
    campaign: str
    source: str
    schedule: str


@dataclass(frozen=True)
class Settings:
    """Everything `create_app` needs: fidelity choices, store bounds, throttle, initial fixture."""

    fidelity: Fidelity = field(default_factory=Fidelity)
    bounds: Bounds = field(default_factory=Bounds)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    access: Access = field(default_factory=Access)
    delivery: Delivery = field(default_factory=Delivery)
    links: Links = field(default_factory=Links)
    fixture: dict[str, Any] = field(default_factory=dict)
    workflows: tuple[Workflow, ...] = ()
    time_scale: float = 1.0
    storage: str = "memory://"  # SPEC 2.5: memory:// or redis://HOST:PORT/DB (see check_storage)

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def default_config_path() -> Path:
    """The default fixture: inside the installed package, or `fixtures/` in a source checkout."""
    packaged = Path(__file__).with_name("default.toml")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[1] / "fixtures" / "default.toml"


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """The default fixture, with the TOML file at `path` over it (SPEC 2.1), as `Settings`."""
    document = read_config(default_config_path())
    source = str(default_config_path())
    given: dict[str, Any] = {}
    if path is not None:
        source = str(path)
        given = read_config(Path(path))
        document = over_default(document, given)
    settings = settings_from_document(document, source, replaced=set(given) & set(ENTITY_TABLES))
    if "time_scale" in overrides:
        check_time_scale(overrides["time_scale"])
    if "storage" in overrides:
        check_storage(overrides["storage"])
    return settings.with_changes(**overrides)


def read_config(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: not TOML: {error}") from None


def over_default(default: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A table of entities replaces the default's; a table of settings is merged key by key."""
    merged = dict(default)
    for name, value in given.items():
        kept = default.get(name)
        if isinstance(kept, dict) and isinstance(value, dict) and name not in ENTITY_TABLES:
            value = {**kept, **value}
        merged[name] = value
    return merged


STORAGE_VARIABLE = "PISANO_MOCK_STORAGE"
STORAGE_SCHEMES = ("memory", "redis")


def check_storage(url: str) -> None:
    """`--storage` is `memory://` or `redis://HOST:PORT/DB` (SPEC 2.5), nothing else."""
    parsed = urlsplit(url)
    if parsed.scheme not in STORAGE_SCHEMES:
        raise ConfigError(
            f"--storage: {url!r} is not a storage; expected memory:// or redis://HOST:PORT/DB"
        )
    if parsed.scheme == "memory" and url != "memory://":
        raise ConfigError(f"--storage: {url!r}: memory storage takes nothing after memory://")
    if parsed.scheme == "redis":
        try:
            port = parsed.port
        except ValueError:
            port = -1
        path = parsed.path.lstrip("/")
        if not parsed.hostname or port == -1 or (path and not path.isdigit()):
            raise ConfigError(f"--storage: {url!r}: expected redis://HOST:PORT/DB")


MAX_WORKERS = 64  # a typo such as --workers 10000 must not fork a storm of processes


def check_workers(workers: int, storage: str) -> None:
    """1 to MAX_WORKERS workers; more than one needs a store the workers share (SPEC 2.5)."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers: {workers}: expected 1 to {MAX_WORKERS}")
    if workers > 1 and urlsplit(storage).scheme != "redis":
        raise ConfigError(
            f"--workers {workers} needs --storage redis://HOST:PORT/DB: with memory storage each "
            "worker would keep its own journal, sharings, faults, clock and throttle counters, "
            "and the throttle would let through N times Pisano's limits"
        )


def check_time_scale(rate: float) -> None:
    """`--time-scale` takes the rates `POST /__mock/clock` takes, no others."""
    if not (math.isfinite(rate) and 0 <= rate <= MAX_CLOCK_RATE):
        raise ConfigError(
            f"--time-scale: {rate:g} is not a clock rate; expected a number from 0 (frozen) "
            f"to {MAX_CLOCK_RATE}"
        )


def settings_from_document(
    document: dict[str, Any], source: str = "config", replaced: set[str] | None = None
) -> Settings:
    """Validate a whole document (the default fixture included) into `Settings`.

    `replaced` names the entity tables the file gave: a dangling reference in another table
    then comes from the default fixture, and the message says so."""
    try:
        loaded = ConfigSchema().load(document)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_errors(error.messages, ConfigSchema())}") from None
    fixture = {name: loaded.get(name, {}) for name in ENTITY_TABLES}
    drop_orphan_defaults(fixture, replaced or set())
    check_references(fixture, source, replaced or set())
    throttle = dict(loaded["throttle"])
    throttle["overrides"] = tuple(TierOverride(**o) for o in throttle["overrides"])
    fidelity = dict(loaded["fidelity"])
    fidelity["auth_forms"] = tuple(fidelity["auth_forms"])
    access = dict(loaded["access"])
    access["allowed_hosts"] = tuple(access["allowed_hosts"])
    access["mask_headers"] = tuple(access["mask_headers"])
    return Settings(
        fidelity=Fidelity(**fidelity),
        bounds=Bounds(**loaded["bounds"]),
        throttle=ThrottleSettings(**throttle),
        access=Access(**access),
        delivery=Delivery(**loaded["delivery"]),
        links=Links(**loaded["links"]),
        fixture=fixture,
        workflows=tuple(Workflow(**w) for w in loaded["workflows"]),
    )


# Default tables that follow the file's accounts: a file written before they existed, giving its
# own accounts, keeps loading (the default's entries of an account it removed just go).
FOLLOW_ACCOUNTS = ("link_channels",)


def drop_orphan_defaults(fixture: dict[str, Any], replaced: set[str]) -> None:
    for table in FOLLOW_ACCOUNTS:
        if table not in replaced:
            fixture[table] = {
                name: item
                for name, item in fixture[table].items()
                if item["account"] in fixture["accounts"]
            }


def check_references(fixture: dict[str, Any], source: str, replaced: set[str]) -> None:
    """Every account a token or campaign names exists (a file replacing `accounts` alone breaks
    the default tokens: say which table to give too)."""
    for table, key, target in REFERENCES:
        for name, entity in fixture[table].items():
            if entity[key] in fixture[target]:
                continue
            hint = ""
            if target in replaced and table not in replaced:
                hint = f" (this [{table}] is the default's: the file's [{target}] replaced the "
                hint += f"default's, so give [{table}] too)"
            raise ConfigError(
                f'{source}: {table}.{name}.{key}: no {key} "{entity[key]}"; expected one of '
                f"[{target}]: {', '.join(fixture[target]) or 'none'}{hint}"
            )


def describe_errors(messages: Any, schema: Schema) -> str:
    """marshmallow's nested messages as `dotted.key: what is expected`, one line."""
    return "; ".join(
        f"{format_path(path)}: {explain(message, path, schema)}"
        for path, message in flatten(messages)
    )


def flatten(messages: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    if isinstance(messages, dict):
        # A Dict field nests its values' messages under "value"; "_schema" is the table itself.
        return [
            pair
            for key, inner in messages.items()
            for pair in flatten(inner, path if key in ("value", "_schema") else (*path, key))
        ]
    if isinstance(messages, list):
        return [(path, str(m)) for m in messages] if messages else []
    return [(path, str(messages))]


def format_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(top level)"


# marshmallow's words → what the file should hold instead.
EXPLANATIONS = {
    "Unknown field.": "unknown key",
    "Invalid input type.": "expected a table",
    "Missing data for required field.": "required key is missing",
    "Not a valid boolean.": "expected a boolean (true or false)",
    "Not a valid integer.": "expected an integer",
    "Not a valid string.": "expected a string",
    "Not a valid list.": "expected a list",
    "Not a valid mapping type.": "expected a table",
}


def explain(message: str, path: tuple[Any, ...], schema: Schema) -> str:
    text = EXPLANATIONS.get(message, message.rstrip(".").replace("Must be ", "expected "))
    if message == "Unknown field.":
        keys = known_keys(schema, path[:-1])
        text += f"; expected one of {', '.join(keys)}" if keys else ""
    return text


def known_keys(schema: Schema, path: tuple[Any, ...]) -> list[str]:
    """The keys a table at `path` may hold, found by walking the schema."""
    parts = [part for part in path if not isinstance(part, int)]  # list indexes: same schema
    while parts:
        field_ = schema.fields.get(parts.pop(0))
        if isinstance(field_, fields.Dict):
            field_ = field_.value_field
            parts = parts[1:]  # the entity's name, e.g. the token in tokens.<token>.account
        nested = getattr(getattr(field_, "inner", field_), "schema", None)
        if nested is None:
            return []
        schema = nested
    return list(schema.fields)


ADMIN_TOKEN_VARIABLE = "PISANO_MOCK_ADMIN_TOKEN"


def with_access_options(
    access: Access,
    admin_token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    insecure_admin: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> Access:
    """The config file's access settings, overridden by the command line, then the environment."""
    return replace(
        access,
        admin_token=_given(admin_token)
        or _given(environ.get(ADMIN_TOKEN_VARIABLE))
        or access.admin_token,
        allowed_hosts=(*access.allowed_hosts, *allowed_hosts),
        insecure_admin=insecure_admin or access.insecure_admin,
    )


def _given(token: str | None) -> str | None:
    """A token that is only whitespace is no token: nobody meant to open the admin API to it."""
    return token if token and token.strip() else None


def load_fixture(document: dict[str, Any], source: str = "fixtures") -> dict[str, Any]:
    """Validate the accounts/tokens/campaigns part of a document; raise ConfigError if off."""
    try:
        fixture = FixtureSchema().load(document)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_errors(error.messages, FixtureSchema())}") from None
    return {name: fixture.get(name, {}) for name in ENTITY_TABLES}
