"""Real-name check selected by ``IDP_REALNAME_BACKEND``."""

from __future__ import annotations

from flask import Flask

from idp import context
from idp.backends import REALNAME_VERIFIERS, load_backend
from idp.config import Settings
from idp.realname.interface import RealNameUnavailableError, RealNameVerifier, Verdict

BACKENDS = REALNAME_VERIFIERS

__all__ = ["RealNameUnavailableError", "RealNameVerifier", "Verdict", "init_app", "verifier"]


def init_app(app: Flask, settings: Settings) -> None:
    cls = load_backend(BACKENDS, settings.realname_backend)
    app.extensions["idp.realname"] = cls.from_settings(settings)


def verifier() -> RealNameVerifier:
    value: RealNameVerifier = context.app().extensions["idp.realname"]
    return value
