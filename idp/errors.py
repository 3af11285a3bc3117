"""One error root for the provider: services raise, ``idp.web`` renders.

Only 4xx details reach the user; anything else becomes a fixed ``server_error`` text and is
logged with a request id.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l


class IdpError(Exception):
    """A failure the user should see: a stable ``code``, an HTTP ``status``, a message, and the
    form field or body member it belongs to (``field``, empty when it is about the request)."""

    code = "invalid_request"
    status = 400
    message: str = _l("请求无效")
    field = ""

    def __init__(
        self, message: str | None = None, *, detail: str = "", field: str | None = None
    ) -> None:
        super().__init__(message or str(self.message))
        if message is not None:
            self.message = message
        if field is not None:
            self.field = field
        self.detail = detail  # for operators' logs only (a vendor code, a connection error)


class NotFoundError(IdpError):
    code = "not_found"
    status = 404
    message = _l("未找到")


class ServiceUnavailableError(IdpError):
    code = "temporarily_unavailable"
    status = 503
    message = _l("服务暂不可用，请稍后再试")
