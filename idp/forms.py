"""Form helpers every blueprint's forms share."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import Field, ValidationError

# HEAD is answered by the GET view, without the body (link checkers and monitors send it).
SHOWING_METHODS = frozenset({"GET", "HEAD"})


def showing() -> bool:
    """The request asks for the page (GET or HEAD), it does not submit the page's form."""
    return request.method in SHOWING_METHODS


def strip(value: Any) -> Any:
    """A filter: surrounding white space removed (what people paste often carries it)."""
    return value.strip() if isinstance(value, str) else value


def upper(value: Any) -> Any:
    """A filter: stripped and upper-cased (codes such as the USCC)."""
    return value.strip().upper() if isinstance(value, str) else value


def choice_of(message: Any) -> Any:
    """A validator: the value (or every value) is one of the field's choices; WTForms' own
    check answers in English, this one with ``message``."""

    def check(form: FlaskForm, field: Field) -> None:
        # A choice is a (value, label) pair or a SelectChoice; either iterates value first.
        allowed = {str(next(iter(choice))) for choice in field.choices or []}
        values = field.data if isinstance(field.data, list) else [field.data]
        if not values or not all(str(v) in allowed for v in values):
            raise ValidationError(str(message))

    return check
