"""Settings: the only reader of config files. Everything else receives a `Settings` value.

A config file (TOML) and the `/__mock/fixtures` payload (JSON) share one structure, validated here
by marshmallow schemas so that a typo in a config file is a clear error at start-up.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

AUTH_FORMS = ("token", "token_space", "token_quoted", "bearer", "bare")
SCHEMA_TYPES = ("boolean", "integer", "float", "string", "list", "date", "datetime")
THROTTLE_PROFILES = ("rack_attack", "rich")
THROTTLE_KEYS = ("token", "ip", "token_and_ip")
PISANO_TIERS = "20/5 seconds; 40/25 seconds; 80/125 seconds; 160/625 seconds"


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


class JsonBoolean(fields.Boolean):
    """`true` or `false` only: the fixtures document says boolean, so `0` or `"yes"` is refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class AccountSchema(Schema):
    class Meta:
        unknown = RAISE

    locked = JsonBoolean(load_default=False)
    customer_schema = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.OneOf(SCHEMA_TYPES)),
        load_default=dict,
    )


class TokenSchema(Schema):
    class Meta:
        unknown = RAISE

    account = fields.String(required=True)
    active = JsonBoolean(load_default=True)


class CampaignSchema(Schema):
    class Meta:
        unknown = RAISE

    account = fields.String(required=True)
    subject = fields.String(load_default="")
    flow = JsonBoolean(load_default=True)


class FixtureSchema(Schema):
    """Accounts, tokens and campaigns: the config file's data part and `POST /__mock/fixtures`."""

    class Meta:
        unknown = EXCLUDE

    accounts = fields.Dict(keys=fields.String(), values=fields.Nested(AccountSchema))
    tokens = fields.Dict(keys=fields.String(), values=fields.Nested(TokenSchema))
    campaigns = fields.Dict(keys=fields.String(), values=fields.Nested(CampaignSchema))


class FidelitySchema(Schema):
    class Meta:
        unknown = RAISE

    strict_batch_limit = fields.Boolean(load_default=Fidelity.strict_batch_limit)
    batch_limit = fields.Integer(load_default=Fidelity.batch_limit, validate=validate.Range(min=1))
    auth_forms = fields.List(
        fields.String(validate=validate.OneOf(AUTH_FORMS)), load_default=list(AUTH_FORMS)
    )
    form_bodies = fields.Boolean(load_default=Fidelity.form_bodies)


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


class AccessSchema(Schema):
    class Meta:
        unknown = RAISE

    admin_token = fields.String(load_default=None, allow_none=True)
    allowed_hosts = fields.List(fields.String(), load_default=list)
    insecure_admin = fields.Boolean(load_default=False)
    mask_headers = fields.List(fields.String(), load_default=lambda: list(Access.mask_headers))


class OverrideSchema(Schema):
    class Meta:
        unknown = RAISE

    cidr = fields.String(required=True)
    tiers = fields.String(load_default=None, allow_none=True)
    enabled = fields.Boolean(load_default=True)


class ThrottleSchema(Schema):
    class Meta:
        unknown = RAISE

    enabled = fields.Boolean(load_default=True)
    profile = fields.String(
        load_default=ThrottleSettings.profile, validate=validate.OneOf(THROTTLE_PROFILES)
    )
    tiers = fields.String(load_default=ThrottleSettings.tiers)
    key = fields.String(load_default=ThrottleSettings.key, validate=validate.OneOf(THROTTLE_KEYS))
    overrides = fields.List(fields.Nested(OverrideSchema), load_default=list)


class ConfigSchema(FixtureSchema):
    class Meta:
        unknown = RAISE

    fidelity = fields.Nested(FidelitySchema, load_default=lambda: FidelitySchema().load({}))
    bounds = fields.Nested(BoundsSchema, load_default=lambda: BoundsSchema().load({}))
    throttle = fields.Nested(ThrottleSchema, load_default=lambda: ThrottleSchema().load({}))
    access = fields.Nested(AccessSchema, load_default=lambda: AccessSchema().load({}))


@dataclass(frozen=True)
class Settings:
    """Everything `create_app` needs: fidelity choices, store bounds, throttle, initial fixture."""

    fidelity: Fidelity = field(default_factory=Fidelity)
    bounds: Bounds = field(default_factory=Bounds)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    access: Access = field(default_factory=Access)
    fixture: dict[str, Any] = field(default_factory=dict)
    time_scale: float = 1.0

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def default_config_path() -> Path:
    """The default fixture: inside the installed package, or `fixtures/` in a source checkout."""
    packaged = Path(__file__).with_name("default.toml")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[1] / "fixtures" / "default.toml"


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read a TOML config file (the default fixture when `path` is None) into `Settings`."""
    config_path = Path(path) if path is not None else default_config_path()
    try:
        document = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{config_path}: {error}") from error
    return settings_from_document(document, source=str(config_path)).with_changes(**overrides)


def settings_from_document(document: dict[str, Any], source: str = "config") -> Settings:
    try:
        loaded = ConfigSchema().load(document)
    except ValidationError as error:
        raise ConfigError(f"{source}: {error.messages}") from error
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
        fixture=load_fixture(document, source),
    )


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
        admin_token=admin_token or environ.get(ADMIN_TOKEN_VARIABLE) or access.admin_token,
        allowed_hosts=(*access.allowed_hosts, *allowed_hosts),
        insecure_admin=insecure_admin or access.insecure_admin,
    )


def load_fixture(document: dict[str, Any], source: str = "fixtures") -> dict[str, Any]:
    """Validate the accounts/tokens/campaigns part of a document; raise ConfigError if off."""
    try:
        fixture = FixtureSchema().load(document)
    except ValidationError as error:
        raise ConfigError(f"{source}: {error.messages}") from error
    return {name: fixture.get(name, {}) for name in ("accounts", "tokens", "campaigns")}
