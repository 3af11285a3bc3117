"""Typed settings read from ``IDP_*`` environment variables.

Every field has a safe default for the embedded development mode.  Outside development mode the
provider refuses to start with development-only parts (outbox SMS, generated secrets).
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp import context
from idp.backends import DEVELOPMENT_ONLY, KEY_STORES, REALNAME_VERIFIERS, SMS_GATEWAYS, STORES
from idp.proxies import parse_networks

ROOT = Path(__file__).resolve().parent.parent
BRAND_IMAGE_TYPES = {".svg", ".png", ".ico", ".jpg", ".jpeg", ".webp"}


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


COERCERS: dict[type | str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "int | None": _optional_int,
    "bool": _bool,
    "Path": Path,
    "str | None": str,
    "float": float,
}


# Settings that were replaced: naming the old one is refused with what to set instead.
RETIRED = {
    "IDP_TRUST_PROXY": "IDP_TRUST_PROXY was replaced by IDP_TRUSTED_PROXIES: list the addresses "
    "or networks of the TLS proxies in front (X-Forwarded-* from anyone else is ignored)",
}
# The test suite's own variables; never settings.
RESERVED_PREFIX = "IDP_TEST_"


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """An ``IDP_*`` variable that is no setting is a typo or a leftover: an ``IDP_DEVMODE=0``
    that silently left development mode on. Each is named, with the closest setting."""
    known = {f"IDP_{item.name.upper()}" for item in fields(Settings)}
    found = []
    for name in sorted(environ):
        if not name.startswith("IDP_") or name.startswith(RESERVED_PREFIX) or name in known:
            continue
        if name in RETIRED:
            found.append(RETIRED[name])
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        found.append(f"{name} is not a setting{hint}")
    return found


class ConfigError(RuntimeError):
    """The configuration is unusable; the message names the variable."""


def choice_problem(variable: str, value: str, choices: Mapping[str, object]) -> str | None:
    """The problem with ``value`` when it is not one of ``choices``, naming the variable."""
    if value in choices:
        return None
    names = sorted(choices)
    return f"{variable} must be {', '.join(names[:-1])} or {names[-1]}"


@dataclass(frozen=True)
class Settings:
    """Provider settings; each field is read from ``IDP_<FIELD NAME IN UPPER CASE>``."""

    issuer: str = field(
        default="http://127.0.0.1:5000",
        metadata={"doc": "Issuer URL (no trailing slash), also the public base URL."},
    )
    dev_mode: bool = field(
        default=True, metadata={"doc": "Development mode: enables /dev/sms and dev-only backends."}
    )
    instance_dir: Path = field(
        default=ROOT / "instance",
        metadata={"doc": "Directory for the embedded database, outbox and generated dev secrets."},
    )
    brand_name: str = field(
        default="",
        metadata={
            "doc": "Platform name in the page header and titles; empty means 统一认证登录平台."
        },
    )
    brand_name_en: str = field(
        default="", metadata={"doc": "The platform name on English pages; empty means brand_name."}
    )
    brand_logo: Path = field(
        default=Path(""),
        metadata={
            "doc": "Logo image (SVG or PNG) beside the name; empty means the built-in emblem."
        },
    )
    brand_favicon: Path = field(
        default=Path(""),
        metadata={"doc": "Favicon (SVG, PNG or ICO); empty means the built-in one."},
    )
    footer_sponsor: str = field(default="", metadata={"doc": "Footer line 主办单位 (sponsor)."})
    footer_support: str = field(default="", metadata={"doc": "Footer line 技术支持 (operator)."})
    footer_hotline: str = field(default="", metadata={"doc": "Footer line 服务热线 (help desk)."})
    footer_icp: str = field(
        default="", metadata={"doc": "ICP filing number (ICP备案号), linked to beian.miit.gov.cn."}
    )
    help_url: str = field(default="", metadata={"doc": "Help page linked in the footer (帮助)."})
    database_url: str = field(
        default="", metadata={"doc": "SQLAlchemy URL; empty means SQLite at instance/idp.sqlite3."}
    )
    secret_key: str = field(
        default="",
        metadata={
            "doc": "Flask secret for CSRF; generated into instance/ in dev mode, required otherwise."
        },
    )
    store_backend: str = field(default="sql", metadata={"doc": "Ephemeral store: sql or redis."})
    redis_url: str = field(
        default="redis://127.0.0.1:6379/0", metadata={"doc": "Redis URL for store_backend=redis."}
    )
    sms_backend: str = field(
        default="outbox", metadata={"doc": "SMS gateway: outbox (dev), aliyun or tencent."}
    )
    sms_outbox: Path = field(
        default=Path(""),
        metadata={"doc": "Outbox JSON-lines file; empty means instance/sms-outbox.jsonl."},
    )
    sms_queue_name: str = field(
        default="idp_sms",
        metadata={
            "doc": "Name of the SMS delivery queue (letters, digits, _; keys huey.*.<name> on Redis)."
        },
    )
    sms_queue_file: Path = field(
        default=Path(""),
        metadata={
            "doc": "SQLite file of the SMS delivery queue with the SQL store; empty means instance/sms-queue.sqlite3."
        },
    )
    sms_retries: int = field(
        default=3, metadata={"doc": "Retries of a failed SMS delivery before the worker gives up."}
    )
    sms_retry_delay: float = field(
        default=2.0,
        metadata={
            "doc": "Seconds before the first retry of a failed SMS delivery; each later wait is 3 times longer."
        },
    )
    backchannel_logout_retries: int = field(
        default=5,
        metadata={"doc": "Retries of a back-channel logout notice a relying party did not accept."},
    )
    backchannel_logout_retry_delay: float = field(
        default=5.0,
        metadata={
            "doc": "Seconds before the first retry of a back-channel logout notice; each later wait is 3 times longer."
        },
    )
    backchannel_logout_timeout: float = field(
        default=5.0,
        metadata={"doc": "Seconds a relying party has to answer a back-channel logout notice."},
    )
    sms_endpoint: str = field(
        default="", metadata={"doc": "SMS API base URL; empty means the vendor's public endpoint."}
    )
    sms_access_key_id: str = field(
        default="", metadata={"doc": "Aliyun AccessKeyId or Tencent SecretId."}
    )
    sms_access_key_secret: str = field(
        default="", metadata={"doc": "Aliyun AccessKeySecret or Tencent SecretKey."}
    )
    sms_sign_name: str = field(default="", metadata={"doc": "Registered SMS signature name."})
    sms_app_id: str = field(default="", metadata={"doc": "Tencent SmsSdkAppId."})
    sms_region: str = field(default="ap-guangzhou", metadata={"doc": "Tencent region."})
    sms_template_login: str = field(
        default="", metadata={"doc": "Vendor template id for login codes."}
    )
    sms_template_password: str = field(
        default="", metadata={"doc": "Vendor template id for initial passwords."}
    )
    sms_template_join: str = field(
        default="",
        metadata={"doc": "Vendor template id for the code of a join request (用户审核)."},
    )
    sms_template_join_rejected: str = field(
        default="",
        metadata={"doc": "Vendor template id telling an applicant the request was rejected."},
    )
    sms_template_operator_added: str = field(
        default="",
        metadata={
            "doc": "Vendor template id telling an existing person they were added to an org."
        },
    )
    sms_template_password_changed: str = field(
        default="",
        metadata={
            "doc": "Vendor template id telling a person their password was changed and their "
            "other logins ended."
        },
    )
    sms_template_password_reset: str = field(
        default="",
        metadata={
            "doc": "Vendor template id for the code of a forgotten-password reset (忘记密码)."
        },
    )
    key_store: str = field(
        default="files",
        metadata={
            "doc": "Signing-key store: files (JWK files in keys_dir) or pkcs11 (keys generated and used inside an HSM or token)."
        },
    )
    keys_dir: Path = field(
        default=ROOT / "keys" / "signing",
        metadata={"doc": "Directory of signing keys (JWK files, mode 0600) for key_store=files."},
    )
    pkcs11_module: str = field(
        default="",
        metadata={"doc": "Path of the HSM's PKCS#11 module (.so) for key_store=pkcs11."},
    )
    pkcs11_token_label: str = field(
        default="",
        metadata={
            "doc": "Label of the token (HSM partition) holding the signing keys; set this or pkcs11_slot."
        },
    )
    pkcs11_slot: int | None = field(
        default=None,
        metadata={
            "doc": "Slot id of that token, for an HSM whose slot ids are stable; set this or pkcs11_token_label."
        },
    )
    pkcs11_pin: str = field(
        default="",
        repr=False,
        metadata={"doc": "User PIN of the token; set this or pkcs11_pin_file (preferred)."},
    )
    pkcs11_pin_file: str = field(
        default="",
        metadata={
            "doc": "File whose first line is the token's user PIN, readable by the provider only."
        },
    )
    jwks_max_age: int = field(
        default=300,
        metadata={
            "doc": "Seconds relying parties may cache the JWKS (its max-age); a new signing key is published this long before it may sign."
        },
    )
    access_token_ttl: int = field(
        default=600, metadata={"doc": "Access token lifetime in seconds."}
    )
    id_token_ttl: int = field(default=600, metadata={"doc": "ID token lifetime in seconds."})
    refresh_token_idle_ttl: int = field(
        default=8 * 3600, metadata={"doc": "Refresh token idle lifetime in seconds."}
    )
    refresh_token_absolute_ttl: int = field(
        default=7 * 86400, metadata={"doc": "Refresh token absolute lifetime in seconds."}
    )
    code_ttl: int = field(default=60, metadata={"doc": "Authorization code lifetime in seconds."})
    session_idle_ttl: int = field(
        default=30 * 60, metadata={"doc": "Login session idle lifetime in seconds."}
    )
    session_absolute_ttl: int = field(
        default=12 * 3600, metadata={"doc": "Login session absolute lifetime in seconds."}
    )
    admin_session_idle_ttl: int = field(
        default=15 * 60, metadata={"doc": "Platform admin session idle lifetime in seconds."}
    )
    admin_session_absolute_ttl: int = field(
        default=4 * 3600, metadata={"doc": "Platform admin session absolute lifetime in seconds."}
    )
    admin_step_up_seconds: int = field(
        default=5 * 60,
        metadata={"doc": "How long a re-entered TOTP code allows destructive admin actions."},
    )
    password_time_cost: int = field(
        default=2, metadata={"doc": "Argon2id passes per password hash (OWASP minimum: 2)."}
    )
    password_memory_kib: int = field(
        default=19 * 1024,
        metadata={"doc": "Argon2id memory per password hash in KiB (OWASP minimum: 19456)."},
    )
    password_parallelism: int = field(
        default=1, metadata={"doc": "Argon2id lanes per password hash (OWASP minimum: 1)."}
    )
    lockout_threshold: int = field(
        default=5, metadata={"doc": "Wrong passwords before the account is locked."}
    )
    lockout_seconds: int = field(
        default=15 * 60, metadata={"doc": "How long a locked account stays locked."}
    )
    sms_ip_hourly_limit: int = field(
        default=30,
        metadata={"doc": "SMS code requests per client network (IPv4 address, IPv6 /64) per hour."},
    )
    sms_phone_daily_limit: int = field(
        default=30,
        metadata={
            "doc": "SMS codes per phone per day from all browsers together, except browsers that have logged in as that phone before (each browser and network also has 10 of its own)."
        },
    )
    sms_global_hourly_limit: int = field(
        default=1000,
        metadata={
            "doc": "SMS codes per hour in total (the SMS budget), except to browsers that have logged in as the phone before."
        },
    )
    login_ip_limit: int = field(
        default=50,
        metadata={
            "doc": "Login attempts per client network (IPv4 address, IPv6 /64) across phones per IDP_LOCKOUT_SECONDS; browsers that have logged in as the phone before are exempt."
        },
    )
    registration_ip_limit: int = field(
        default=30,
        metadata={
            "doc": "Requests to the dynamic client registration endpoints (/oauth/register and the RFC 7592 client URIs) per client network per hour."
        },
    )
    data_key: str = field(
        default="",
        metadata={
            "doc": "Key (urlsafe base64, 32 bytes) sealing secrets at rest (OTP seeds, legacy keys); generated into instance/ in dev mode, required otherwise."
        },
    )
    trust_dir: Path = field(
        default=ROOT / "keys" / "trust",
        metadata={
            "doc": "Trust anchors (*.pem, *.cer) and CRL files (*.crl) for UKey certificates."
        },
    )
    cert_uscc_order: str = field(
        default="ext:1.2.156.10260.4.1.4,ext:1.2.156.1.8888.148",
        metadata={
            "doc": "Organisation-certificate extensions (ext:<OID>) holding the USCC, in order; subject attributes only per issuer in keys/trust/uscc-order.json."
        },
    )
    cert_fetch_revocation: bool = field(
        default=True,
        metadata={
            "doc": "Fetch CRLs from the certificate's distribution points (and OCSP when cert_ocsp)."
        },
    )
    cert_ocsp: bool = field(
        default=False, metadata={"doc": "Also ask the certificate's OCSP responder."}
    )
    cert_clock_skew: int = field(
        default=60,
        metadata={"doc": "Tolerance in seconds for the signed timestamp of a certificate login."},
    )
    ukey_agent_url: str = field(
        default="http://127.0.0.1:17443",
        metadata={"doc": "Where the login page looks for the local UKey agent."},
    )
    ukey_agent_download_url: str = field(
        default="/ukey/agent",
        metadata={"doc": "Download / installation page of the UKey agent (客户端工具)."},
    )
    agent_dist_dir: Path = field(
        default=Path(""),
        metadata={
            "doc": "Directory of the UKey agent bundles (客户端工具) offered on /ukey/agent (make agent-dist builds them); empty: none offered."
        },
    )
    legacy_bind_lockout_seconds: int = field(
        default=15 * 60, metadata={"doc": "Lock time after 5 wrong legacy-binding tries."}
    )
    realname_backend: str = field(
        default="sandbox",
        metadata={"doc": "Real-name check (手机二要素): sandbox (dev), tencent or aliyun."},
    )
    realname_sandbox_file: Path = field(
        default=Path(""),
        metadata={
            "doc": "Sandbox pairs file (name,phone per line; other pairs are a mismatch; a line !unavailable[,phone] simulates an outage); empty means instance/realname-sandbox.csv."
        },
    )
    realname_endpoint: str = field(
        default="",
        metadata={"doc": "Real-name API base URL; empty means the vendor's public endpoint."},
    )
    realname_access_key_id: str = field(
        default="",
        metadata={"doc": "Tencent SecretId / Aliyun AccessKeyId for the real-name check."},
    )
    realname_access_key_secret: str = field(
        default="",
        metadata={"doc": "Tencent SecretKey / Aliyun AccessKeySecret for the real-name check."},
    )
    realname_auth_code: str = field(
        default="", metadata={"doc": "Aliyun Dytnsapi AuthCode of the two-element check."}
    )
    realname_admin_mismatch_limit: int = field(
        default=10,
        metadata={"doc": "Real-name checks without a match an org admin may make per hour."},
    )
    realname_org_daily_limit: int = field(
        default=100, metadata={"doc": "Real-name checks per organisation per day."}
    )
    realname_ip_hourly_limit: int = field(
        default=20, metadata={"doc": "Real-name checks per client network per hour."}
    )
    realname_phone_daily_limit: int = field(
        default=5, metadata={"doc": "Real-name checks of one phone number per day."}
    )
    realname_alert_after: int = field(
        default=3,
        metadata={"doc": "Refused real-name checks of one actor in an hour before an alert event."},
    )
    realname_timeout: float = field(
        default=5.0, metadata={"doc": "Seconds before a real-name check counts as unavailable."}
    )
    join_request_ttl: int = field(
        default=7 * 86400,
        metadata={
            "doc": "Seconds a staff request to join an org (用户审核) waits before it expires."
        },
    )
    trusted_proxies: str = field(
        default="",
        metadata={
            "doc": "Addresses or networks of the TLS proxies in front (e.g. 10.0.0.5,10.1.0.0/16); X-Forwarded-For/Proto/Host are believed only from them. Empty: nobody."
        },
    )
    metrics_networks: str = field(
        default="127.0.0.1/32,::1/128",
        metadata={
            "doc": "Comma-separated networks allowed to read /metrics (the address after the proxy hop); empty allows none but the bearer token."
        },
    )
    metrics_token: str = field(
        default="",
        metadata={
            "doc": "Bearer token that also allows reading /metrics from anywhere; empty: none."
        },
    )
    log_format: str = field(
        default="json", metadata={"doc": "Log lines as json (one object per line) or text."}
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``IDP_*`` variables; explicit overrides win. Unusable settings
        are a ConfigError listing every problem."""
        settings = cls.read_env(environ, **overrides)
        settings.validate()
        return settings

    @classmethod
    def read_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Like ``from_env`` without the validation, so ``idp check`` can list every problem
        instead of stopping at the first; only unparsable values are a ConfigError here."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        unparsable = unknown_variables(environ)
        for item in fields(cls):
            name = f"IDP_{item.name.upper()}"
            if name in environ:
                try:
                    values[item.name] = COERCERS[str(item.type)](environ[name])
                except ValueError as error:
                    unparsable.append(f"{name}: {error}")
        if unparsable:
            raise ConfigError("\n".join(unparsable))
        values.update(overrides)
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        """Fill derived defaults (paths under instance/, dev secrets); ``validate`` judges them."""
        instance = Path(self.instance_dir)
        changes: dict[str, Any] = {"issuer": self.issuer.rstrip("/")}
        if not self.database_url:
            instance.mkdir(parents=True, exist_ok=True)
            changes["database_url"] = f"sqlite:///{instance / 'idp.sqlite3'}"
        if not str(self.sms_outbox) or str(self.sms_outbox) == ".":
            changes["sms_outbox"] = instance / "sms-outbox.jsonl"
        if not str(self.sms_queue_file) or str(self.sms_queue_file) == ".":
            changes["sms_queue_file"] = instance / "sms-queue.sqlite3"
        if not str(self.realname_sandbox_file) or str(self.realname_sandbox_file) == ".":
            changes["realname_sandbox_file"] = instance / "realname-sandbox.csv"
        if not self.secret_key and self.dev_mode:
            changes["secret_key"] = _dev_secret(instance, "dev-secret-key")
        if not self.data_key and self.dev_mode:
            changes["data_key"] = _dev_secret(instance, "dev-data-key", fernet=True)
        return _replace(self, changes)

    def validate(self) -> None:
        """Refuse combinations that are unsafe or unusable: a ConfigError naming each one."""
        problems = self.problems()
        if problems:
            raise ConfigError("\n".join(problems))

    def problems(self) -> list[str]:
        """Every reason these settings are refused, each naming the variable to set; empty
        when they are usable. ``idp check`` adds what only a deployment can tell."""
        choices = [
            choice_problem("IDP_STORE_BACKEND", self.store_backend, STORES),
            choice_problem("IDP_SMS_BACKEND", self.sms_backend, SMS_GATEWAYS),
            choice_problem("IDP_REALNAME_BACKEND", self.realname_backend, REALNAME_VERIFIERS),
        ]
        negative = (
            min(
                self.sms_retries,
                self.sms_retry_delay,
                self.backchannel_logout_retries,
                self.backchannel_logout_retry_delay,
            )
            < 0
        )
        return [
            *filter(None, choices),
            *(
                ["retries and retry delays (IDP_*_RETRIES, IDP_*_RETRY_DELAY) must not be negative"]
                if negative
                else []
            ),
            *self.key_store_problems(),
            *self.range_problems(),
            *self.brand_problems(),
            *self.proxy_problems(),
            *self.observability_problems(),
            *self._development_only_problems(),
        ]

    def observability_problems(self) -> list[str]:
        """An unknown log format or an unparsable /metrics network."""
        found = []
        if self.log_format not in ("json", "text"):
            found.append(f"IDP_LOG_FORMAT must be json or text, not {self.log_format!r}")
        for network in filter(None, (part.strip() for part in self.metrics_networks.split(","))):
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                found.append(f"IDP_METRICS_NETWORKS: {network!r} is not a network")
        return found

    def _development_only_problems(self) -> list[str]:
        if self.dev_mode:
            # Development mode shows every SMS code at /dev/sms: it must stay on this machine.
            host = urlsplit(self.issuer).hostname or ""
            if not is_loopback_host(host):
                return [
                    "IDP_ISSUER must be a loopback URL (127.0.0.1, localhost, [::1]) in "
                    "development mode; set IDP_DEV_MODE=0 to serve others"
                ]
            return []
        found = [
            f"IDP_{name.upper()} must be set outside development mode"
            for name in ("secret_key", "data_key")
            if not getattr(self, name)
        ]
        for variable, name, registry in (
            ("IDP_REALNAME_BACKEND", self.realname_backend, REALNAME_VERIFIERS),
            ("IDP_SMS_BACKEND", self.sms_backend, SMS_GATEWAYS),
        ):
            if name in DEVELOPMENT_ONLY:
                real = " or ".join(sorted(set(registry) - DEVELOPMENT_ONLY))
                found.append(
                    f"{variable}={name} is for development only (IDP_DEV_MODE=1); set {real}"
                )
        if not self.issuer.startswith("https://"):
            found.append("IDP_ISSUER must be an https URL outside development mode")
        return found

    def key_store_problems(self) -> list[str]:
        """A known key store; the PKCS#11 one needs its module, exactly one way to find the
        token and exactly one source of the PIN."""
        problem = choice_problem("IDP_KEY_STORE", self.key_store, KEY_STORES)
        if problem or self.key_store != "pkcs11":
            return [problem] if problem else []
        found = []
        if not self.pkcs11_module:
            found.append(
                "IDP_PKCS11_MODULE must name the HSM's PKCS#11 module for IDP_KEY_STORE=pkcs11"
            )
        if bool(self.pkcs11_token_label) == (self.pkcs11_slot is not None):
            found.append(
                "set one of IDP_PKCS11_TOKEN_LABEL and IDP_PKCS11_SLOT for IDP_KEY_STORE=pkcs11"
            )
        if bool(self.pkcs11_pin) == bool(self.pkcs11_pin_file):
            found.append(
                "set one of IDP_PKCS11_PIN_FILE and IDP_PKCS11_PIN for IDP_KEY_STORE=pkcs11"
            )
        return found

    def range_problems(self) -> list[str]:
        """Limits, lifetimes and thresholds are whole numbers of at least 1: a 0 there would
        lock everyone out or let everything through."""
        return [
            f"IDP_{item.name.upper()} must be at least 1 (got {getattr(self, item.name)})"
            for item in fields(self)
            if str(item.type) == "int"
            and item.name.endswith(("_limit", "_ttl", "_after"))
            and getattr(self, item.name) < 1
        ]

    def proxy_problems(self) -> list[str]:
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as error:
            return [f"IDP_TRUSTED_PROXIES: {error}"]
        return []

    def brand_problems(self) -> list[str]:
        """A configured logo or favicon must be an image file that exists."""
        found = []
        for variable, path in (
            ("IDP_BRAND_LOGO", self.brand_logo),
            ("IDP_BRAND_FAVICON", self.brand_favicon),
        ):
            if str(path) in {"", "."}:
                continue
            if path.suffix.lower() not in BRAND_IMAGE_TYPES:
                kinds = ", ".join(sorted(BRAND_IMAGE_TYPES))
                found.append(f"{variable} must be an image file ({kinds}): {path}")
            elif not path.is_file():
                found.append(f"{variable} is not a readable file: {path}")
        return found

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")


def _replace(settings: Settings, changes: dict[str, Any]) -> Settings:
    values = {item.name: getattr(settings, item.name) for item in fields(settings)}
    values.update(changes)
    return Settings(**values)


def _dev_secret(instance: Path, name: str, *, fernet: bool = False) -> str:
    """A per-checkout development secret kept in instance/, never committed."""
    path = instance / name
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        value = (
            base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            if fernet
            else secrets.token_urlsafe(48)
        )
        path.write_text(value)
        path.chmod(0o600)
    return path.read_text().strip()


def settings() -> Settings:
    """The settings of the current app."""
    value: Settings = context.app().extensions["idp"]
    return value
