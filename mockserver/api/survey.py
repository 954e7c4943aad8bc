"""`GET /s/<token>` (SPEC 1.7): what the customer lands on from a survey link; `GET /l/<code>`: a
short link (an SMS's), redirected to its survey link.

A small HTML page naming the campaign, the recipient and the prefilled answers the link's
`responses` carries. It is the customer's browser, not a client of the API: neither journaled nor
throttled (lifecycle.is_survey_path). A token that is not ours, or names a sharing no longer held,
is Pisano's 13002; a `responses` that does not decode is a 400 page saying so, never a 500. A short
code is read back like a token (links.py), and answered the same way.
"""

from __future__ import annotations

from typing import Any

import jinja2
import orjson
from flask import Blueprint, Response, request

from ..catalogue import PisanoError
from ..context import current_emulator
from ..links import decode_responses, responses_query
from ..state import Store

blueprint = Blueprint("survey", __name__)

# Autoescaped: every value shown (an email, a name, a response) came from a client.
_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Survey — {{ campaign_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 44rem; color: #222; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #ccc;
padding: .3rem .5rem; text-align: left; } code { font-size: .95em; } .note { color: #555; }
.error { color: #a00; }
</style></head>
<body>
<h1>Survey</h1>
<p class="note">pisano-mock: what your customer lands on from this link.</p>
<dl>
<dt>Campaign</dt><dd><code>{{ campaign_id }}</code>{% if subject %} — {{ subject }}{% endif %}</dd>
{% for label, value in recipient %}<dt>{{ label }}</dt><dd>{{ value }}</dd>
{% endfor %}</dl>
<h2>Prefilled answers</h2>
{% if error %}<p class="error">The link's responses could not be decoded: {{ error }}</p>
{% elif not answers %}<p>No prefilled answers.</p>
{% else %}<table><thead><tr><th>question_key</th><th>as</th><th>value</th><th>JSON type</th>
</tr></thead><tbody>
{% for answer in answers %}<tr><td>{{ answer.question_key }}</td><td>{{ answer.kind }}</td>
<td><code>{{ answer.value }}</code></td><td>{{ answer.json_type }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}</body></html>
"""
)

# Only inline styles, nothing from outside the emulator (SPEC 2.7's rule for our pages).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
RECIPIENT_FIELDS = (("Email", "email"), ("Phone number", "phone_number"))
CUSTOMER_FIELDS = (("Name", "name"), ("External id", "external_id"))
ANSWER_KINDS = ("body", "option_key")


@blueprint.get("/s/<token>")
def survey_page(token: str) -> Response:
    sharing = sharing_of(token)
    campaign = current_emulator().store.campaign(sharing["campaign_id"])
    answers, error = prefilled(request.args.get("responses"))
    html = _PAGE.render(
        campaign_id=sharing["campaign_id"],
        subject=campaign.subject if campaign else None,
        recipient=recipient_rows(sharing),
        answers=answers,
        error=error,
    )
    return Response(html, 400 if error else 200, HEADERS, content_type="text/html; charset=utf-8")


@blueprint.get("/l/<code>")
def short_link(code: str) -> Response:
    """302 to the sharing's survey link, its `responses` as the long link carries them."""
    sharing_id = current_emulator().links.short_sharing_id(code)
    if sharing_id is None:
        raise PisanoError(13002, "short link: the code is not one this emulator made")
    sharing = held_sharing(sharing_id, "short link")
    return Response(status=302, headers={"Location": long_link(sharing), **HEADERS})


def long_link(sharing: dict[str, Any]) -> str:
    emulator = current_emulator()
    schema = customer_schema(emulator.store, sharing["campaign_id"])
    query = responses_query(sharing.get("built_in_responses") or {}, schema)
    return emulator.links.link(sharing["id"], query)


def customer_schema(store: Store, owner_id: str) -> dict[str, str]:
    """The schema typing the links of a campaign's or a link channel's sharings (the account's);
    empty when it is gone."""
    owner = store.campaign(owner_id) or store.link_channel(owner_id)
    account = store.account(owner.account) if owner else None
    return dict(account.customer_schema) if account else {}


def sharing_of(token: str) -> dict[str, Any]:
    """The sharing a token names, or 13002 (SPEC 1.7: unknown → 13002)."""
    sharing_id = current_emulator().links.sharing_id(token)
    if sharing_id is None:
        raise PisanoError(13002, "survey link: the token is not one this emulator made")
    return held_sharing(sharing_id, "survey link")


def held_sharing(sharing_id: int, what: str) -> dict[str, Any]:
    sharing = current_emulator().store.sharing(sharing_id)
    if sharing is None:
        raise PisanoError(
            13002, f"{what}: sharing {sharing_id} is not held (dropped by the bounds or reset)"
        )
    return sharing


def recipient_rows(sharing: dict[str, Any]) -> list[tuple[str, str]]:
    customer = sharing.get("custom_attributes") or {}
    rows = [(label, sharing.get(key)) for label, key in RECIPIENT_FIELDS]
    rows += [(label, customer.get(key)) for label, key in CUSTOMER_FIELDS]
    return [(label, shown_value(value)) for label, value in rows if value not in (None, "")]


def prefilled(raw: str | None) -> tuple[list[dict[str, str]], str | None]:
    """The answers a `responses` parameter carries, or the reason it could not be decoded."""
    if raw is None:
        return [], None
    try:
        return [answer_row(item) for item in decode_responses(raw)], None
    except ValueError as error:
        return [], str(error) or type(error).__name__


def answer_row(item: Any) -> dict[str, str]:
    """One `{"question_key", "body" | "option_key"}` object as a row; ValueError when it is not."""
    kinds = [kind for kind in ANSWER_KINDS if isinstance(item, dict) and kind in item]
    if len(kinds) != 1 or not isinstance(item.get("question_key"), str) or len(item) != 2:
        raise ValueError(f"not a question_key with a body or an option_key: {shown_value(item)}")
    value = item[kinds[0]]
    return {
        "question_key": item["question_key"],
        "kind": kinds[0],
        "value": orjson.dumps(value).decode(),
        "json_type": json_type(value),
    }


JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int in Python
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def json_type(value: Any) -> str:
    return next((name for kind, name in JSON_TYPES if isinstance(value, kind)), "null")


def shown_value(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
