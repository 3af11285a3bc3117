"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414): every value states what the
provider really does, and a test keeps it in step with the registered grants."""

from __future__ import annotations

from typing import Any

from flask import url_for

from idp.config import settings
from idp.oidc.claims import CLAIMS_SUPPORTED, SCOPES_SUPPORTED, SIGNING_ALGS
from idp.oidc.client_assertion import ALGORITHMS, HMAC_ALGORITHMS
from idp.oidc.grants import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from idp.oidc.requested_claims import ACR_VALUES
from idp.oidc.subjects import SUBJECT_TYPES

ASSERTION_ALGORITHMS = [*ALGORITHMS, *HMAC_ALGORITHMS]


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
