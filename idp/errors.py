"""One error root for the provider; services raise, the handlers here render.

Only 4xx details reach the user; anything else becomes a fixed ``server_error`` text and is
logged with a request id.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from idp import audit, db

log = logging.getLogger(__name__)


class IdpError(Exception):
    """A failure the user should see: a stable ``code``, an HTTP ``status`` and a message."""

    code = "invalid_request"
    status = 400
    message: str = _l("请求无效")

    def __init__(self, message: str | None = None, *, detail: str = "") -> None:
        super().__init__(message or str(self.message))
        if message is not None:
            self.message = message
        self.detail = detail


class NotFoundError(IdpError):
    code = "not_found"
    status = 404
    message = _l("未找到")


class ServiceUnavailableError(IdpError):
    code = "temporarily_unavailable"
    status = 503
    message = _l("服务暂不可用, 请稍后再试")


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/oauth/", "/.well-known/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def render_error(*, code: str, status: int, message: str) -> Response:
    if wants_json():
        response = jsonify(error=code, error_description=message)
    else:
        response = Response(
            render_template("errors/error.html", code=code, status=status, message=message)
        )
    response.status_code = status
    return response


def handle_idp_error(error: IdpError) -> Response:
    db.session().rollback()
    audit.replay_after_rollback()
    if error.status >= 500:
        # The detail (a vendor code, a connection error) is for operators only.
        log.warning("%s on %s: %s", error.code, request.path, error.detail or "-")
    return render_error(code=error.code, status=error.status, message=str(error.message))


HTTP_MESSAGES = {
    400: _l("请求无效, 请刷新页面后重试"),
    404: _l("页面不存在"),
    405: _l("不支持该请求方法"),
    413: _l("提交的内容过大"),
    429: _l("请求过于频繁, 请稍后再试"),
}


def handle_http_error(error: HTTPException) -> Response | HTTPException:
    if error.code is None or error.code < 400:
        return error
    message = HTTP_MESSAGES.get(error.code, _l("请求无效"))
    if isinstance(error, CSRFError):
        message = _l("页面已过期, 请刷新后重试")
    return render_error(
        code=(error.name or "error").lower().replace(" ", "_"),
        status=error.code,
        message=str(message),
    )


def handle_unexpected(error: Exception) -> Response:
    request_id = secrets.token_hex(6)
    log.exception("unhandled error, request id %s", request_id, exc_info=error)
    message = _("服务器内部错误 (编号 %(request_id)s)", request_id=request_id)
    return render_error(code="server_error", status=500, message=message)


def init_app(app: Flask) -> None:
    app.register_error_handler(IdpError, handle_idp_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
