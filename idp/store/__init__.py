"""Ephemeral store selected by ``IDP_STORE_BACKEND``."""

from __future__ import annotations

from flask import Flask

from idp import context
from idp.backends import STORES, load_backend
from idp.config import Settings
from idp.store.interface import EphemeralStore, StoreUnavailableError

BACKENDS = STORES

__all__ = ["EphemeralStore", "StoreUnavailableError", "init_app", "store"]


def init_app(app: Flask, settings: Settings) -> None:
    cls = load_backend(BACKENDS, settings.store_backend)
    app.extensions["idp.store"] = cls.from_settings(settings)


def store() -> EphemeralStore:
    value: EphemeralStore = context.app().extensions["idp.store"]
    return value
