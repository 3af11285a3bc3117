"""Settings of the agent from the command line and ``UKEY_*`` environment variables.

The allowlist of origins is the security anchor of the whole design (docs/ukey.md §4): there is no
default origin, an http origin is accepted only on loopback (development), and the listening
address is fixed to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .modules import find_module

DEFAULT_PORT = 17443
BIND_ADDRESS = "127.0.0.1"
DEFAULT_PORTS = {"http": 80, "https": 443}


class ConfigError(ValueError):
    """The settings cannot give a safe agent; the message says what to change."""


def default_module() -> str | None:
    """The first known UKey vendor module on this machine (SoftHSM2 last, for development)."""
    return find_module(sys.platform)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_origin(value: str) -> str:
    """The origin as browsers serialise it in the ``Origin`` header (RFC 6454 §6.1): lower-case
    scheme and host, default port omitted, no path. Anything else is refused, so a typo cannot
    silently allow nothing or everything."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"not an origin: {value!r}") from error
    host = parts.hostname
    if parts.scheme not in DEFAULT_PORTS or not host:
        raise ConfigError(f"an origin must be http(s)://host[:port], got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"an origin has no path, query, fragment or user: {value!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError(f"http origins are accepted only on loopback (development): {value!r}")
    shown_host = f"[{host}]" if ":" in host else host
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{shown_host}"
    return f"{parts.scheme}://{shown_host}:{port}"


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """Everything the agent needs; checked on construction."""

    allowed_origins: tuple[str, ...]
    """Exact origins (``https://login.example.cn``) whose pages may use the agent."""

    port: int = DEFAULT_PORT
    """Listening port on 127.0.0.1 (0: an ephemeral port, for tests)."""

    bind: str = BIND_ADDRESS
    """Listening address; only 127.0.0.1 is accepted (the agent must not be reachable from the
    network, and the page expects ``http://127.0.0.1:<port>``)."""

    module: str | None = None
    """PKCS#11 module of the UKey vendor (the default is SoftHSM2, for development)."""

    skf_library: str | None = None
    """SKF (GM/T 0016) library for SM2 UKeys; when set it is used instead of ``module``."""

    rsa_pss: bool = False
    """Sign with PS256 instead of RS256 when the certificate's key is RSA."""

    dev_soft_token: str | None = None
    """Development only: a software token directory (certificate + PIN-encrypted key files)
    used instead of a UKey, for demos on machines without SoftHSM2."""

    def __post_init__(self) -> None:
        """Refuse an empty allowlist, non-normalised origins and any other bind address."""
        if not self.allowed_origins:
            raise ConfigError(
                "no allowed origin: download the agent from the provider's 客户端工具 page, "
                "or give --allow-origin https://<provider> or UKEY_ALLOWED_ORIGINS"
            )
        for origin in self.allowed_origins:
            if normalize_origin(origin) != origin:
                raise ConfigError(
                    f"origin {origin!r} is not normalised; use {normalize_origin(origin)!r}"
                )
        if self.bind != BIND_ADDRESS:
            raise ConfigError(f"the agent listens on {BIND_ADDRESS} only, not {self.bind!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"invalid port {self.port}")
        if not self.module and not self.skf_library and not self.dev_soft_token:
            raise ConfigError(
                "no UKey PKCS#11 module found (is the UKey driver installed?): "
                "give --module or UKEY_PKCS11_MODULE"
            )

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """``Host`` header values accepted (anything else is DNS rebinding or a proxy)."""
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})


def parser() -> argparse.ArgumentParser:
    """The command line of ``ukey-agent``."""
    p = argparse.ArgumentParser(
        prog="ukey-agent",
        description="UKey 助手: lets the allowed login pages have this PC's UKey sign a challenge.",
    )
    p.add_argument("--module", help="PKCS#11 library of the UKey (env UKEY_PKCS11_MODULE)")
    p.add_argument("--skf-library", help="SKF (GM/T 0016) library for SM2 UKeys (untested)")
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="page origin allowed to use the agent; repeatable (env UKEY_ALLOWED_ORIGINS, comma separated)",
    )
    p.add_argument(
        "--port", type=int, help=f"port on 127.0.0.1 (env UKEY_AGENT_PORT, default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--bind", default=BIND_ADDRESS, help="listen address: only 127.0.0.1 is accepted"
    )
    p.add_argument(
        "--rsa-pss", action="store_true", help="sign RSA keys with PS256 instead of RS256"
    )
    p.add_argument(
        "--dev-soft-token",
        metavar="DIR",
        help="DEVELOPMENT ONLY: sign with a software token directory instead of a UKey",
    )
    p.add_argument("--verbose", action="store_true", help="debug logging (the PIN is never logged)")
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--install",
        action="store_true",
        help="start the agent with the desktop session (Task Scheduler / XDG autostart), then run",
    )
    start.add_argument(
        "--uninstall", action="store_true", help="remove the autostart entry and exit"
    )
    return p


def _port(args: argparse.Namespace, env: Mapping[str, str], stamped: Mapping[str, Any]) -> int:
    if args.port is not None:
        return int(args.port)
    try:
        return int(env.get("UKEY_AGENT_PORT") or stamped.get("port") or DEFAULT_PORT)
    except ValueError as error:
        raise ConfigError(f"UKEY_AGENT_PORT is not a number: {env['UKEY_AGENT_PORT']!r}") from error


def _stamped_origins(stamped: Mapping[str, Any]) -> list[str]:
    origins = stamped.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigError("the stamped configuration's allowed_origins is not a list of origins")
    return origins


def config_from(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    stamped: Mapping[str, Any] | None = None,
) -> AgentConfig:
    """Command-line values win over the environment, which wins over the configuration the
    provider stamped into the downloaded bundle (``stamp.py``); origins normalised."""
    env = os.environ if environ is None else environ
    stamp = stamped or {}
    raw_origins: Sequence[str] = (
        args.allow_origin
        or [o for o in env.get("UKEY_ALLOWED_ORIGINS", "").split(",") if o.strip()]
        or _stamped_origins(stamp)
    )
    origins = tuple(dict.fromkeys(normalize_origin(o) for o in raw_origins))
    return AgentConfig(
        allowed_origins=origins,
        port=_port(args, env, stamp),
        bind=args.bind,
        module=args.module or env.get("UKEY_PKCS11_MODULE") or default_module(),
        skf_library=args.skf_library,
        rsa_pss=bool(args.rsa_pss),
        dev_soft_token=args.dev_soft_token,
    )
