"""Signing-key store selected by configuration (files now; PKCS#11 later)."""

from __future__ import annotations

from flask import Flask, current_app
from joserfc.jwk import KeySet

from idp.config import Settings
from idp.signing.files import FileKeyStore
from idp.signing.interface import KeyRef, KeyStore, NoSigningKeyError

__all__ = ["KeyRef", "KeyStore", "NoSigningKeyError", "init_app", "key_store", "published_keys"]


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["idp.keys"] = FileKeyStore.from_settings(settings)


def published_keys() -> KeySet:
    """The public JWKS as a joserfc key set, for verifying our own tokens."""
    return KeySet.import_key_set(key_store().public_jwks())  # type: ignore[arg-type]


def key_store() -> KeyStore:
    value: KeyStore = current_app.extensions["idp.keys"]
    return value
