"""Relying-party products against the provider, configured as docs/relying-parties.md says.

The provider runs as the other tests run it (tests/conftest.py's ``app``, development mode) on
a real HTTP server on 127.0.0.1; each product talks to it over HTTP like a deployed relying
party, and a person's browser is a ``requests`` session. Apache with mod_auth_openidc is
Debian's package (``apt-get install apache2 libapache2-mod-auth-openidc``); where it is absent
its tests are skipped, and under IDP_TEST_REQUIRE_ALL=1 they fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.browser.conftest import LiveServer
from tests.conftest import drain_sms_queue, register
from tests.flows import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "relying-parties.md"
# The placeholders of the guide's examples, replaced by the test's own addresses.
GUIDE_ISSUER = "https://login.example.gov.cn"
GUIDE_RP = "https://funds.example.gov.cn"


def guide_block(language: str, marker: str) -> str:
    """The fenced ``language`` block of the guide whose first line contains ``marker``."""
    text = GUIDE.read_text(encoding="utf-8")
    for block in re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL):
        if marker in block.splitlines()[0]:
            return str(block)
    raise AssertionError(f"no ```{language} block marked {marker!r} in {GUIDE}")


@pytest.fixture
def provider_server() -> Iterator[LiveServer]:
    server = LiveServer()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(provider_server: LiveServer) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{provider_server.port}"}


@dataclass(frozen=True)
class Provider:
    url: str
    app: Flask
    phone: str
    password: str

    def register(self, metadata: dict[str, Any]) -> Any:
        return register(self.app, metadata)


@pytest.fixture
def provider(app: Flask, provider_server: LiveServer, operator: Any) -> Provider:
    """The provider over HTTP, with an operator who has changed the initial password."""
    provider_server.start(app)
    return Provider(
        url=f"http://127.0.0.1:{provider_server.port}",
        app=app,
        phone=operator.phone,
        password=PASSWORD,
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no csrf_token on the page"
    return match.group(1)


def log_in_on_provider_page(
    browser: requests.Session, provider: Provider, login_page: requests.Response, outbox: Any
) -> requests.Response:
    """On the provider's login page (where a relying party sent the browser): phone, password,
    the SMS code from the development outbox; follows the redirects back to the relying party."""
    assert login_page.status_code == 200, login_page.text[:300]
    assert login_page.url.startswith(f"{provider.url}/login?interaction="), login_page.url
    interaction = re.search(r"interaction=([^&]+)", login_page.url)
    assert interaction is not None
    token = csrf_of(login_page.text)
    sent = browser.post(
        f"{provider.url}/login/sms-code", data={"phone": provider.phone, "csrf_token": token}
    )
    assert sent.status_code == 200, sent.text
    drain_sms_queue(provider.app)
    code = outbox.last(provider.phone, "login")["code"]
    return browser.post(
        f"{provider.url}/login",
        data={
            "phone": provider.phone,
            "password": provider.password,
            "sms_code": code,
            "csrf_token": token,
            "interaction": interaction.group(1),
        },
    )
