"""The agent's HTTP interface: ``GET /status``, ``POST /sign`` and their CORS preflights, exactly
as docs/ukey-protocol.md §2 describes them.

Every request passes two gates before any view runs: the ``Host`` header must name the agent on
loopback (a DNS-rebinding page sends its own host name) and the ``Origin`` header must be on the
allowlist (a foreign page, or a request without ``Origin``, gets 403 — on the preflight too).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import asdict, dataclass
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from . import AGENT_NAME, PROTOCOL_VERSION
from .certs import b64url, cert_sha256, describe
from .config import AgentConfig
from .errors import AgentError
from .interface import TokenSigner
from .payload import build_payload, is_challenge

log = logging.getLogger(__name__)

MAX_BODY = 4096
"""Bytes accepted in a request body; a sign request is about 200."""
PIN_MIN, PIN_MAX = 4, 32
TOKEN_MAX = 64
PIN_MASK = "******"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Allow-Private-Network": "true",
}
ROUTES = frozenset({"/status", "/sign"})
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "bad_request"}


@dataclass(frozen=True)
class AgentState:
    """What the views need, kept in ``app.extensions`` (no module-level state)."""

    config: AgentConfig
    signer: TokenSigner


def _state() -> AgentState:
    return current_app.extensions["ukey_agent"]


def _allowed_origin() -> str | None:
    """The request's ``Origin`` if it is exactly one of the allowlisted origins."""
    origin = request.headers.get("Origin")
    return origin if origin in _state().config.allowed_origins else None


# --- gates and headers ------------------------------------------------------------------------


def check_request() -> Response | None:
    """Host first (rebinding), then Origin; preflights are answered here once both pass."""
    config = _state().config
    if request.headers.get("Host") not in config.allowed_hosts:
        raise AgentError("bad_host", detail=f"Host {request.headers.get('Host')!r}")
    if _allowed_origin() is None:
        raise AgentError("origin_not_allowed", detail=f"Origin {request.headers.get('Origin')!r}")
    if request.method == "OPTIONS":
        return preflight()
    return None


def preflight() -> Response:
    """CORS preflight (Fetch §3.2.3) with Chrome's Private Network Access header; only the two
    routes are answered."""
    if request.path not in ROUTES:
        raise AgentError("not_found")
    response = Response(status=204)
    del response.headers["Content-Type"]
    response.headers.update(PREFLIGHT_HEADERS)
    return response


def add_headers(response: Response) -> Response:
    """The exact allowed origin (never ``*``), ``Vary: Origin`` always, and no caching."""
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.vary.add("Origin")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- errors -------------------------------------------------------------------------------------


def render_agent_error(error: AgentError) -> tuple[Response, int]:
    """The protocol's error body; the detail (never the PIN) goes to the log only."""
    log.info("%s %s -> %s %s", request.method, request.path, error.code, error.detail or "")
    return jsonify(error.body()), error.status


def render_http_error(error: HTTPException) -> tuple[Response, int]:
    """Routing and size errors in the same JSON shape; an oversized body is ``bad_request``."""
    code = HTTP_CODES.get(error.code or 500, "bad_request")
    agent_error = AgentError(code, detail=f"HTTP {error.code}")
    return render_agent_error(agent_error)


def render_unexpected(error: Exception) -> tuple[Response, int]:
    """Anything else is a token failure for the page; the traceback stays in the log."""
    log.exception("unexpected error in %s %s", request.method, request.path)
    return jsonify(AgentError("token_error").body()), 500


# --- views ----------------------------------------------------------------------------------------


def status() -> Response:
    """Tokens present and the signing certificate of the single token (docs §2)."""
    signer = _state().signer
    tokens = signer.tokens()
    body: dict[str, Any] = {
        "agent": AGENT_NAME,
        "version": PROTOCOL_VERSION,
        "tokens": [asdict(t) for t in tokens],
        "certificate": None,
    }
    if len(tokens) > 1:
        body["error"] = "several_tokens"
    elif tokens:
        try:
            body["certificate"] = describe(signer.signing_certificate(token=tokens[0].serial).der)
        except AgentError as error:
            if error.code not in ("no_signing_certificate", "no_token"):
                raise
            body["error"] = error.code
    return jsonify(body)


def _sign_request() -> tuple[str, str, str | None]:
    """``(challenge, pin, token)`` from a JSON body, or ``bad_request``. Other fields (an
    ``origin`` in particular) are ignored: the origin comes from the header only."""
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, dict):
        raise AgentError("bad_request", detail="body is not a JSON object")
    challenge, pin, token = body.get("challenge"), body.get("pin"), body.get("token")
    if not is_challenge(challenge):
        raise AgentError("bad_request", detail="challenge missing or malformed")
    if not _is_pin(pin):
        raise AgentError("bad_request", message="PIN 码应为 4 到 32 个字符。", detail="pin format")
    if token is not None and not _is_token_serial(token):
        raise AgentError("bad_request", detail="token serial malformed")
    return challenge, pin, token  # type: ignore[return-value]


def _is_pin(value: object) -> bool:
    """4–32 printable characters: a control character (NUL above all) would be cut or misread
    by the C libraries the PIN is handed to."""
    return (
        isinstance(value, str)
        and PIN_MIN <= len(value) <= PIN_MAX
        and all(c.isprintable() for c in value)
    )


def _is_token_serial(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= TOKEN_MAX and value.isprintable()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign() -> Response:
    """Build the payload with the header's Origin, have the token sign it after the PIN."""
    challenge, pin, token = _sign_request()
    origin = request.headers["Origin"]  # checked by check_request
    log.info("sign request origin=%s token=%s pin=%s", origin, token or "-", PIN_MASK)
    signed = _state().signer.sign(
        token=token,
        pin=pin,
        build_payload=lambda der: build_payload(cert_der=der, challenge=challenge, origin=origin),
    )
    log.info("signed alg=%s cert_sha256=%s", signed.alg, cert_sha256(signed.certificate))
    return jsonify(
        {
            "payload": b64url(signed.payload),
            "signature": b64url(signed.signature),
            "alg": signed.alg,
            "certificate": _b64(signed.certificate),
            "chain": [_b64(der) for der in signed.chain],
        }
    )


def create_app(config: AgentConfig, signer: TokenSigner) -> Flask:
    """The agent's WSGI application for ``config``, signing with ``signer``."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["ukey_agent"] = AgentState(config=config, signer=signer)
    app.before_request(check_request)
    app.after_request(add_headers)
    app.register_error_handler(AgentError, render_agent_error)
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, render_unexpected)
    app.add_url_rule("/status", view_func=status, methods=["GET"])
    app.add_url_rule("/sign", view_func=sign, methods=["POST"])
    return app
