"""Contract suites talk to local fakes on 127.0.0.1."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy configured in the environment must not intercept the loopback fakes."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
