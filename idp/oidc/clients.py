"""Relying-party registration (RFC 7591 metadata) and secret handling.

Secrets are 256-bit random values shown once and stored as SHA-256 digests: they are not human
passwords, so a slow hash would only slow every token request.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp import audit
from idp.config import settings
from idp.errors import IdpError, NotFoundError
from idp.identity.models import ORG_TYPES
from idp.oidc import backchannel
from idp.oidc.claims import SCOPES_SUPPORTED, SIGNING_ALGS
from idp.oidc.client_cache import protocol_client
from idp.oidc.grants import AUTH_METHODS, SECRET_AUTH_METHODS, SECRET_JWT
from idp.oidc.models import LIFETIMES, Client, client_in_session, digest
from idp.oidc.subjects import SUBJECT_TYPES
from idp.sealing import seal

GRANT_TYPES = {"authorization_code", "refresh_token", "client_credentials"}

# A client id never starts with "-": it is passed as an argument on command lines.
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
DEFAULTS: dict[str, Any] = {
    "grant_types": ["authorization_code"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid profile phone",
    "id_token_signed_response_alg": "ES256",
    "redirect_uris": [],
    "post_logout_redirect_uris": [],
}
# This provider's own metadata.
PROVIDER_FIELDS = {
    "client_id",
    "org_types",
    "require_pkce",
    "require_consent",
    "introspection_allowed",
    "refresh_token_reuse_interval",
    "disabled",
    *LIFETIMES,
}
# Standard metadata (RFC 7591 §2, OpenID Connect Dynamic Client Registration 1.0 §2, and the
# RP-Initiated, Front- and Back-Channel Logout registrations) that the provider keeps as given,
# after checking its type: it describes the client or is used by later features.
STORED_URIS = {
    "client_uri",
    "logo_uri",
    "policy_uri",
    "tos_uri",
    "jwks_uri",
    "sector_identifier_uri",
    "backchannel_logout_uri",
    "frontchannel_logout_uri",
}
STORED_STRINGS = {"software_id", "software_version", "token_endpoint_auth_signing_alg"}
STORED_FLAGS = {
    "require_auth_time",
    "backchannel_logout_session_required",
    "frontchannel_logout_session_required",
}
STORED_LISTS = {"contacts", "default_acr_values"}
# Standard metadata asking for what the provider does not do: accepted only when absent or
# null, refused with the reason otherwise (RFC 7591 §3.2.2 invalid_client_metadata).
UNSUPPORTED = {
    "id_token_encrypted_response_alg": "encrypted ID tokens are not supported",
    "id_token_encrypted_response_enc": "encrypted ID tokens are not supported",
    "userinfo_signed_response_alg": "userinfo is returned as plain JSON only",
    "userinfo_encrypted_response_alg": "userinfo is returned as plain JSON only",
    "userinfo_encrypted_response_enc": "userinfo is returned as plain JSON only",
    "request_object_signing_alg": "request objects are not supported",
    "request_object_encryption_alg": "request objects are not supported",
    "request_object_encryption_enc": "request objects are not supported",
    "request_uris": "request_uri is not supported",
}
# Standard metadata RFC 7591 lets a server ignore: dropped.
IGNORED = {
    "software_statement",
    "client_secret",
    "client_secret_expires_at",
    "client_id_issued_at",
    "registration_access_token",
    "registration_client_uri",
}
KNOWN_FIELDS = (
    set(DEFAULTS)
    | PROVIDER_FIELDS
    | STORED_URIS
    | STORED_STRINGS
    | STORED_FLAGS
    | STORED_LISTS
    | {
        "client_name",
        "initiate_login_uri",
        "application_type",
        "subject_type",
        "jwks",
        "default_max_age",
    }
)
# The longest reuse interval a client may ask for: longer would keep a stolen, rotated
# refresh token useful (docs/protocol.md, "Refresh-token reuse interval").
MAX_REUSE_INTERVAL = 60
SECTOR_TIMEOUT_SECONDS = 5


def unknown_metadata(raw: dict[str, Any]) -> list[str]:
    """Fields no specification or this provider defines: ignored (RFC 7591 §2), reported by
    the command line as a warning."""
    return sorted(set(raw) - KNOWN_FIELDS - set(UNSUPPORTED) - IGNORED)


class InvalidClientMetadataError(IdpError):
    """RFC 7591 §3.2.2 ``invalid_client_metadata`` / ``invalid_redirect_uri``."""

    code = "invalid_client_metadata"


class InvalidRedirectUriError(InvalidClientMetadataError):
    """RFC 7591 §3.2.2 ``invalid_redirect_uri``: one of ``redirect_uris`` is not acceptable."""

    code = "invalid_redirect_uri"


def check_uri(uri: Any, *, field: str) -> str:
    """Absolute https URI (http only on loopback in development), no fragment or userinfo.
    A bad redirect URI is ``invalid_redirect_uri``, any other ``invalid_client_metadata``."""
    error = InvalidRedirectUriError if field == "redirect_uris" else InvalidClientMetadataError
    if not isinstance(uri, str) or len(uri) > 2000:
        raise error(f"{field}: not a URI")
    parts = urlsplit(uri)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise error(f"{field}: {uri!r} must be an absolute http(s) URI")
    if parts.scheme == "http" and not (loopback and settings().dev_mode):
        raise error(f"{field}: {uri!r} must use https")
    if parts.fragment or "#" in uri or parts.username or parts.password:
        raise error(f"{field}: {uri!r} must not contain a fragment or user info")
    return uri


def _check_list(metadata: dict[str, Any], field: str, allowed: Collection[str]) -> list[str]:
    values = metadata[field]
    if (
        not isinstance(values, list)
        or not all(isinstance(v, str) for v in values)
        or not set(values) <= set(allowed)
    ):
        raise InvalidClientMetadataError(f"{field}: must be a list of {sorted(allowed)}")
    return values


def validate_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    """Complete ``raw`` with RFC 7591 defaults and check every field; raise on the first problem."""
    if not isinstance(raw, dict):
        raise InvalidClientMetadataError("client metadata must be a JSON object")
    for field, reason in UNSUPPORTED.items():
        if raw.get(field) not in (None, []):
            raise InvalidClientMetadataError(f"{field}: {reason}")
    # null is no value (and removes a stored one on an update)
    given = {k: v for k, v in raw.items() if k in KNOWN_FIELDS and v is not None}
    metadata = {**DEFAULTS, **given}
    grant_types = _check_list(metadata, "grant_types", GRANT_TYPES)
    if metadata["response_types"] != (
        ["code"] if "authorization_code" in grant_types else []
    ) and metadata["response_types"] != ["code"]:
        raise InvalidClientMetadataError('response_types: only ["code"] is supported')
    if metadata["token_endpoint_auth_method"] not in AUTH_METHODS:
        raise InvalidClientMetadataError(f"token_endpoint_auth_method: one of {AUTH_METHODS}")
    if metadata["token_endpoint_auth_method"] == "private_key_jwt" and not (
        "jwks" in metadata or "jwks_uri" in metadata
    ):
        raise InvalidClientMetadataError("private_key_jwt needs the client's jwks or jwks_uri")
    if metadata["token_endpoint_auth_method"] == "none" and "client_credentials" in grant_types:
        raise InvalidClientMetadataError("a public client cannot use client_credentials")
    if metadata["id_token_signed_response_alg"] not in SIGNING_ALGS:
        raise InvalidClientMetadataError(f"id_token_signed_response_alg: one of {SIGNING_ALGS}")
    scopes = str(metadata["scope"]).split()
    if not set(scopes) <= set(SCOPES_SUPPORTED):
        raise InvalidClientMetadataError(f"scope: allowed are {SCOPES_SUPPORTED}")
    metadata["redirect_uris"] = [
        check_uri(u, field="redirect_uris") for u in _list(metadata, "redirect_uris")
    ]
    metadata["post_logout_redirect_uris"] = [
        check_uri(u, field="post_logout_redirect_uris")
        for u in _list(metadata, "post_logout_redirect_uris")
    ]
    if "authorization_code" in grant_types and not metadata["redirect_uris"]:
        raise InvalidRedirectUriError("redirect_uris: required for the authorization_code grant")
    for field in ("initiate_login_uri", *sorted(STORED_URIS)):
        if field in metadata:
            check_uri(metadata[field], field=field)
    check_frontchannel(metadata)
    _check_descriptive(metadata)
    if "org_types" in metadata:
        _check_list(metadata, "org_types", ORG_TYPES)
    provider_flags = ("require_pkce", "require_consent", "introspection_allowed", "disabled")
    for flag in (*provider_flags, *sorted(STORED_FLAGS)):
        if flag in metadata and not isinstance(metadata[flag], bool):
            raise InvalidClientMetadataError(f"{flag}: must be true or false")
    if "client_id" in metadata and not CLIENT_ID_RE.match(str(metadata["client_id"])):
        raise InvalidClientMetadataError(
            "client_id: 3-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return metadata


def _origin(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.scheme, parts.netloc.lower()


def check_frontchannel(metadata: dict[str, Any]) -> None:
    """Front-Channel Logout 1.0 §2: the logout URI has the scheme, host and port of one of the
    client's redirect URIs (the provider frames it, its CSP allowing that origin)."""
    uri = metadata.get("frontchannel_logout_uri")
    if uri and _origin(uri) not in {_origin(u) for u in metadata["redirect_uris"]}:
        raise InvalidClientMetadataError(
            f"frontchannel_logout_uri: {uri!r} must have the scheme, host and port of a "
            "redirect URI"
        )


