"""Raw protocol parameters, checked before Authlib parses them (docs/protocol.md P19).

Werkzeug decodes percent-escapes leniently (an invalid UTF-8 sequence becomes U+FFFD) and keeps
every value of a repeated parameter, and Authlib takes what it is handed: a redirect URI with a
line break or a backslash reached the redirect and ended in a server error. Each endpoint
therefore first reads its parameters as sent and refuses the request (400) when one is
malformed: invalid UTF-8 after percent-decoding, a control character anywhere, a backslash in
a URI, a value longer than any the protocol needs, or a parameter sent more than once (RFC 6749
§3.1, §3.2). HTTP Basic client credentials are held to the same rules (RFC 6749 §2.3.1).
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from idp import context

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Values that become (part of) a URI the provider redirects to or fetches.
URI_PARAMETERS = frozenset({"redirect_uri", "post_logout_redirect_uri", "request_uri"})
FORM_TYPE = "application/x-www-form-urlencoded"
# Longer than any legitimate value (an ID token hint or a client assertion is a few KiB).
MAX_VALUE_LENGTH = 8192


class MalformedParameterError(ValueError):
    """A parameter as sent is not acceptable; ``str()`` says which and why (for the client)."""


def raw_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    """``application/x-www-form-urlencoded`` pairs, percent-decoded to bytes (not to text)."""
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _sep, value = part.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(name.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )
        )
    return pairs


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedParameterError(f"{what} is not valid UTF-8") from None


def check_pairs(pairs: list[tuple[bytes, bytes]], *, field_checks: bool = False) -> None:
    """``field_checks``: the form's own validators refuse control characters in values,
    next to their field (a clearer message than a refused request)."""
    seen: set[str] = set()
    for raw_name, raw_value in pairs:
        name = _text(raw_name, "a parameter name")
        if CONTROL.search(name):
            raise MalformedParameterError("a parameter name contains a control character")
        shown = name[:40]
        value = _text(raw_value, f"parameter {shown}")
        if not field_checks and CONTROL.search(value):
            raise MalformedParameterError(f"parameter {shown} contains a control character")
        if len(value) > MAX_VALUE_LENGTH or len(name) > MAX_VALUE_LENGTH:
            raise MalformedParameterError(f"parameter {shown} is too long")
        if name in URI_PARAMETERS and "\\" in value:
            raise MalformedParameterError(f"parameter {shown} contains a backslash")
        if name in seen:
            raise MalformedParameterError(f"parameter {shown} is repeated")
        seen.add(name)


def keep_form_body() -> None:
    """Read a form body as sent before anything parses it (CSRF protection reads the form
    first); the form is then parsed from this copy. Bodies are capped (MAX_CONTENT_LENGTH)."""
    flask_request = context.request()
    if flask_request.method == "POST" and flask_request.mimetype == FORM_TYPE:
        flask_request.get_data(cache=True, parse_form_data=False)


def check_request_parameters(*, field_checks: bool = False) -> None:
    """Check the query and (for a form POST) the body of this request as one parameter set."""
    flask_request = context.request()
    pairs = raw_pairs(flask_request.query_string)
    if flask_request.method == "POST" and flask_request.mimetype == FORM_TYPE:
        pairs += raw_pairs(flask_request.get_data(cache=True, parse_form_data=False))
    check_pairs(pairs, field_checks=field_checks)


def check_basic_credentials() -> None:
    """``Authorization: Basic`` must be base64 of UTF-8 ``id:secret``, each form-urlencoded
    and free of control characters (RFC 6749 §2.3.1)."""
    scheme, _sep, encoded = context.request().headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedParameterError("the Basic credentials are not base64") from None
    client_id, _colon, secret = decoded.partition(b":")
    check_pairs([(b"client_id", client_id), (b"client_secret", secret)])
    check_pairs(
        [(b"client_id", unquote_to_bytes(client_id)), (b"client_secret", unquote_to_bytes(secret))]
    )


def client_auth_methods() -> list[str]:
    """The client authentication methods this request uses (RFC 6749 §2.3: at most one)."""
    flask_request = context.request()
    form = flask_request.form
    methods = []
    if flask_request.headers.get("Authorization"):
        methods.append("authorization_header")
    if "client_secret" in form:
        methods.append("client_secret_post")
    if "client_assertion" in form or "client_assertion_type" in form:
        methods.append("client_assertion")
    return methods


def bearer_token_places() -> list[str]:
    """Where this request carries an access token (RFC 6750 §2: in one place only)."""
    flask_request = context.request()
    places = []
    if flask_request.headers.get("Authorization"):
        places.append("header")
    if flask_request.method == "POST" and "access_token" in flask_request.form:
        places.append("body")
    if "access_token" in flask_request.args:
        places.append("query")
    return places
