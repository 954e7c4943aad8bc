"""Steps every sharing endpoint takes in the same order (SPEC 1.4 rows 5-10, 1.6's first)."""

from __future__ import annotations

from flask import g, request

from ..auth import authenticate
from ..bodies import BodyLimits, Params, parse_params
from ..catalogue import PisanoError
from ..context import current_emulator
from ..lifecycle import request_body
from ..state import Account, Campaign, LinkChannel


def authenticated_account() -> Account:
    """Rows 5-7: the account behind the Authorization header."""
    emulator = current_emulator()
    forms = emulator.settings.fidelity.auth_forms
    return authenticate(emulator.store, request.headers.get("Authorization"), forms)


def campaign_of(account: Account, campaign_id: str, channel: str = "email") -> Campaign:
    """Rows 8-9: the campaign, if it exists among the channel's (Pisano finds campaigns per
    channel type, SPEC 1.5), is the account's, and has a flow."""
    campaign = current_emulator().store.campaign(campaign_id)
    if campaign is None:
        raise PisanoError(13002, f"campaign_id: {campaign_id!r} is unknown")
    if campaign.channel != channel:
        raise PisanoError(
            13002, f"campaign_id: {campaign_id!r} is an {campaign.channel} campaign, not {channel}"
        )
    if campaign.account != account.name:
        raise PisanoError(
            13013, f"campaign_id: {campaign_id!r} belongs to another account than {account.name!r}"
        )
    if not campaign.flow:
        raise PisanoError(13005, f"campaign_id: {campaign_id!r} has no flow attached")
    return campaign


def link_channel_of(account: Account, channel_id: str) -> LinkChannel:
    """SPEC 1.6 after rows 1-7: the link channel exists (13035) and is the account's (13013)."""
    channel = current_emulator().store.link_channel(channel_id)
    if channel is None:
        raise PisanoError(13035, f"link_channel_id: {channel_id!r} is unknown")
    if channel.account != account.name:
        raise PisanoError(
            13013,
            f"link_channel_id: {channel_id!r} belongs to another account than {account.name!r}",
        )
    return channel


def request_params() -> Params:
    """Row 10: the body as params. A form's params go to the journal (it shows them, not the
    form's text); a JSON body's bytes already say what its params are, and are held as they are."""
    settings = current_emulator().settings
    params = parse_params(
        request_body(),
        request.content_type,
        settings.fidelity.form_bodies,
        BodyLimits.of(settings.bounds),
    )
    state = g._get_current_object()  # type: ignore[attr-defined]  # once: each proxy use costs
    if params.from_form:  # a JSON body is not written out again: on a big one that was 1.3 ms
        state.journal["body"] = params.data
    state.warnings.extend(params.warnings)
    return params


def with_hint(error: PisanoError, params: Params) -> PisanoError:
    """`error` with how the body was probably meant to be sent, when the body suggests it."""
    if not params.hint:
        return error
    return PisanoError(error.code, f"{error.reason}; {params.hint}")