def _check_descriptive(metadata: dict[str, Any]) -> None:
    """The standard fields kept as given must have their specified types."""
    for field in sorted(STORED_STRINGS & set(metadata)):
        if not isinstance(metadata[field], str) or len(metadata[field]) > 255:
            raise InvalidClientMetadataError(f"{field}: must be a string")
    for field in sorted(STORED_LISTS & set(metadata)):
        if not all(isinstance(v, str) and len(v) <= 255 for v in _list(metadata, field)):
            raise InvalidClientMetadataError(f"{field}: must be a list of strings")
    if metadata.get("application_type", "web") not in {"web", "native"}:
        raise InvalidClientMetadataError('application_type: "web" or "native"')
    if metadata.get("subject_type", "public") not in SUBJECT_TYPES:
        raise InvalidClientMetadataError(f"subject_type: one of {SUBJECT_TYPES}")
    if metadata.get("subject_type") == "pairwise":
        check_sector(metadata)
    if "jwks" in metadata and not (
        isinstance(metadata["jwks"], dict) and isinstance(metadata["jwks"].get("keys"), list)
    ):
        raise InvalidClientMetadataError('jwks: must be a JWK Set ({"keys": [...]})')
    if "jwks" in metadata and "jwks_uri" in metadata:
        raise InvalidClientMetadataError("jwks and jwks_uri: give one, not both (RFC 7591 §2)")
    for field, limit in (
        ("default_max_age", None),
        ("refresh_token_reuse_interval", MAX_REUSE_INTERVAL),
    ):
        value = metadata.get(field, 0)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < 0
            or (limit is not None and value > limit)
        ):
            bound = f"0 to {limit}" if limit is not None else "0 or more"
            raise InvalidClientMetadataError(f"{field}: must be a whole number of seconds, {bound}")
    _check_lifetimes(metadata)


