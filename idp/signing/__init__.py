"""Signing-key store selected by ``IDP_KEY_STORE``: JWK files or a PKCS#11 token (HSM)."""

from __future__ import annotations

from flask import Flask
from joserfc.jwk import KeySet

from idp import context
from idp.backends import KEY_STORES, load_backend
from idp.config import Settings
from idp.signing.interface import (
    ALGORITHMS,
    KeyMaterialError,
    KeyRef,
    KeyStore,
    KeyStoreUnavailableError,
    NoSigningKeyError,
)

__all__ = [
    "ALGORITHMS",
    "KeyMaterialError",
    "KeyRef",
    "KeyStore",
    "KeyStoreUnavailableError",
    "NoSigningKeyError",
    "init_app",
    "key_store",
    "open_key_store",
    "published_keys",
]


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["idp.keys"] = open_key_store(settings)


def open_key_store(settings: Settings) -> KeyStore:
    """The configured store; a PKCS#11 store logs in to its token here (KeyMaterialError
    naming the setting when the module, token or PIN does not work)."""
    store: KeyStore = load_backend(KEY_STORES, settings.key_store).from_settings(settings)
    return store


def published_keys() -> KeySet:
    """The public JWKS as a joserfc key set, for verifying our own tokens."""
    return KeySet.import_key_set(key_store().public_jwks())  # type: ignore[arg-type]


def key_store() -> KeyStore:
    value: KeyStore = context.app().extensions["idp.keys"]
    return value
