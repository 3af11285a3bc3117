"""The one place that turns an error into a response and undoes a failed request's writes.

Three forms, chosen by the request: RFC 9457 problem details under the management API
(``/api/``), ``{"error", "error_description"}`` JSON for the protocol endpoints and for clients
that ask for JSON, and the HTML error page for everyone else. Every failed request is rolled
back, and the audit events it recorded are written again (a refused action stays on record).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from authlib.oauth2.rfc6749 import InsecureTransportError
from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES

from idp import audit, context, db, logs
from idp.config import is_loopback_host, settings
from idp.errors import IdpError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
JSON_PREFIXES = (API_PREFIX, "/oauth/", "/.well-known/")
PROBLEM_JSON = "application/problem+json"

HTTP_MESSAGES = {
    400: _l("请求无效，请刷新页面后重试"),
    404: _l("页面不存在"),
    405: _l("不支持该请求方法"),
    413: _l("提交的内容过大"),
    429: _l("请求过于频繁，请稍后再试"),
}


def rollback() -> None:
    """Undo the request's (or command's) writes but keep its audit events."""
    db.session().rollback()
    audit.replay_after_rollback()


def refuse(error: IdpError, form: FlaskForm | None = None) -> tuple[str, int]:
    """A refused form: roll back, then put the message next to its field when ``form`` has
    that field, else return it for the top of the form (with the status to answer)."""
    rollback()
    if form is not None and error.field and error.field in form:
        form[error.field].errors = [*form[error.field].errors, str(error.message)]
        return "", error.status
    return str(error.message), error.status


def wants_problem() -> bool:
    return request.path.startswith(API_PREFIX)


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def problem(
    status: int,
    *,
    code: str,
    detail: str,
    field: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An RFC 9457 problem details response. ``type`` is about:blank (the title is the status
    phrase); ``code`` is the stable error code and ``detail`` the user's message."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field:
        body["field"] = field
    response = Response(current_app.json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def render_error(
    *,
    code: str,
    status: int,
    message: str,
    field: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error in the form the request asks for (see the module's docstring)."""
    if wants_problem():
        return problem(status, code=code, detail=message, field=field, headers=headers)
    if wants_json():
        response = jsonify(error=code, error_description=message)
    else:
        response = Response(
            render_template(
                "errors/error.html",
                code=code,
                status=status,
                message=message,
                request_id=logs.request_id(),
            )
        )
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_idp_error(error: IdpError) -> Response:
    rollback()
    if error.status >= 500:
        # The detail (a vendor code, a connection error) is for operators only.
        log.warning("%s on %s: %s", error.code, request.path, error.detail or "-")
    challenge = getattr(error, "challenge", "")
    return render_error(
        code=error.code,
        status=error.status,
        message=str(error.message),
        field=error.field,
        headers={"WWW-Authenticate": challenge} if challenge else None,
    )


def handle_http_error(error: HTTPException) -> Response | HTTPException:
    if error.code is None or error.code < 400:
        return error
    if isinstance(getattr(error, "original_exception", None), DBAPIError):
        # Raised by the response's commit, after the view: Flask reports it as a 500.
        return handle_database_error(error.original_exception)  # type: ignore[attr-defined]
    message = HTTP_MESSAGES.get(error.code, _l("请求无效"))
    if isinstance(error, CSRFError):
        message = _l("页面已过期，请刷新后重试")
    headers = {}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return render_error(
        code=(error.name or "error").lower().replace(" ", "_"),
        status=error.code,
        message=str(message),
        headers=headers,
    )


def handle_insecure_transport(error: InsecureTransportError) -> Response:
    """Authlib refuses a protocol request that came over plain HTTP to a host other than this
    machine's (RFC 6749 §1.6, §3.1, §3.2): a client's error (400), never the server's."""
    return render_error(code=error.error, status=error.status_code, message=_("请通过 HTTPS 访问"))


def handle_database_error(error: DBAPIError) -> Response:
    """An unreachable database (PostgreSQL down, refusing connections, a pooled connection
    killed mid-request) is a 503 like an unreachable store, and the next request connects
    anew (``pool_pre_ping``). Nothing of the request is kept; its audit events cannot be
    written either, so the log names the refused path."""
    if not isinstance(error, OperationalError) and not error.connection_invalidated:
        return handle_unexpected(error)
    db.discard()
    log.warning("database unavailable on %s: %s", request.path, type(error.orig).__name__)
    unavailable = db.DatabaseUnavailableError()
    return render_error(
        code=unavailable.code, status=unavailable.status, message=str(unavailable.message)
    )


def handle_unexpected(error: Exception) -> Response:
    """Never the exception's text: a fixed message with the request id, which the log line
    and the request's audit events carry too."""
    db.session().rollback()
    request_id = logs.request_id()
    log.exception("unhandled error, request id %s", request_id, exc_info=error)
    message = _("服务器内部错误（编号 %(request_id)s）", request_id=request_id)
    return render_error(code="server_error", status=500, message=message)


def only_local_in_development() -> Response | None:
    """Development mode (every SMS code at /dev/sms, generated secrets) answers this machine
    only, whatever address the server was bound to (run by idp.pipeline before every view)."""
    peer = context.request().remote_addr
    if refused_in_development(peer, dev_mode=settings().dev_mode):
        return render_error(
            code="dev_mode_local_only", status=403, message=_("开发模式仅允许本机访问")
        )
    return None


def refused_in_development(peer: str | None, *, dev_mode: bool) -> bool:
    # No address at all is a call inside this process (WSGI test clients), never the network.
    return dev_mode and bool(peer) and not _is_loopback(peer or "")


@functools.lru_cache(maxsize=1024)
def _is_loopback(peer: str) -> bool:
    """``is_loopback_host``, remembered: a handful of peers send every request."""
    return is_loopback_host(peer)


def init_app(app: Flask) -> None:
    app.register_error_handler(IdpError, handle_idp_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(InsecureTransportError, handle_insecure_transport)
    app.register_error_handler(Exception, handle_unexpected)
