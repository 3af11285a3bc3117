"""Helpers that drive the provider like a browser and a relying party would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from flask.testing import FlaskClient

REDIRECT_URI = "https://rp.example/callback"
PASSWORD = "Initial-Pass-1"
NEW_PASSWORD = "Changed-Pass-2"


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no csrf_token in page"
    return match.group(1)


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def request_sms_code(client: FlaskClient, phone: str) -> Any:
    page = client.get("/login")
    return client.post(
        "/login/sms-code", data={"phone": phone, "csrf_token": csrf_token(page.text)}
    )


def login(
    client: FlaskClient, outbox: Any, *, phone: str, password: str, interaction: str = ""
) -> Any:
    """Log in through the form; returns the POST response (302 on success)."""
    page = client.get("/login", query_string={"interaction": interaction} if interaction else None)
    token = csrf_token(page.text)
    sent = client.post("/login/sms-code", data={"phone": phone, "csrf_token": token})
    assert sent.status_code == 200, sent.text
    code = outbox.last(phone, "login")["code"]
    return client.post(
        "/login",
        data={
            "phone": phone,
            "password": password,
            "sms_code": code,
            "csrf_token": token,
            "interaction": interaction,
        },
    )


def change_password(client: FlaskClient, *, current: str, new: str, interaction: str = "") -> Any:
    page = client.get(
        "/password/change", query_string={"interaction": interaction} if interaction else None
    )
    return client.post(
        "/password/change" + (f"?interaction={interaction}" if interaction else ""),
        data={
            "current_password": current,
            "new_password": new,
            "confirm_password": new,
            "csrf_token": csrf_token(page.text),
        },
    )


def authorize_params(client_id: str, pkce: Pkce | None = None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile phone",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
    }
    if pkce is not None:
        params.update(code_challenge=pkce.challenge, code_challenge_method="S256")
    params.update(extra)
    return params


def follow_to_code(
    client: FlaskClient, params: dict[str, str], *, max_hops: int = 8
) -> dict[str, str]:
    """Follow redirects inside the provider until one goes to the relying party."""
    response = client.get("/authorize?" + urlencode(params))
    for _hop in range(max_hops):
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["Location"]
        if location.startswith(REDIRECT_URI):
            return query_of(location)
        response = client.get(location)
    raise AssertionError("too many redirects")


def token_request(
    client: FlaskClient, data: dict[str, str], *, auth: tuple[str, str] | None = None
) -> Any:
    headers = {}
    if auth is not None:
        raw = f"{auth[0]}:{auth[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    return client.post("/oauth/token", data=data, headers=headers)
