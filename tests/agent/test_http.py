"""The agent's HTTP gates and wire format: Origin allowlist, Host check (DNS rebinding), CORS and
Private Network Access headers, request validation, logs without the PIN, and one run through a
real socket on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import logging
import threading

import pytest

from clients.ukey_agent.app import create_app
from clients.ukey_agent.config import AgentConfig
from clients.ukey_agent.interface import SignedPayload, SigningCertificate, TokenInfo
from clients.ukey_agent.server import make_agent_server
from tests.agent.helpers import (
    ORIGIN,
    OTHER_ORIGIN,
    PIN,
    PORT,
    WRONG_PIN,
    AgentClient,
    challenge,
    check_signed,
    sign_body,
)


class RecordingSigner:
    """A token that records every call, to prove the gates stop requests before the token."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def tokens(self) -> list[TokenInfo]:
        self.calls.append("tokens")
        return []

    def signing_certificate(self, *, token: str | None) -> SigningCertificate:
        self.calls.append("signing_certificate")
        return SigningCertificate(der=b"", chain=(), alg="RS256")

    def sign(self, *, token, pin, build_payload) -> SignedPayload:
        self.calls.append("sign")
        payload = build_payload(b"certificate")
        return SignedPayload(
            payload=payload, signature=b"sig", alg="RS256", certificate=b"certificate", chain=()
        )

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def recorder() -> RecordingSigner:
    return RecordingSigner()


@pytest.fixture
def client(recorder) -> AgentClient:
    config = AgentConfig(allowed_origins=(ORIGIN,), port=PORT, module="vendor-pkcs11.so")
    return AgentClient(create_app(config, recorder), port=PORT)


METHODS = ["GET /status", "POST /sign", "OPTIONS /sign", "OPTIONS /status"]


def _send(client: AgentClient, method_path: str, **kwargs) -> object:
    method, path = method_path.split()
    if method == "OPTIONS":
        return client.preflight(path, **kwargs)
    if method == "POST":
        return client.sign(body=sign_body(), **kwargs)
    return client.request(method, path, **kwargs)


# --- Origin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method_path", METHODS)
@pytest.mark.parametrize(
    "origin",
    [
        OTHER_ORIGIN,
        "null",
        "https://login.example.cn.phish.example.com",
        "http://login.example.cn",
        "https://login.example.cn:8443",
        "https://LOGIN.example.cn/",
    ],
)
def test_foreign_origin_is_refused(client, recorder, method_path, origin):
    response = _send(client, method_path, origin=origin)

    assert response.status_code == 403
    assert response.json["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert recorder.calls == []


@pytest.mark.parametrize("method_path", METHODS)
def test_missing_origin_is_refused(client, recorder, method_path):
    response = _send(client, method_path, origin=None)

    assert response.status_code == 403
    assert response.json["error"] == "origin_not_allowed"
    assert recorder.calls == []


# --- Host (DNS rebinding) ---------------------------------------------------------------------


@pytest.mark.parametrize("method_path", METHODS)
@pytest.mark.parametrize(
    "host",
    ["evil.example", f"evil.example:{PORT}", "127.0.0.1", f"127.0.0.2:{PORT}", "localhost:80"],
)
def test_foreign_host_is_refused(client, recorder, method_path, host):
    response = _send(client, method_path, host=host)

    assert response.status_code == 403
    assert response.json["error"] == "bad_host"
    assert recorder.calls == []


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}"])
def test_loopback_hosts_are_accepted(client, host):
    assert client.status(host=host).status_code == 200


# --- CORS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sign", "/status"])
def test_preflight_headers_exact(client, recorder, path):
    response = client.preflight(path)

    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"
    assert response.headers["Vary"] == "Origin"
    assert {k for k, _ in response.headers.items() if k.startswith("Access-Control-")} == {
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Allow-Private-Network",
    }
    assert recorder.calls == []


def test_preflight_of_unknown_path(client):
    response = client.preflight("/admin")

    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_actual_responses_carry_exact_origin_and_vary(client):
    for response in (client.status(), client.sign(body=sign_body())):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Vary"] == "Origin"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Access-Control-Allow-Private-Network" not in response.headers


