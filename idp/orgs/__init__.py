"""Organisations: identities, operator memberships (registration and consoles build on them)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Views arrive with the registration wizard and the org admin console."""
