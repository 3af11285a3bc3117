"""Response hardening (CSP, anti-framing) and masking of personal data for logs and lists."""

from __future__ import annotations

import re

from flask import Flask, Response, g, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http://127.0.0.1:* http://localhost:*; form-action {form_action}; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def add_security_headers(response: Response) -> Response:
    # Responses that post to (or redirect after a POST to) a client name its origin in the
    # internal X-Form-Action header; it widens form-action for that response only.
    form_action = " ".join(filter(None, ["'self'", response.headers.pop("X-Form-Action", "")]))
    policy = CSP.format(form_action=form_action)
    # A page that frames relying parties (front-channel logout) allows exactly their origins.
    if frame_origins := g.get("csp_frame_src"):
        policy += "; frame-src " + " ".join(frame_origins)
    response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint and not request.endpoint.startswith("static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_name(name: str) -> str:
    """张三丰 -> 张**."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def client_ip() -> str:
    return request.remote_addr or "unknown"


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
