"""Logs: a request id for every request, one access line per request, JSON or text lines, and
phones and names masked in every line.

The request id is taken from ``X-Request-ID`` when the provider trusts its proxy and the value
is sane (letters, digits, ``.``, ``_``, ``-``; 8 to 64 characters), else generated. It is sent
back in ``X-Request-ID``, stored in every audit event of the request, and shown on error pages,
so a person's "请求编号" leads to the log line and the audit trail.

The access line names the Flask endpoint, never the path or query string (they can carry codes
and tokens). Probes and ``/metrics`` are counted but not logged.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from typing import Any

from flask import Flask, Response, has_request_context

from idp import context, jsoncodec, metrics
from idp.config import Settings
from idp.security import client_ip

log = logging.getLogger("idp.access")

REQUEST_ID_HEADER = "X-Request-ID"
INCOMING_REQUEST_ID = "HTTP_X_REQUEST_ID"  # the header in the WSGI environ
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
QUIET_ENDPOINTS = frozenset({"ops.healthz", "ops.readyz", "ops.metrics_page"})
UNMATCHED = "unmatched"  # the endpoint label of a request that no route matched (404, 405)

PHONE = re.compile(r"(?<!\d)((?:\+?86)?1[3-9]\d)\d{4}(\d{4})(?!\d)")  # with or without +86
# What every phone above contains: most lines have none, and this scan costs an eighth of PHONE's.
ELEVEN_DIGITS = re.compile(r"\d{11}")
# A name after a label ("姓名: 张三丰", "name=张三丰"): the first character stays.
NAME = re.compile(r"((?:姓名|name)\s*[:=：]\s*['\"]?)([\u4e00-\u9fff])([\u4e00-\u9fff·]+)")
RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


def request_id() -> str:
    """The current request's id; empty outside a request (commands, the SMS worker)."""
    if not has_request_context():
        return ""
    request_globals = context.g()
    known: str | None = request_globals.get("request_id")
    if known is None:
        # Only a trusted proxy's header gets this far (idp/proxies.py drops anyone else's).
        incoming = context.request().environ.get(INCOMING_REQUEST_ID, "")
        known = request_globals.request_id = new_request_id(incoming)
    return known


def new_request_id(incoming: str) -> str:
    """The incoming ``X-Request-ID`` when it is sane, else a new id."""
    return incoming if SANE_REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)


def mask(text: str) -> str:
    """Phones to 138****5678 and labelled names to 张**."""
    if ELEVEN_DIGITS.search(text):
        text = PHONE.sub(r"\1****\2", text)
    if "姓名" not in text and "name" not in text:  # the labels NAME needs
        return text
    return NAME.sub(lambda m: m.group(1) + m.group(2) + "*" * len(m.group(3)), text)


class MaskingFilter(logging.Filter):
    """Masks the formatted message (arguments included) and the traceback of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, any ``extra``."""

    def __init__(self) -> None:
        super().__init__()
        self.converter = time.gmtime
        # The formatted second, reused while it lasts: one (second, text) pair, so that a
        # reader in another thread never pairs one second with another's text.
        self._second: tuple[int, str] = (-1, "")

    def _time(self, record: logging.LogRecord) -> str:
        second, text = self._second
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(second))
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in RECORD_FIELDS})
        if record.exc_text or record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return jsoncodec.dumps_loosely(line)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.__dict__.setdefault("request_id", "-")
        return super().format(record)


class RequestIdFilter(logging.Filter):
    """Adds the request id to every record logged during one of the provider's requests (never
    makes one: another Flask app in the process, such as a test's relying party, has none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in vars(record):
            record.request_id = context.g().get("request_id", "-") if has_request_context() else "-"
        return True


JSON_FORMATTER = JsonFormatter()


def configure(log_format: str, *, level: int = logging.INFO) -> None:
    """One handler on the root logger (stderr), in ``log_format`` (json or text), masking and
    carrying the request id. Replaces the handler it installed before, leaves others alone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "idp_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.idp_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(JSON_FORMATTER if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(level)


def start() -> None:
    context.g().request_started = time.perf_counter()
    request_id()


def finish(response: Response) -> Response:
    seconds = time.perf_counter() - context.g().get("request_started", time.perf_counter())
    this_request = request_id()
    response.headers[REQUEST_ID_HEADER] = this_request
    flask_request = context.request()
    record_request(
        endpoint=flask_request.endpoint or UNMATCHED,
        method=flask_request.method,
        status=response.status_code,
        seconds=seconds,
        client=client_ip(),
        request_id=this_request,
    )
    return response


def record_request(
    *, endpoint: str, method: str, status: int, seconds: float, client: str, request_id: str
) -> None:
    """The request's metrics and its access line (none for probes and ``/metrics``)."""
    metrics.observe_request(endpoint, method, status, seconds)
    if endpoint in QUIET_ENDPOINTS:
        return
    log.info(
        "%s %s %s",
        method,
        endpoint,
        status,
        extra={
            "method": method,
            "endpoint": endpoint,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "client": client,
            "request_id": request_id,  # known here: RequestIdFilter need not look
        },
    )


def init_app(app: Flask, settings: Settings) -> None:
    """The log format (``start`` and ``finish`` run for every request, by idp.pipeline)."""
    configure(settings.log_format)
