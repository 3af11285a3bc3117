"""Who the client is behind TLS proxies (IDP_TRUSTED_PROXIES), and development mode answering
this machine only."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.proxies import client_address, parse_networks
from idp.security import client_ip

TRUSTED = parse_networks("127.0.0.1, 10.1.0.0/16")


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", "127.9.9.9", "127.9.9.9"),  # one trusted hop
        ("127.0.0.1", "127.6.6.6, 127.9.9.9", "127.9.9.9"),  # the client wrote the left one
        ("127.0.0.1", "127.9.9.9, 10.1.2.3", "127.9.9.9"),  # two proxies of ours
        ("127.0.0.1", "garbage", "garbage"),  # not an address: never a trusted proxy
        ("127.0.0.1", "10.1.2.3", "10.1.2.3"),  # only proxies: the farthest one
    ],
)
def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(peer, forwarded, client):
    assert client_address(peer, forwarded, TRUSTED) == client


def observed(app: Flask, peer: str, headers: dict[str, str]) -> tuple[str, str, str]:
    """What the app sees of a request from ``peer`` with ``headers``."""
    seen: dict[str, str] = {}

    @app.get("/_seen")
    def _seen() -> str:
        from flask import request

        seen.update(ip=client_ip(), scheme=request.scheme, host=request.host)
        return ""

    app.test_client().get("/_seen", headers=headers, environ_base={"REMOTE_ADDR": peer})
    return seen["ip"], seen["scheme"], seen["host"]


FORWARDED = {
    "X-Forwarded-For": "127.6.6.6",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "login.example.gov.cn",
}


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": "127.0.0.1"}], indirect=True)
def test_forwarded_headers_are_believed_from_a_trusted_proxy(app):
    assert observed(app, "127.0.0.1", FORWARDED) == ("127.6.6.6", "https", "login.example.gov.cn")


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": "127.0.0.1"}], indirect=True)
def test_forwarded_headers_from_anyone_else_are_ignored(app):
    assert observed(app, "127.0.0.2", FORWARDED) == ("127.0.0.2", "http", "localhost")


def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted(app):
    assert observed(app, "127.0.0.1", FORWARDED) == ("127.0.0.1", "http", "localhost")


@pytest.mark.parametrize("peer", ["192.0.2.10", "10.0.0.8", "2001:db8::1"])
def test_development_mode_answers_only_this_machine(app, client, peer):
    response = client.get("/login", environ_base={"REMOTE_ADDR": peer})
    sms = client.get("/dev/sms", environ_base={"REMOTE_ADDR": peer})

    assert response.status_code == 403
    assert "开发模式仅允许本机访问" in response.text
    assert sms.status_code == 403


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.3.4.5", "::1"])
def test_development_mode_answers_loopback_clients(client, peer):
    assert client.get("/login", environ_base={"REMOTE_ADDR": peer}).status_code == 200


def test_idp_serve_refuses_a_public_address_in_development_mode(app):
    from idp.cli import serve

    public = "0.0.0.0"  # noqa: S104  (the address being refused)
    result = app.test_cli_runner().invoke(serve, ["--host", public, "--port", "1"])

    assert result.exit_code == 1
    assert "development mode serves this machine only" in result.output
