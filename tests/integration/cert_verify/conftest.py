"""The test PKI, built once per worker (see tests/pki.py)."""

from __future__ import annotations

import pytest

from tests.pki import TestPki, shared_pki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return shared_pki()
