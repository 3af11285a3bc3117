"""Fixtures of the operator-login tests.

The shared ``app`` fixture keeps an app context pushed for the whole test, and Flask reuses a
pushed app context for every request made in the same thread: ``g`` (the login session cache,
the request's database session, the CSRF token, the audit events to replay) would then carry
over from one request to the next, which no real browser request ever sees. ``IsolatedClient``
runs each request in an empty ``contextvars`` context, so each gets its own app context, as in
production. The test's own ``db.session()`` is then a separate session: read committed state
with ``helpers.fresh``/``helpers.audit_events``.

``cheap_argon2`` keeps Argon2id but with test-sized costs: the production profile (64 MiB, 3
passes) takes ~0.3 s a hash on a loaded CI machine, and these tests hash and verify hundreds of
times. tests/unit/auth/test_passwords.py checks the production parameters.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from flask import Flask

from tests.integration.auth.helpers import IsolatedClient


@pytest.fixture
def app(app: Flask) -> Flask:
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.auth import passwords

    monkeypatch.setattr(
        passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