def _check_lifetimes(metadata: dict[str, Any]) -> None:
    """A client's token lifetimes may shorten the platform's, never lengthen them."""
    for field, setting in LIFETIMES.items():
        if field not in metadata:
            continue
        value, platform = metadata[field], getattr(settings(), setting)
        if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= platform:
            raise InvalidClientMetadataError(
                f"{field}: must be a whole number of seconds, 60 to {platform} "
                f"(IDP_{setting.upper()})"
            )


def check_sector(metadata: dict[str, Any]) -> None:
    """OIDC Core §8.1 and Registration §5: a pairwise client's redirect URIs share one host, or
    its ``sector_identifier_uri`` lists every one of them (fetched and checked now)."""
    redirect_uris = metadata["redirect_uris"]
    uri = metadata.get("sector_identifier_uri")
    if uri is None:
        if len({urlsplit(u).hostname for u in redirect_uris}) > 1:
            raise InvalidClientMetadataError(
                "sector_identifier_uri: required for pairwise subjects when the redirect URIs "
                "have more than one host"
            )
        return
    try:
        response = requests.get(uri, timeout=SECTOR_TIMEOUT_SECONDS, allow_redirects=False)
        response.raise_for_status()
        listed = response.json()
    except (requests.RequestException, ValueError) as error:
        raise InvalidClientMetadataError(
            f"sector_identifier_uri: {uri!r} did not answer a JSON array"
        ) from error
    if not isinstance(listed, list) or not set(redirect_uris) <= set(listed):
        raise InvalidClientMetadataError(
            f"sector_identifier_uri: {uri!r} must list every redirect URI"
        )


