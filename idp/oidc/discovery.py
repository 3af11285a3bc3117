"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414): every value states what the
provider really does, and a test keeps it in step with the registered grants."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flask import Response, request, url_for

from idp import context
from idp.config import settings
from idp.oidc.claims import CLAIMS_SUPPORTED, SCOPES_SUPPORTED, SIGNING_ALGS
from idp.oidc.client_assertion import ALGORITHMS, HMAC_ALGORITHMS
from idp.oidc.grants import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from idp.oidc.requested_claims import ACR_VALUES
from idp.oidc.subjects import SUBJECT_TYPES

ASSERTION_ALGORITHMS = [*ALGORITHMS, *HMAC_ALGORITHMS]
METADATA_MAX_AGE = 300  # seconds relying parties may cache the discovery document


@dataclass(frozen=True)
class Document:
    """A JSON document serialised once, with the ETag of exactly these bytes."""

    source: dict[str, Any]
    body: bytes
    etag: str

    @classmethod
    def of(cls, source: dict[str, Any]) -> Document:
        body = json.dumps(source, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(source=source, body=body, etag=hashlib.sha256(body).hexdigest()[:32])


def metadata_document() -> Document:
    """The discovery document, built at its first request: it depends only on the settings
    and the routes, which do not change while the process runs."""
    extensions = context.app().extensions
    document: Document | None = extensions.get("idp.discovery")
    if document is None:
        document = extensions["idp.discovery"] = Document.of(metadata())
    return document


def jwks_document(jwks: dict[str, Any]) -> Document:
    """The JWKS as served: ``jwks`` is read from the key store on every request (so a rotated,
    new or expired key shows at once); only its serialisation is reused while it is equal."""
    extensions = context.app().extensions
    document: Document | None = extensions.get("idp.jwks_document")
    if document is None or document.source != jwks:
        document = extensions["idp.jwks_document"] = Document.of(jwks)
    return document


def json_response(document: Document, *, max_age: int) -> Response:
    """200 with the bytes, or 304 when ``If-None-Match`` names them (RFC 9110 §13.1.2)."""
    response = Response(document.body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.set_etag(document.etag)
    response.make_conditional(request)  # turns it into the 304 in place
    return response


def _url(endpoint: str) -> str:
    return settings().issuer + url_for(endpoint)


def metadata() -> dict[str, Any]:
    return {
        "issuer": settings().issuer,
        "authorization_endpoint": _url("oidc.authorize"),
        "token_endpoint": _url("oidc.token"),
        "userinfo_endpoint": _url("oidc.userinfo"),
        "jwks_uri": _url("oidc.jwks"),
        "revocation_endpoint": _url("oidc.revoke"),
        "introspection_endpoint": _url("oidc.introspect"),
        "end_session_endpoint": _url("oidc.end_session"),
        "registration_endpoint": _url("oidc.register"),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": SUBJECT_TYPES,
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "acr_values_supported": ACR_VALUES,
        "ui_locales_supported": ["zh-CN", "en"],
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
