"""Errors of the template engine; messages are shaped like Go's text/template errors."""

from __future__ import annotations

from gorae.errors import InvalidParameter

__all__ = ["TemplateError", "TemplateExecError", "TemplateParseError"]


class TemplateError(InvalidParameter):
    """A template that cannot be parsed or executed. `str()` is Go's message, e.g.
    `template: :1: unexpected "}" in operand`."""


class TemplateParseError(TemplateError):
    """The template text is malformed (docker exits 64 for these in `inspect`)."""


class TemplateExecError(TemplateError):
    """Executing the template on the data failed, e.g.
    `template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"`."""
