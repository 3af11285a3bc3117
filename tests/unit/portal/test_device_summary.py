"""The browser and system a login session was opened with, as /account lists it."""

from __future__ import annotations

import pytest

from idp.portal.account import device_summary

AGENTS = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36": "Chrome · Windows",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0": "Edge · Windows",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15": "Safari · macOS",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.44": "微信 · iPhone",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0": "Firefox · Linux",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36": "Chrome · Android",
}


@pytest.mark.parametrize(("agent", "summary"), list(AGENTS.items()))
def test_known_browsers_and_systems(app, agent: str, summary: str) -> None:
    assert device_summary(agent) == summary


def test_an_unknown_or_missing_user_agent_says_so(app) -> None:
    assert device_summary("") == "未知浏览器"
    assert device_summary("curl/8.5.0") == "未知浏览器"
