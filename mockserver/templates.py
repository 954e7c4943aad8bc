"""Compiling and rendering campaign templates (SPEC 1.7): sandboxed Jinja2, and what a failure
says. Used in this process for the default templates and in the template jail
(`template_jail.py`) for a campaign's own, which may be hostile."""

from __future__ import annotations

import traceback
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_NAME = "<template>"  # the file name Jinja gives a template's frames: finds its line
MAX_OUTPUT_CHARS = 1 << 20  # one part of one message: a template writing more fails its message

# Sandboxed (a template in a config file cannot reach the server), immutable (nor change the data
# it is given). StrictUndefined: a misspelt variable fails the message with its name, where the
# default would send an email with a silent hole in it; optional keys read `x.get("k")`.
ENVIRONMENTS: dict[str, jinja2.Environment] = {
    "text_template": ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    ),
    "html_template": ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=True
    ),
}


class RenderError(Exception):
    """A campaign's template failed for one message; str(error) names the template, the line and
    the cause (the message's `last_error`)."""


def compile_template(kind: str, source: str) -> jinja2.Template:
    """`source` compiled for `kind` (text_template, html_template); RenderError names a syntax
    error's line."""
    try:
        return ENVIRONMENTS[kind].from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise RenderError(f"template: {kind} line {error.lineno}: {error.message}") from None


def render_template(kind: str, template: jinja2.Template, variables: dict[str, Any]) -> str:
    try:
        text = template.render(variables)
    except Exception as error:  # any failure of a campaign's template fails its message only
        line = _failed_line(error)
        where = f"{kind} line {line}" if line else kind
        cause = str(error) if isinstance(error, jinja2.TemplateError) else _named(error)
        raise RenderError(f"template: {where}: {cause}") from None
    if len(text) > MAX_OUTPUT_CHARS:
        said = f"template: {kind}: wrote {len(text)} characters, over {MAX_OUTPUT_CHARS}"
        raise RenderError(said)
    return text


def _failed_line(error: BaseException) -> int | None:
    """The template line an exception was raised on (Jinja's frames carry the template's lines)."""
    frames = traceback.walk_tb(error.__traceback__)
    lines = [n for f, n in frames if f.f_code.co_filename == TEMPLATE_NAME]
    return lines[-1] if lines else None


def _named(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
