"""Response hardening (CSP, anti-framing) and masking of personal data for logs and lists."""

from __future__ import annotations

import re

from flask import Response

from idp import context

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http://127.0.0.1:* http://localhost:*; form-action {form_action}; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


POLICY = CSP.format(form_action="'self'")  # what most responses send
ALWAYS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")
NO_STORE = ("Cache-Control", "no-store")


def add_security_headers(response: Response) -> Response:
    """Each header unless the response set its own (run by idp.pipeline after every view)."""
    headers = response.headers
    present = {name.lower() for name, _value in headers.items()}
    # Responses that post to (or redirect after a POST to) a client name its origin in the
    # internal X-Form-Action header; it widens form-action for that response only.
    form_action = headers.pop("X-Form-Action") if "x-form-action" in present else ""
    policy = CSP.format(form_action=f"'self' {form_action}") if form_action else POLICY
    # A page that frames relying parties (front-channel logout) allows exactly their origins.
    if frame_origins := context.g().get("csp_frame_src"):
        policy += "; frame-src " + " ".join(frame_origins)
    wanted = [("Content-Security-Policy", policy), *ALWAYS]
    flask_request = context.request()
    if flask_request.is_secure:
        wanted.append(HSTS)
    endpoint = flask_request.endpoint
    if endpoint and not endpoint.startswith("static"):
        wanted.append(NO_STORE)
    for name, value in wanted:
        if name.lower() not in present:
            headers.add(name, value)
    return response


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


def mask_name(name: str) -> str:
    """张三丰 -> 张**."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def client_ip() -> str:
    return context.request().remote_addr or "unknown"
