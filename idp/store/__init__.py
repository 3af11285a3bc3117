"""Ephemeral store selected by ``IDP_STORE_BACKEND``."""

from __future__ import annotations

from flask import Flask, current_app

from idp.backends import load_backend
from idp.config import Settings
from idp.store.interface import EphemeralStore, StoreUnavailableError

BACKENDS = {"sql": "idp.store.sql:SqlStore", "redis": "idp.store.redis:RedisStore"}

__all__ = ["EphemeralStore", "StoreUnavailableError", "init_app", "store"]


def init_app(app: Flask, settings: Settings) -> None:
    cls = load_backend(BACKENDS, settings.store_backend)
    app.extensions["idp.store"] = cls.from_settings(settings)


def store() -> EphemeralStore:
    value: EphemeralStore = current_app.extensions["idp.store"]
    return value
