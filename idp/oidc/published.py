"""Discovery and the JWKS answered in front of Flask: Flask's own last answer, replayed.

Relying parties fetch these two documents far more often than anything else, and their
answer is the same bytes and headers every time. Flask answers the first request for each
(and the first after the document changed: a key published or retired); the answer is kept,
and later plain GETs get it again with a fresh ``Date`` and ``X-Request-ID``, the same access
line and metrics as any request (``logs.record_request``), for a small part of Flask's CPU
per request (docs/performance.md). Everything else goes to Flask as before: other methods,
conditional requests (Flask answers 304), and any peer that development mode refuses. An
answer that varies with the request (a ``Vary`` header, a cookie) is never kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.http import http_date

from idp import logs
from idp.web import refused_in_development

PUBLISHED = {
    "/.well-known/openid-configuration": "oidc.openid_configuration",
    "/.well-known/jwks.json": "oidc.jwks",
}
PER_REQUEST = frozenset({"date", logs.REQUEST_ID_HEADER.lower()})

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Answer:
    """Flask's 200 for one document, without its per-request headers."""

    etag: str
    status: str
    headers: list[tuple[str, str]]
    date_at: int  # where Flask put the Date header
    body: bytes


class PublishedDocuments:
    """WSGI middleware in front of the provider's Flask app (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.answers: dict[tuple[str, str], Answer] = {}  # by endpoint and URL scheme

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        endpoint = PUBLISHED.get(environ.get("PATH_INFO", ""))
        if endpoint is None or not self._plain_get(environ):
            return self.wsgi_app(environ, start_response)
        key = (endpoint, environ["wsgi.url_scheme"])
        answer = self.answers.get(key)
        etag = self._current_etag(endpoint)
        if answer is None or etag is None or answer.etag != etag:
            return self._ask_flask(key, environ, start_response)
        return self._replay(endpoint, answer, environ, start_response)

    def _plain_get(self, environ: Environ) -> bool:
        if environ.get("REQUEST_METHOD") != "GET":
            return False
        if any(name.startswith("HTTP_IF_") for name in environ):
            return False
        dev_mode = self.app.extensions["idp"].dev_mode
        return not refused_in_development(environ.get("REMOTE_ADDR"), dev_mode=dev_mode)

    def _current_etag(self, endpoint: str) -> str | None:
        """The ETag header the view would send now; None until the view has built it."""
        extensions = self.app.extensions
        if endpoint == "oidc.jwks":
            document = extensions.get("idp.jwks_document")
            try:
                jwks = extensions["idp.keys"].public_jwks()
            except Exception:  # the view asks again and answers the failure as it always has
                return None
            if document is None or document.source != jwks:
                return None
        else:
            document = extensions.get("idp.discovery")
        return None if document is None else f'"{document.etag}"'

    def _ask_flask(
        self, key: tuple[str, str], environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def keep_status_and_headers(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen.update(status=status, headers=list(headers))
            return start_response(status, headers, *exc)

        chunks = self.wsgi_app(environ, keep_status_and_headers)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        if seen.get("status") == "200 OK":
            self._keep(key, seen["headers"], body)
        return [body]

    def _keep(self, key: tuple[str, str], headers: list[tuple[str, str]], body: bytes) -> None:
        names = [name.lower() for name, _value in headers]
        if {"set-cookie", "vary"} & set(names) or not {"date", "etag"} <= set(names):
            return
        etag = headers[names.index("etag")][1]
        if etag != self._current_etag(key[0]):
            return
        date_at = sum(1 for name in names[: names.index("date")] if name not in PER_REQUEST)
        kept = [(name, value) for name, value in headers if name.lower() not in PER_REQUEST]
        self.answers[key] = Answer(etag, "200 OK", kept, date_at, body)

    def _replay(
        self, endpoint: str, answer: Answer, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = logs.new_request_id(environ.get(logs.INCOMING_REQUEST_ID, ""))
        headers = list(answer.headers)
        headers.insert(answer.date_at, ("Date", http_date()))
        headers.append((logs.REQUEST_ID_HEADER, request_id))
        start_response(answer.status, headers)
        logs.record_request(
            endpoint=endpoint,
            method="GET",
            status=200,
            seconds=time.perf_counter() - started,
            client=environ.get("REMOTE_ADDR") or "unknown",
            request_id=request_id,
        )
        return [answer.body]
