"""The ``claims`` request parameter (OIDC Core §5.5): individual claims for the ID token and
userinfo, beyond what the scopes give (docs/protocol.md, "The claims parameter").

The parameter is parsed once at /authorize; malformed JSON or members of the wrong type are
``invalid_request``. What is kept (with the code, then with every token of its family) holds
only the two known targets and the claims this provider supports: anything else is ignored, as
§5.5 says. A claim a scope would give is released only when the client is registered for that
scope, so the parameter never widens a client's registration.

``value``/``values`` are acted on for ``acr`` (§5.5.1.1: an essential ``acr`` the login cannot
meet fails the request, or asks for the login that meets it) and for ``sub`` in the ID token
(§3.1.2.2: only that person's session may answer); other claims are returned as they are.
"""

from __future__ import annotations

import json
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error

from idp.auth.cert_login import UKEY_ACR
from idp.auth.service import OPERATOR_ACR

TARGETS = ("userinfo", "id_token")
ACR_VALUES = [OPERATOR_ACR, UKEY_ACR]
# Claims a client may request individually, with the scope whose registration releases them.
SCOPED_CLAIMS = {"name": "profile", "phone_number": "phone", "phone_number_verified": "phone"}
# Claims every token of a login carries anyway, or that describe the authentication.
ALWAYS = {"sub", "org", "org_type", "role", "legacy_account"}
AUTHENTICATION = {"acr", "auth_time", "amr"}
REQUESTABLE = set(SCOPED_CLAIMS) | ALWAYS | AUTHENTICATION


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code ``unmet_authentication_requirements`` 1.0: the login
    cannot meet the essential ``acr`` the client asked for."""

    error = "unmet_authentication_requirements"


Requested = dict[str, dict[str, dict[str, Any]]]


def parse(raw: str | None) -> Requested | None:
    """The kept form of a ``claims`` parameter, or None when it is absent or asks for nothing
    this provider knows; raises ``InvalidRequestError`` when it is malformed."""
    if raw is None or raw == "":
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        raise InvalidRequestError("claims is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidRequestError("claims must be a JSON object")
    kept: Requested = {}
    for target in TARGETS:
        if target not in document:
            continue
        members = document[target]
        if not isinstance(members, dict):
            raise InvalidRequestError(f"claims.{target} must be a JSON object")
        entries = {name: _entry(target, name, spec) for name, spec in members.items()}
        known = {name: entry for name, entry in entries.items() if name in REQUESTABLE}
        if known:
            kept[target] = known
    return kept or None


def _entry(target: str, name: str, spec: Any) -> dict[str, Any]:
    where = f"claims.{target}.{name}"[:80]
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise InvalidRequestError(f"{where} must be null or a JSON object")
    entry: dict[str, Any] = {}
    if "essential" in spec:
        if not isinstance(spec["essential"], bool):
            raise InvalidRequestError(f"{where}.essential must be true or false")
        entry["essential"] = spec["essential"]
    if "value" in spec and "values" in spec:
        raise InvalidRequestError(f"{where}: give value or values, not both")
    if "value" in spec:
        entry["values"] = [spec["value"]]
    elif "values" in spec:
        if not isinstance(spec["values"], list) or not spec["values"]:
            raise InvalidRequestError(f"{where}.values must be a non-empty array")
        entry["values"] = list(spec["values"])
    return entry


def essential_acr(requested: Requested | None) -> list[str] | None:
    """The ``acr`` values one of which the login must have (§5.5.1.1), or None: an essential
    ``acr`` with ``value``/``values``, in the ID token or userinfo request."""
    if not requested:
        return None
    for target in TARGETS:
        entry = requested.get(target, {}).get("acr")
        if entry and entry.get("essential") and entry.get("values"):
            return [str(v) for v in entry["values"]]
    return None


def requested_subject(requested: Requested | None) -> str | None:
    """``sub`` asked with a specific value for the ID token (§5.5.1)."""
    entry = (requested or {}).get("id_token", {}).get("sub") or {}
    values = entry.get("values") or []
    return str(values[0]) if len(values) == 1 else None


def implied_scopes(requested: Requested | None) -> set[str]:
    """The scopes whose claims were asked for individually (shown on the consent page)."""
    names = {name for members in (requested or {}).values() for name in members}
    return {SCOPED_CLAIMS[name] for name in names if name in SCOPED_CLAIMS}


def names_for(requested: Requested | None, target: str) -> set[str]:
    return set((requested or {}).get(target, {}))
