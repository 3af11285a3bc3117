"""Settings of the demo relying party, read from ``RP_*`` environment variables.

The demo must run against a provider started with ``idp-dev setup`` without any editing, so every
setting has a development default except the client credentials, which come from the environment
or from the JSON file that ``idp-dev setup`` writes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_BASE_URL = "http://127.0.0.1:5001"


class ConfigError(ValueError):
    """The environment does not describe a usable relying party; the message says what to fix."""


def _random_secret_key() -> str:
    """A per-process key: sessions end on restart, which is acceptable for a demo."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything the relying party needs to know about itself and its provider."""

    issuer: str = DEFAULT_ISSUER
    """Issuer identifier of the provider; discovery must return exactly this (OIDC Discovery §4.3)."""

    client_id: str
    """Client identifier registered at the provider."""

    client_secret: str = field(repr=False)
    """Client secret, sent with HTTP Basic (``client_secret_basic``) to the token endpoint."""

    base_url: str = DEFAULT_BASE_URL
    """Public origin (and optional path prefix) of this app; redirect URIs are built from it."""

    secret_key: str = field(default_factory=_random_secret_key, repr=False)
    """Flask key that signs the session cookie holding the tokens."""

    state_file: str = ""
    """SQLite file of the sessions the provider ended (back-channel logout); empty: in memory."""

    def __post_init__(self) -> None:
        """Refuse settings that would send credentials in clear text or break exact URI matching."""
        _check_transport("RP_ISSUER", self.issuer)
        _check_transport("RP_BASE_URL", self.base_url)
        if self.base_url.endswith("/"):
            raise ConfigError(
                "RP_BASE_URL must not end with '/' (redirect URIs are matched exactly)"
            )
        if not self.client_id or not self.client_secret:
            raise ConfigError("the client id and client secret must not be empty")

    @property
    def server_metadata_url(self) -> str:
        """Discovery document URL: issuer without trailing slash + well-known path (Discovery §4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def management_api_url(self) -> str:
        """The provider's management API (操作员管理, 用户审核), which lives at the issuer."""
        return self.issuer.rstrip("/") + "/api/v1"

    @property
    def redirect_uri(self) -> str:
        """The one redirect URI this client registers and uses."""
        return self.base_url + "/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where the provider sends the browser after RP-initiated logout."""
        return self.base_url + "/logged-out"

    @property
    def initiate_login_uri(self) -> str:
        """Third-party initiated login endpoint (OIDC Core §4) the portal links to."""
        return self.base_url + "/login"

    @property
    def is_development(self) -> bool:
        """A plain-http loopback issuer means a local development provider."""
        return urlsplit(self.issuer).scheme == "http"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build the settings from ``RP_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        client_id, client_secret = _client_credentials(env)
        optional: dict[str, str] = {}
        for name, attr in (("RP_ISSUER", "issuer"), ("RP_BASE_URL", "base_url")):
            if env.get(name):
                optional[attr] = env[name]
        for name, attr in (("RP_SECRET_KEY", "secret_key"), ("RP_STATE_FILE", "state_file")):
            if env.get(name):
                optional[attr] = env[name]
        return cls(client_id=client_id, client_secret=client_secret, **optional)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses, the only hosts allowed over plain http."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_transport(name: str, url: str) -> None:
    """Allow https anywhere and http only on loopback (RFC 9700 §2.6; RFC 8252 §7.3)."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must not contain a query or fragment: {url!r}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ConfigError(f"{name} must be https, or http on a loopback host for development: {url!r}")


def _client_credentials(env: Mapping[str, str]) -> tuple[str, str]:
    """Client id and secret from RP_CLIENT_ID/RP_CLIENT_SECRET, else from RP_CLIENT_FILE."""
    client_id = env.get("RP_CLIENT_ID", "")
    client_secret = env.get("RP_CLIENT_SECRET", "")
    if client_id and client_secret:
        return client_id, client_secret
    if client_id or client_secret:
        raise ConfigError("set both RP_CLIENT_ID and RP_CLIENT_SECRET, or neither")
    path = env.get("RP_CLIENT_FILE", "")
    if not path:
        raise ConfigError(
            "no client credentials: set RP_CLIENT_ID and RP_CLIENT_SECRET, or RP_CLIENT_FILE "
            "(the JSON file written by `idp-dev setup`)"
        )
    return _read_client_file(Path(path))


def _read_client_file(path: Path) -> tuple[str, str]:
    """Read ``{"client_id", "client_secret"}`` as written by the provider's ``idp-dev setup``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"RP_CLIENT_FILE {str(path)!r} is not readable JSON: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"RP_CLIENT_FILE {str(path)!r} must hold a JSON object")
    client_id, client_secret = data.get("client_id"), data.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise ConfigError(f"RP_CLIENT_FILE {str(path)!r} needs string client_id and client_secret")
    return client_id, client_secret
