"""Fixtures of the platform admin console tests. Requests go through ``IsolatedClient`` (a fresh
app context per request); tests read committed state in sessions of their own (``helpers``).

- ``platform_admin``: an account made as ``idp admins add`` makes it, authenticator not bound;
- ``enrolled``: the browser (``client``) has bound the authenticator and is logged in; the
  fixture's value is the TOTP secret.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.integration.admin.helpers import enrol, make_admin


@pytest.fixture
def platform_admin(app: Flask) -> None:
    make_admin()


@pytest.fixture
def enrolled(client: FlaskClient, platform_admin: None) -> str:
    secret, codes, response = enrol(client)
    assert response.status_code == 200 and len(codes) == 10
    return secret
