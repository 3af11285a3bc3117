"""Discovery and the JWKS replayed in front of Flask (idp/oidc/published.py): the same answer
as Flask's, a fresh request id, the same access line, and nothing stale after a key change."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.oidc.published import PublishedDocuments
from idp.signing.files import FileKeyStore

DOCUMENTS = ["/.well-known/openid-configuration", "/.well-known/jwks.json"]
PER_REQUEST = {"Date", "X-Request-ID"}


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, object]:
    """Keys of this test's own: it rotates them."""
    path = tmp_path / "own-keys"
    FileKeyStore(path).generate("ES256")
    return {"keys_dir": path}


@pytest.fixture
def access_lines(app: Flask) -> Iterator[io.StringIO]:
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "idp_handler", False)]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(io.StringIO())
    yield handler.stream
    handler.setStream(previous)


def published(app: Flask) -> PublishedDocuments:
    layer = app.wsgi_app.app  # type: ignore[attr-defined]  # inside TrustedProxies
    assert isinstance(layer, PublishedDocuments)
    return layer


def lasting(headers: Any) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.items() if name not in PER_REQUEST]


def access(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "idp.access"]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_the_replayed_answer_is_flasks(
    app: Flask, client: FlaskClient, access_lines: io.StringIO, path: str
) -> None:
    first = client.get(path)
    assert published(app).answers  # kept from Flask's answer
    again = client.get(path)

    assert again.status_code == 200
    assert again.data == first.data
    assert lasting(again.headers) == lasting(first.headers)
    assert list(again.headers.keys()) == list(first.headers.keys())
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    lines = access(access_lines)
    assert [line["request_id"] for line in lines] == [
        first.headers["X-Request-ID"],
        again.headers["X-Request-ID"],
    ]
    strip = ("time", "duration_ms", "request_id")
    assert [{k: v for k, v in line.items() if k not in strip} for line in lines] == [
        {k: v for k, v in lines[0].items() if k not in strip}
    ] * 2


def test_a_conditional_request_still_gets_304(client: FlaskClient) -> None:
    etag = client.get(DOCUMENTS[0]).headers["ETag"]
    client.get(DOCUMENTS[0])

    assert client.get(DOCUMENTS[0], headers={"If-None-Match": etag}).status_code == 304


def test_a_rotated_key_shows_at_once(app: Flask, client: FlaskClient) -> None:
    from idp.signing import key_store

    before = client.get(DOCUMENTS[1])
    client.get(DOCUMENTS[1])
    with app.test_request_context():
        key_store().rotate("ES256", immediately=True)
        active = key_store().signing_key("ES256").kid

    after = client.get(DOCUMENTS[1])
    assert after.headers["ETag"] != before.headers["ETag"]
    assert active in {key["kid"] for key in after.get_json()["keys"]}
    assert client.get(DOCUMENTS[1]).data == after.data


@pytest.mark.parametrize("path", DOCUMENTS)
def test_development_mode_still_refuses_other_machines(client: FlaskClient, path: str) -> None:
    client.get(path)
    client.get(path)

    refused = client.get(path, environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert refused.status_code == 403


class TestBehindATrustedProxy:
    @pytest.fixture
    def settings_overrides(self, tmp_path: Path) -> dict[str, object]:
        path = tmp_path / "own-keys"
        FileKeyStore(path).generate("ES256")
        return {"keys_dir": path, "trusted_proxies": "127.0.0.1"}

    def test_the_proxys_request_id_is_kept(self, client: FlaskClient) -> None:
        client.get(DOCUMENTS[0])

        again = client.get(DOCUMENTS[0], headers={"X-Request-ID": "lb-4f0c2a9e-7d31"})
        assert again.headers["X-Request-ID"] == "lb-4f0c2a9e-7d31"


def test_a_failing_key_store_gets_flasks_error_answer(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get(DOCUMENTS[1])
    client.get(DOCUMENTS[1])

    def unavailable() -> None:
        raise RuntimeError("token removed")

    monkeypatch.setattr(app.extensions["idp.keys"], "public_jwks", unavailable)
    failed = client.get(DOCUMENTS[1])
    assert failed.status_code == 500
    assert failed.get_json()["error"] == "server_error"
    assert failed.headers["X-Request-ID"] in failed.get_json()["error_description"]
