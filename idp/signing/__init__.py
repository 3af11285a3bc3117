"""Signing-key store selected by configuration (files now; PKCS#11 later)."""

from __future__ import annotations

from flask import Flask, current_app

from idp.config import Settings
from idp.signing.files import FileKeyStore
from idp.signing.interface import KeyRef, KeyStore, NoSigningKeyError

__all__ = ["KeyRef", "KeyStore", "NoSigningKeyError", "init_app", "key_store"]


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["idp.keys"] = FileKeyStore.from_settings(settings)


def key_store() -> KeyStore:
    value: KeyStore = current_app.extensions["idp.keys"]
    return value