def test_errors_are_readable_by_the_allowed_page(client):
    response = client.sign(body={"pin": PIN})

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


# --- request validation ----------------------------------------------------------------------------


def _post_raw(client: AgentClient, data: bytes | str, content_type: str = "application/json"):
    return client.request("POST", "/sign", data=data, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("not json", "application/json"),
        ('{"challenge": "' + "a" * 43 + '", "pin": "1234"}', "text/plain"),
        ("[1, 2]", "application/json"),
        ("", "application/json"),
    ],
)
def test_body_must_be_a_json_object(client, recorder, data, content_type):
    response = _post_raw(client, data, content_type)

    assert response.status_code == 400
    assert response.json["error"] == "bad_request"
    assert recorder.calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"pin": PIN},
        {"challenge": "a" * 15, "pin": PIN},
        {"challenge": "a" * 129, "pin": PIN},
        {"challenge": "a" * 42 + "=", "pin": PIN},
        {"challenge": "a" * 42 + "+", "pin": PIN},
        {"challenge": 12345678901234567890, "pin": PIN},
        {"challenge": "a" * 43},
        {"challenge": "a" * 43, "pin": "123"},
        {"challenge": "a" * 43, "pin": "1" * 33},
        {"challenge": "a" * 43, "pin": 123456},
        {"challenge": "a" * 43, "pin": "1234\x005678"},
        {"challenge": "a" * 43, "pin": PIN, "token": ""},
        {"challenge": "a" * 43, "pin": PIN, "token": 7},
    ],
)
def test_malformed_fields(client, recorder, body):
    response = client.sign(body=body)

    assert response.status_code == 400
    assert response.json["error"] == "bad_request"
    assert recorder.calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"challenge": "A-_z" * 4, "pin": "1234"},
        {"challenge": "a" * 128, "pin": "p" * 32},
    ],
)
def test_limits_are_inclusive(client, body):
    assert client.sign(body=body).status_code == 200


def test_oversized_body(client, recorder):
    body = sign_body(padding="x" * 5000)

    response = client.sign(body=body)

    assert response.status_code == 400
    assert response.json["error"] == "bad_request"
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/sign", 405, "method_not_allowed"),
        ("POST", "/status", 405, "method_not_allowed"),
        ("GET", "/", 404, "not_found"),
    ],
)
def test_other_routes(client, method, path, status, code):
    response = client.request(method, path)

    assert response.status_code == status
    assert response.json["error"] == code


# --- logs ----------------------------------------------------------------------------------------


def test_pin_never_logged(rsa_token, agent, caplog):
    caplog.set_level(logging.DEBUG)
    client = agent()

    ok = client.sign(body=sign_body())
    wrong = client.sign(body=sign_body(pin=WRONG_PIN))
    malformed = client.sign(body=sign_body(pin=PIN + "x" * 40))

    assert (ok.status_code, wrong.status_code, malformed.status_code) == (200, 401, 400)
    assert "pin=******" in caplog.text
    assert "wrong_pin" in caplog.text
    for secret in (PIN, WRONG_PIN):
        assert secret not in caplog.text


# --- a real socket -------------------------------------------------------------------------------


def test_real_socket_on_loopback(rsa_token, pki, module, signers, caplog):
    """The server binds 127.0.0.1 on an ephemeral port; http.client sends the Host header a
    browser would (127.0.0.1:<port>)."""
    caplog.set_level(logging.DEBUG)
    config = AgentConfig(allowed_origins=(ORIGIN,), port=0, module=module)
    server = make_agent_server(config, signers())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.server_address[0] == "127.0.0.1"
        nonce = challenge()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request(
            "POST",
            "/sign",
            body=json.dumps(sign_body(nonce=nonce)),
            headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") == ORIGIN
    check_signed(body, issued=pki.rsa, alg="RS256", nonce=nonce)
    assert PIN not in caplog.text
