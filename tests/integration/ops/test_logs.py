"""Logs as an operator reads them: one JSON line per request with the request id the browser
got back in ``X-Request-ID``, the same id on the request's audit events and on its error page
("请求编号"), phones and names masked, no query string.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from idp import db
from idp.audit.models import AuditEvent
from idp.logs import JSON_FORMATTER
from tests.flows import PASSWORD, login

INCOMING_ID = "lb-4f0c2a9e-7d31"


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.all() if line["logger"] == "idp.access"]

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def lines(app: Flask) -> Iterator[Lines]:
    """What the provider's log handler writes (to stderr in production)."""
    (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "idp_handler", False)]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(io.StringIO())
    yield Lines(handler.stream)
    handler.setStream(previous)


def audit_request_ids(action: str) -> list[str]:
    rows = db.session().scalars(select(AuditEvent).where(AuditEvent.action == action))
    return [row.request_id for row in rows]


def test_one_json_line_per_request_with_its_request_id(client: FlaskClient, lines: Lines) -> None:
    response = client.get("/login?interaction=secret-code-value")

    (line,) = lines.access()
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 16
    assert line["request_id"] == request_id
    assert (line["method"], line["endpoint"], line["status"]) == ("GET", "auth.login", 200)
    assert line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float)
    assert "secret-code-value" not in lines.text  # no path, no query string


def test_probes_and_metrics_are_not_logged(client: FlaskClient, lines: Lines) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200

    assert lines.access() == []


def test_the_login_audit_event_carries_the_request_id(
    client: FlaskClient, outbox: Any, operator: Any, lines: Lines
) -> None:
    response = login(client, outbox, phone=operator.phone, password=PASSWORD)

    assert response.status_code == 302
    request_id = response.headers["X-Request-ID"]
    assert audit_request_ids("auth.login_succeeded") == [request_id]
    assert lines.access()[-1]["request_id"] == request_id
    assert operator.phone not in lines.text


def test_a_refused_login_keeps_its_request_id_on_the_audit_event(
    client: FlaskClient, outbox: Any, operator: Any
) -> None:
    response = login(client, outbox, phone=operator.phone, password="not-the-password")

    assert response.status_code == 400
    assert audit_request_ids("auth.login_failed") == [response.headers["X-Request-ID"]]


def test_the_404_page_shows_the_request_id(client: FlaskClient, lines: Lines) -> None:
    response = client.get("/no-such-page")

    request_id = response.headers["X-Request-ID"]
    assert response.status_code == 404
    assert f'请求编号 <code class="request-id">{request_id}</code>' in response.text
    (line,) = lines.access()
    assert (line["endpoint"], line["status"], line["request_id"]) == ("unmatched", 404, request_id)


@pytest.fixture
def failing_app(app: Flask) -> Flask:
    def explode() -> str:
        raise RuntimeError("phone 13800138000 name=张三丰 broke it")

    app.add_url_rule("/explode", "explode", explode)
    return app


def test_the_500_page_and_the_traceback_carry_the_request_id(
    failing_app: Flask, client: FlaskClient, lines: Lines
) -> None:
    response = client.get("/explode")

    request_id = response.headers["X-Request-ID"]
    assert response.status_code == 500
    assert f"服务器内部错误（编号 {request_id}）" in response.text
    assert f'<code class="request-id">{request_id}</code>' in response.text
    assert "13800138000" not in response.text
    (error,) = [line for line in lines.all() if line["level"] == "ERROR"]
    assert error["request_id"] == request_id
    assert request_id in error["message"]
    assert "RuntimeError" in error["exception"]
    # masked in the traceback too
    assert "13800138000" not in lines.text and "张三丰" not in lines.text
    assert "138****8000" in error["exception"] and "name=张**" in error["exception"]


def test_phones_and_names_are_masked_in_any_line(app: Flask, lines: Lines) -> None:
    logging.getLogger("idp.orgs").warning(
        "SMS to %s for 姓名: %s failed (other number +8613912345678)", "13900139000", "欧阳娜娜"
    )

    (line,) = lines.all()
    assert (
        line["message"] == "SMS to 139****9000 for 姓名: 欧*** failed (other number +86139****5678)"
    )


class TestBehindATrustedProxy:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"trusted_proxies": "127.0.0.1"}  # the test client's address

    def test_a_sane_incoming_request_id_is_kept(
        self, client: FlaskClient, outbox: Any, operator: Any, lines: Lines
    ) -> None:
        page = client.get("/login", headers={"X-Request-ID": INCOMING_ID})

        assert page.headers["X-Request-ID"] == INCOMING_ID
        assert lines.access()[-1]["request_id"] == INCOMING_ID

    @pytest.mark.parametrize(
        "value", ["short", "x" * 65, "a b c d e f g h", "<script>alert</script>"]
    )
    def test_an_insane_one_is_replaced(self, client: FlaskClient, value: str) -> None:
        response = client.get("/login", headers={"X-Request-ID": value})

        assert response.headers["X-Request-ID"] != value
        assert len(response.headers["X-Request-ID"]) == 16


def test_without_a_trusted_proxy_the_incoming_id_is_ignored(client: FlaskClient) -> None:
    response = client.get("/login", headers={"X-Request-ID": INCOMING_ID})

    assert response.headers["X-Request-ID"] != INCOMING_ID


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": "10.0.0.5"}])
def test_from_a_peer_that_is_not_the_trusted_proxy_the_incoming_id_is_ignored(
    client: FlaskClient,
) -> None:
    response = client.get("/login", headers={"X-Request-ID": INCOMING_ID})

    assert response.headers["X-Request-ID"] != INCOMING_ID


class TestTextFormat:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"log_format": "text"}

    def test_text_lines_carry_the_request_id(self, client: FlaskClient, lines: Lines) -> None:
        response = client.get("/login")

        (line,) = lines.text.splitlines()
        assert line.endswith(
            f"INFO idp.access [{response.headers['X-Request-ID']}] GET auth.login 200"
        )


def test_another_apps_requests_get_no_request_id(app: Flask, lines: Lines) -> None:
    """A Flask app beside the provider in one process (a relying party in the tests) logs
    through the same handler; its lines carry no id and get none made up."""
    other = Flask("other")
    with other.test_request_context("/"):
        logging.getLogger("other").warning("callback refused")
        assert "request_id" not in g

    (line,) = lines.all()
    assert line["request_id"] == "-"


def test_a_line_holds_what_json_cannot_and_what_utf8_cannot(app: Flask, lines: Lines) -> None:
    """Extra fields that are not JSON are written as their text; a lone surrogate (from a JSON
    body's "\\ud800") is escaped, so that the line can still be written, whole."""
    when = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    logging.getLogger("idp.orgs").warning("plain", extra={"at": when, "ids": {1: "a"}})
    (plain,) = lines.all()
    assert plain["at"] == str(when) and plain["ids"] == {"1": "a"}

    # Formatted directly: pytest's own capture of the record could not carry the surrogate.
    refused = logging.LogRecord("idp.orgs", logging.WARNING, __file__, 1, "%s", ("王\ud800",), None)
    line = JSON_FORMATTER.format(refused)
    assert "\\ud800" in line and line.encode("utf-8")
    assert json.loads(line)["message"] == "王\ud800"
