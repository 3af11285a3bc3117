"""ID token and userinfo claims (OIDC Core §2, §5.1; docs/design.md §4).

A token carries exactly one identity: the (org identity, role) chosen for this relying party.
"""

from __future__ import annotations

from typing import Any

from idp.config import settings
from idp.db import utcnow
from idp.identity.models import Identity
from idp.oidc.models import Client
from idp.oidc.requested_claims import SCOPED_CLAIMS, Requested, names_for
from idp.signing import ALGORITHMS, key_store
from idp.signing.jws import encode_jwt, hash_half

# offline_access (OIDC Core §11): refresh tokens that outlive the login, with consent.
OIDC_SCOPES = ["openid", "profile", "phone", "offline_access"]
# Management API scopes (org admin operations), grantable to registered clients.
API_SCOPES = ["org.operators", "org.reviews"]
SCOPES_SUPPORTED = OIDC_SCOPES + API_SCOPES
CLAIMS_SUPPORTED = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "acr",
    "amr",
    "sid",
    "azp",
    "name",
    "phone_number",
    "phone_number_verified",
    "org",
    "org_type",
    "role",
    "legacy_account",
]
SIGNING_ALGS = list(ALGORITHMS)


def identity_claims(
    user: Any,
    scope: str,
    *,
    client: Client | None = None,
    requested: Requested | None = None,
    target: str = "userinfo",
) -> dict[str, Any]:
    """``sub`` and, by scope, the person's name and phone, plus the chosen identity; and the
    claims the ``claims`` parameter asked for ``target`` (OIDC Core §5.5) that the client's
    registered scopes allow."""
    scopes = set(scope.split())
    names = names_for(requested, target)
    registered = set(client.scope.split()) if client is not None else set()
    scopes |= {SCOPED_CLAIMS[n] for n in names if n in SCOPED_CLAIMS} & registered
    claims: dict[str, Any] = {"sub": user.subject}
    if "profile" in scopes:
        claims["name"] = user.name
    if "phone" in scopes and user.phone:
        claims["phone_number"] = "+86" + user.phone
        claims["phone_number_verified"] = True
    identity: Identity | None = user.identity
    if identity is not None:
        claims["org"] = {
            "id": str(identity.org_id),
            "uscc": identity.uscc,
            "name": identity.org_name,
        }
        claims["org_type"] = identity.org_type.value
        claims["role"] = identity.role.value
        if identity.legacy_account:
            claims["legacy_account"] = identity.legacy_account
    if target == "userinfo":
        # How the person authenticated, in userinfo only when asked for (§5.5.1.1).
        asked = {
            "acr": user.acr,
            "auth_time": int(user.auth_time) if user.auth_time else None,
            "amr": list(user.amr) or None,
        }
        claims.update({k: v for k, v in asked.items() if k in names and v is not None})
    return claims


def issue_id_token(
    *,
    client: Client,
    user: Any,
    scope: str,
    access_token: str | None,
    nonce: str | None,
    requested: Requested | None = None,
) -> str:
    """Sign an ID token with the client's algorithm (ES256 by default, RS256 on request)."""
    alg = client.id_token_alg if client.id_token_alg in SIGNING_ALGS else "ES256"
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = {
        "iss": settings().issuer,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + client.lifetime("id_token_lifetime"),
        **identity_claims(user, scope, client=client, requested=requested, target="id_token"),
    }
    optional = {
        "auth_time": int(user.auth_time) if user.auth_time else None,
        "nonce": nonce,
        "acr": user.acr,
        "amr": list(user.amr) or None,
        "sid": user.sid,
        "at_hash": hash_half(access_token, alg) if access_token else None,
    }
    claims.update({k: v for k, v in optional.items() if v is not None})
    key = key_store().signing_key(alg)
    return encode_jwt(key_store(), key, claims)