def _list(metadata: dict[str, Any], field: str) -> list[Any]:
    value = metadata.get(field, [])
    if not isinstance(value, list):
        raise InvalidClientMetadataError(f"{field}: must be a list")
    return value


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def register_client(
    session: Session, raw: dict[str, Any], *, actor: str = "platform"
) -> tuple[Client, str | None]:
    """Create a client; returns it with its secret (None for public clients), shown only now."""
    metadata = validate_metadata(raw)
    client_id = metadata.pop("client_id", None) or secrets.token_hex(16)
    if session.scalar(select(Client.id).where(Client.client_id == client_id)) is not None:
        raise InvalidClientMetadataError(f"client_id {client_id!r} already exists")
    secret = new_secret() if metadata["token_endpoint_auth_method"] in SECRET_AUTH_METHODS else None
    client = Client(client_id=client_id, client_metadata=metadata)
    if secret is not None:
        _keep_secret(client, secret)
    session.add(client)
    session.flush()
    audit.record("oidc.client_registered", actor=actor, target=f"client:{client_id}")
    return client, secret


def find_client(session: Session, client_id: str) -> Client | None:
    return client_in_session(session, client_id)


def find_enabled_client(session: Session, client_id: str) -> Client | None:
    """The client as the protocol endpoints see it: a disabled one does not exist for them."""
    client = protocol_client(session, client_id)
    return None if client is None or client.disabled else client


def search_clients(session: Session, text: str) -> list[Client]:
    """Clients whose id or display name contains ``text`` (any case), oldest first."""
    needle = text.strip().lower()
    return [
        c
        for c in list_clients(session)
        if needle in c.client_id.lower() or needle in c.name.lower()
    ]


def list_clients(session: Session) -> list[Client]:
    """Every registered client, oldest first."""
    return list(session.scalars(select(Client).order_by(Client.id)))


def login_clients(session: Session) -> list[Client]:
    """The relying parties people log in to (the code flow), oldest first."""
    return [
        c for c in list_clients(session) if "authorization_code" in c.grant_types and not c.disabled
    ]


def get_client(session: Session, client_id: str) -> Client:
    client = find_client(session, client_id)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    return client


