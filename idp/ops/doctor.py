"""The configuration check: what ``idp check`` prints and what stops ``create_app`` in
production mode. Every problem is one line naming the variable to set.

Always: what ``Settings.problems`` refuses (unknown backends; outside development mode the
outbox SMS gateway, the sandbox real-name check, a non-https issuer, missing secrets;
incomplete PKCS#11 settings), a half-configured SMS or real-name vendor (the backends' own
checks), and key material the key store cannot read. In production mode (``IDP_DEV_MODE=0``)
also: development or weak secrets, SQLite, and the SQL store where Redis is expected.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from idp.backends import DEVELOPMENT_ONLY, REALNAME_VERIFIERS, SMS_GATEWAYS, load_backend
from idp.config import ConfigError, Settings
from idp.signing import KeyStoreUnavailableError, open_key_store

MIN_SECRET_LENGTH = 32
RANDOM_VALUE_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
FERNET_KEY_COMMAND = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)
VENDOR_BACKENDS = ((SMS_GATEWAYS, "sms_backend"), (REALNAME_VERIFIERS, "realname_backend"))


def problems(settings: Settings) -> list[str]:
    """Every reason the provider should not run with ``settings``; empty when it may."""
    found = [*settings.problems(), *backend_problems(settings), *key_material_problems(settings)]
    if not settings.dev_mode:
        found += production_problems(settings)
    return found


def refuse_to_start(settings: Settings) -> None:
    """What ``create_app`` runs in production mode: a ConfigError listing every problem."""
    found = problems(settings)
    if found:
        raise ConfigError("\n".join(found))


def production_problems(settings: Settings) -> list[str]:
    return [
        *_secret_problems(settings),
        *_data_key_problems(settings),
        *_database_problems(settings),
        *_store_problems(settings),
    ]


def backend_problems(settings: Settings) -> list[str]:
    """The SMS gateway's and real-name check's own refusals (vendor credentials, templates,
    endpoints), collected instead of stopping at the first."""
    found = []
    for registry, setting in VENDOR_BACKENDS:
        name = getattr(settings, setting)
        if name not in registry or name in DEVELOPMENT_ONLY:
            continue  # unknown: a problem of the settings; development ones check nothing
        try:
            load_backend(registry, name).from_settings(settings)
        except ConfigError as error:
            found.append(str(error))
    return found


def key_material_problems(settings: Settings) -> list[str]:
    """Open the key store as the provider would and read every key once."""
    if settings.key_store_problems():
        return []  # the settings already say what to set
    try:
        key_store = open_key_store(settings)
    except ConfigError as error:  # KeyMaterialError: module, token, PIN, PIN file
        return [str(error)]
    try:
        key_store.keys()
    except ConfigError as error:  # an unreadable or foreign key
        return [str(error)]
    except KeyStoreUnavailableError as error:
        return [f"IDP_KEY_STORE: the key store stopped answering ({error.detail})"]
    finally:
        key_store.close()
    return []


def _secret_problems(settings: Settings) -> list[str]:
    secret = settings.secret_key
    if not secret:
        return []  # Settings.problems says it must be set
    if _is_development_secret(settings, "dev-secret-key", secret):
        return [
            f"IDP_SECRET_KEY is the development secret from {Path(settings.instance_dir)}/"
            f"dev-secret-key; set a new random value ({RANDOM_VALUE_COMMAND})"
        ]
    if len(secret) < MIN_SECRET_LENGTH:
        return [
            f"IDP_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters; set a random "
            f"value ({RANDOM_VALUE_COMMAND})"
        ]
    return []


def _data_key_problems(settings: Settings) -> list[str]:
    key = settings.data_key
    if not key:
        return []
    if _is_development_secret(settings, "dev-data-key", key):
        return [
            f"IDP_DATA_KEY is the development key from {Path(settings.instance_dir)}/"
            f"dev-data-key; set a key of its own ({FERNET_KEY_COMMAND}) before anything is sealed"
        ]
    try:
        Fernet(key.encode())
    except ValueError:
        return [
            f"IDP_DATA_KEY is not a Fernet key (urlsafe base64 of 32 bytes): {FERNET_KEY_COMMAND}"
        ]
    return []


def _is_development_secret(settings: Settings, name: str, value: str) -> bool:
    """The value ``make run`` generated into instance/ for this checkout."""
    path = Path(settings.instance_dir) / name
    try:
        return path.read_text().strip() == value
    except OSError:
        return False


def _database_problems(settings: Settings) -> list[str]:
    if not settings.database_url.startswith("sqlite"):
        return []
    return [
        "IDP_DATABASE_URL is SQLite, for one process in development; set a PostgreSQL URL "
        "(postgresql+psycopg://user@host/database)"
    ]


def _store_problems(settings: Settings) -> list[str]:
    if settings.store_backend != "sql":
        return []
    return [
        "IDP_STORE_BACKEND=sql puts the ephemeral store (codes, counters, login sessions) in "
        "the database; production uses Redis: set IDP_STORE_BACKEND=redis and IDP_REDIS_URL"
    ]
