"""Fixtures of every integration test.

``cheap_argon2`` keeps Argon2id but with test-sized costs: the production profile (64 MiB, 3
passes) takes ~0.3 s a hash on a loaded CI machine, and these tests hash and verify hundreds of
times. tests/unit/auth/test_passwords.py checks the production parameters.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.auth import passwords

    monkeypatch.setattr(passwords, "current_hasher", lambda: passwords._hasher(1, 1024, 1))