def update_client(
    session: Session,
    client_id: str,
    changes: dict[str, Any],
    *,
    actor: str = "platform",
    replace: bool = False,
) -> Client:
    """Change a client's metadata: ``changes`` over the stored fields, or with ``replace`` (RFC
    7592 §2.2) instead of them, where only the provider's own fields are kept."""
    client = get_client(session, client_id)
    if "client_id" in changes:
        raise InvalidClientMetadataError("client_id cannot be changed")
    for field in ("subject_type", "sector_identifier_uri"):
        if (replace or field in changes) and changes.get(field) != client.client_metadata.get(
            field
        ):
            raise InvalidClientMetadataError(
                f"{field} cannot be changed: every sub the client knows would change"
            )
    kept = client.client_metadata
    if replace:
        kept = {k: v for k, v in kept.items() if k in PROVIDER_FIELDS}
    metadata = validate_metadata({**kept, **changes})
    if (metadata["token_endpoint_auth_method"] == "none") != client.is_public:
        raise InvalidClientMetadataError(
            "changing between public and confidential needs a new client"
        )
    if metadata["token_endpoint_auth_method"] == SECRET_JWT and client.secret_sealed is None:
        raise InvalidClientMetadataError(
            "client_secret_jwt is chosen when a client is registered: only then is its secret "
            "kept as the key it needs (register a new client)"
        )
    if metadata["token_endpoint_auth_method"] != SECRET_JWT:
        client.secret_sealed = None  # no longer a MAC key: the digest is enough
    client.client_metadata = metadata
    audit.record("oidc.client_updated", actor=actor, target=f"client:{client_id}")
    return client


def set_client_disabled(session: Session, client_id: str, disabled: bool, *, actor: str) -> Client:
    """Disable (the protocol endpoints no longer know it, its tokens end) or enable again."""
    client = get_client(session, client_id)
    client.client_metadata = {**client.client_metadata, "disabled": disabled}
    if disabled:
        _end_tokens(session, client_id)
        # its sessions end with its tokens: a relying party that asked is told each one
        backchannel.announce(session, backchannel.notices_at_client(session, client_id))
    action = "oidc.client_disabled" if disabled else "oidc.client_enabled"
    audit.record(action, actor=actor, target=f"client:{client_id}")
    return client


def _end_tokens(session: Session, client_id: str) -> None:
    """The families go first: a rotation in flight then finds no family and is refused, or
    holds its family's row until it commits, and the tokens' DELETE that follows sees its
    token."""
    from idp.oidc.models import Token, TokenFamily

    session.execute(delete(TokenFamily).where(TokenFamily.client_id == client_id))
    session.execute(delete(Token).where(Token.client_id == client_id))


def rotate_secret(
    session: Session, client_id: str, *, actor: str = "platform"
) -> tuple[Client, str]:
    client = get_client(session, client_id)
    if client.auth_method not in SECRET_AUTH_METHODS:
        raise InvalidClientMetadataError(
            f"a client using {client.auth_method} has no secret (public, or keys of its own)"
        )
    secret = new_secret()
    _keep_secret(client, secret)
    audit.record("oidc.client_secret_rotated", actor=actor, target=f"client:{client_id}")
    return client, secret


def _keep_secret(client: Client, secret: str) -> None:
    """The digest always; the secret itself, sealed, only where it is the client's MAC key."""
    client.secret_hash = digest(secret)
    client.secret_sealed = seal(secret) if client.auth_method == SECRET_JWT else None


def remove_client(session: Session, client_id: str, *, actor: str = "platform") -> None:
    """Delete the client with its tokens."""
    client = get_client(session, client_id)
    _end_tokens(session, client_id)
    session.delete(client)
    audit.record("oidc.client_removed", actor=actor, target=f"client:{client_id}")


def client_info(client: Client, secret: str | None = None) -> dict[str, Any]:
    """RFC 7591 §3.2.1 client information response (the secret only when just created)."""
    info: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        **client.client_metadata,
    }
    if secret is not None:
        info["client_secret"] = secret
        info["client_secret_expires_at"] = 0
    return info
